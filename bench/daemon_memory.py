"""The daemon's memory at many organizations against a one-shot ``sync`` of the same ones.

One slapd holds one generated directory (``bench.generate``); the config names it
``--organizations`` times (``org000``, ``org001``, ...), each organization with its own
members in the store. Measured, each in its own empty store:

1. ``dirsync sync`` of every organization once, into an empty store and then again (a synced
   store: quiet runs): its peak RSS (``wait4``'s rusage);
2. ``dirsync run`` on an empty store and on a copy of the synced one (and on an empty store
   with ``max_parallel = 1``), until every organization has finished ``--rounds`` runs: the
   daemon's resident set (``VmRSS``) after each round and its peak (``VmHWM``), from ``/proc``.

The sources are read over LDAPS with the test CA as ``ca_file``, as on client networks.

    .venv/bin/python -m bench.daemon_memory --organizations 200 --users 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.__main__ import _load, _machine
from bench.ldap_bench import Bench, Scenario, _dirsync
from bench.measure import run


def config_toml(
    bench: Bench, organizations: int, store: Path, interval: int, *, full: bool = False
) -> str:
    s = bench.slapd
    parts = [
        f'[store]\nurl = "sqlite:///{store}"\n',
        '[logging]\nlevel = "info"\nformat = "json"\n',
        '[daemon]\nstartup_jitter = "10s"\n',
    ]
    for number in range(organizations):
        parts.append(
            f"""[[organization]]
name = "org{number:03d}"
interval = "{interval}s"
jitter = "5s"
{'full_sync_interval = "1d"' if full else ""}

[organization.source]
type = "ldap"
url = "{s.ldaps_url}"
ca_file = "{s.ca_file}"
bind_dn = "{s.reader_dn}"
bind_password = "{s.reader_password}"
base_dn = "{s.base_dn}"
user_path = "ou=People"
group_path = "ou=Groups"
disabled_filter = "(employeeType=disabled)"
page_size = 1000

[organization.sync]
max_removals = "20%"
"""
        )
    return "\n".join(parts)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def one_shot(bench: Bench, config: Path, *flags: str) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one ``sync`` of every organization (without
    ``--json``, which keeps every plan until the document is printed)."""
    args = [_dirsync(), "--config", str(config), "sync", *flags]
    measured, _ = run("one-shot sync", args, env=bench.env, ok_codes=(0,))
    return measured.peak_rss_mb, measured.wall


def daemon(bench: Bench, config: Path, organizations: int, rounds: int) -> list[str]:
    """The daemon's RSS after each round of runs, and its peak; one line each."""
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [_dirsync(), "--config", str(config), "run"],
            env=bench.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    lines = []
    started = time.monotonic()
    try:
        for round_ in range(1, rounds + 1):
            while _finished(log_path) < organizations * round_:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited: {log_path.read_text()[-3000:]}")
                if time.monotonic() - started > 1800:
                    raise RuntimeError("the daemon did not finish its rounds in 30 minutes")
                time.sleep(0.5)
            rss = _status_kib(proc.pid, "VmRSS") / 1024
            peak = _status_kib(proc.pid, "VmHWM") / 1024
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            lines.append(
                f"| daemon after round {round_} ({time.monotonic() - started:.0f} s) | "
                f"{rss:.0f} | {peak:.0f} | {threads} |"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    failed = log_path.read_bytes().count(b'"daemon.run_failed"')
    if failed:
        raise RuntimeError(f"{failed} runs failed: {log_path.read_text()[-3000:]}")
    return lines


def _finished(log_path: Path) -> int:
    return log_path.read_bytes().count(b'"daemon.run_finished"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=int, default=60, help="seconds between runs")
    parser.add_argument(
        "--full",
        action="store_true",
        help='full re-reads: the one-shot with --full, the daemon with full_sync_interval = "1d"'
        " (its first run after start is a full read)",
    )
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dirsync-daemon-memory-"))
    bench = Bench(Scenario(users=options.users, groups=max(1, options.users // 10)), workdir)
    bench.start()
    rows = []
    full = ["--full"] if options.full else []
    try:
        load_before = _load()

        def config(name: str, max_parallel: int = 8) -> Path:
            path = workdir / f"{name}.toml"
            store = workdir / f"{name}.db"
            text = config_toml(
                bench, options.organizations, store, options.interval, full=options.full
            )
            path.write_text(
                text.replace("[daemon]\n", f"[daemon]\nmax_parallel = {max_parallel}\n")
            )
            return path

        shot = config("one-shot")
        peak, wall = one_shot(bench, shot, *full)
        rows.append(_row(f"one-shot `{' '.join(['sync', *full])}` of all, empty store", wall, peak))
        # the one-shot's store, synced: a copy for the daemon (the process is gone, so the
        # store is one file again)
        shutil.copyfile(workdir / "one-shot.db", workdir / "daemon-synced.db")
        peak, wall = one_shot(bench, shot, *full)
        rows.append(
            _row(f"one-shot `{' '.join(['sync', *full])}` of all, synced store", wall, peak)
        )
        for name, label, parallel in (
            ("daemon-empty", "empty store", 8),
            ("daemon-synced", "synced store", 8),
            ("daemon-serial", "empty store, max_parallel = 1", 1),
        ):
            found = daemon(bench, config(name, parallel), options.organizations, options.rounds)
            rows += [row.replace("daemon after", f"daemon, {label}, after") for row in found]
    finally:
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"- machine: {_machine()}")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        "- command: `.venv/bin/python -m bench.daemon_memory "
        f"--organizations {options.organizations} --users {options.users} "
        f"--rounds {options.rounds} --interval {options.interval}"
        f"{' --full' if options.full else ''}`"
    )
    print(f"- load average before {load_before}, after {_load()}")
    print()
    print("| process | RSS MB | peak RSS MB | threads |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(row)


def _row(label: str, wall: float, peak: float) -> str:
    return f"| {label} ({wall:.0f} s) |  | {peak:.0f} | 1 |"


if __name__ == "__main__":
    main()
