"""``dirsync run``: the daemon as a process, its scheduler, systemd and metrics."""
