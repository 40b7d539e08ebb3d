"""A reload with a broken config is visibly refused: ``dirsync reload`` (the unit's
ExecReload=) exits non-zero, and the STATUS line says the file on disk was rejected and why.
The daemon is a real process; sd_notify arrives on a real socket; signals are real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon.support import DaemonConfig
from tests.integration.daemon.test_daemon_process import NotifySocket, notify
from tests.integration.field.test_secrets_per_organization import UNPRIVILEGED

__all__ = ["notify"]  # the fixture, used here by name

REJECTED = "reload rejected, running the previous config: "


def reload(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dirsync", "--config", str(config), "reload", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_reload_exits_non_zero_and_status_says_why_when_the_file_is_rejected(
    setup: DaemonConfig,
    notify: NotifySocket,
    tmp_path: Path,
) -> None:
    password = setup.tree.server.reader_password
    (tmp_path / "acme").write_text(password)
    setup.add("acme", interval="1h", source={"bind_password_file": "acme"})
    del setup.organizations["acme"]["source"]["bind_password"]
    config = setup.write()
    # the daemon runs as a user that may not read another user's files (as the service's
    # DynamicUser= may not read what is not its credential)
    command = [*UNPRIVILEGED, sys.executable, "-m", "dirsync", "--config", str(config), "run"]
    with (tmp_path / "daemon.log").open("w") as log:
        daemon = subprocess.Popen(
            command, stderr=log, env={**os.environ, "NOTIFY_SOCKET": notify.path}
        )
    try:
        day_of_reloads(setup, notify, daemon, config, tmp_path)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def day_of_reloads(
    setup: DaemonConfig,
    notify: NotifySocket,
    daemon: subprocess.Popen[bytes],
    config: Path,
    tmp_path: Path,
) -> None:
    notify.expect(lambda m: "acme applied" in m.get("STATUS", ""), "acme's first run")

    # a good file: adopted, exit 0, found without --pid (the daemon's schedule file)
    setup.add("globex", interval="1h")
    setup.write()
    done = reload(config)
    assert done.returncode == 0, done.stderr
    notify.expect(lambda m: "globex applied" in m.get("STATUS", ""), "globex's first run")

    # a broken file: refused before the daemon is disturbed, exit 2 with the problem
    setup.organizations["globex"]["interval"] = "often"
    setup.write()
    done = reload(config, "--pid", str(daemon.pid))
    assert done.returncode == 2
    assert "organization[globex].interval: 'often' is not a duration" in done.stderr

    # SIGHUP itself (kill -HUP): the STATUS line says the file was rejected, and why
    daemon.send_signal(signal.SIGHUP)
    status = notify.expect(lambda m: m.get("READY") == "1", "READY=1 after SIGHUP")["STATUS"]
    assert status.startswith(f"{REJECTED}{config}: organization[globex].interval: 'often'")
    assert "| acme applied" in status and "globex applied" in status

    # a file this command reads but the daemon may not (a secret of another user's): the
    # daemon keeps its config, and the reload still exits non-zero, with the daemon's reason
    setup.organizations["globex"]["interval"] = "1h"
    setup.write()
    os.chown(tmp_path / "acme", 65534, 65534)
    (tmp_path / "acme").chmod(0o600)
    done = reload(config, "--pid", str(daemon.pid))
    assert done.returncode == 2
    assert "the daemon rejected the file and runs on with its previous config" in done.stderr
    assert "organization[acme].source.bind_password_file: cannot read" in done.stderr
    notify.expect(
        lambda m: m.get("READY") == "1" and "bind_password_file: cannot read" in m["STATUS"],
        "READY=1 with the daemon's reason in STATUS",
    )

    # fixed: adopted, and STATUS no longer speaks of a rejection
    os.chown(tmp_path / "acme", 0, 0)
    (tmp_path / "acme").chmod(0o644)
    done = reload(config, "--pid", str(daemon.pid))
    assert done.returncode == 0, done.stderr
    status = notify.expect(lambda m: m.get("READY") == "1", "READY=1")["STATUS"]
    assert not status.startswith(REJECTED) and "acme applied" in status
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
