"""The daemon's memory at many organizations against a one-shot ``sync`` of the same ones.

One slapd holds one generated directory (``bench.generate``); the config names it
``--organizations`` times (``org000``, ``org001``, ...), each organization with its own
members in the store. Four phases, each measured for the one-shot ``dirsync sync`` (its peak
RSS, from ``wait4``) and for ``dirsync run`` in every variant (its ``VmRSS`` and ``VmHWM``
from ``/proc`` once every organization has finished a run, and the wall time until then):

1. *first cycle*: an empty store;
2. *steady state*: a synced store and no directory change (quiet runs);
3. *full re-read*: a synced store, every organization's first run a full read (the daemon
   with ``full_sync_interval = "1d"``, the one-shot with ``--full``), as after a restart of
   a daemon with a daily full read;
4. *catch-up*: the synced store after ``--changes`` directory changes (each organization reads
   the same directory, so 15 changes are 3,000 organization changes at 200 organizations).

The variants of the daemon, in the same run: ``before``, the revision ``--before`` (checked
out into a temporary git worktree, run as ``bench.ab`` runs it) as it is and with
``max_full_loads = 1``, the working tree as it is (``max_full_loads`` at its default), and
the working tree with ``max_full_loads = 2`` and with ``max_full_loads = 8`` (as many as
``max_parallel``: no bound). ``--reinvite-after 7d``
gives every organization the recommended re-invitations, which (today) make every run with a
change load its whole organization. The sources are read over LDAPS with the test CA as
``ca_file``, as on client networks.

    .venv/bin/python -m bench.daemon_memory --organizations 200 --users 2000 --before 3866524
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import _load, _machine
from bench.ab import REPO, _compiled, _entry_points, _environment, _worktree
from bench.ldap_bench import Bench, Scenario, _dirsync
from bench.measure import run


def config_toml(
    bench: Bench,
    organizations: int,
    store: Path,
    interval: int,
    *,
    full: bool = False,
    reinvite_after: str | None = None,
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
{f'reinvite_after = "{reinvite_after}"' if reinvite_after else ""}
"""
        )
    return "\n".join(parts)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def one_shot(bench: Bench, config: Path, *flags: str) -> tuple[float, float, float]:
    """Peak RSS (MB), wall and CPU seconds of one ``sync`` of every organization (without
    ``--json``, which keeps every plan until the document is printed)."""
    args = [_dirsync(), "--config", str(config), "sync", *flags]
    measured, _ = run("one-shot sync", args, env=bench.env, ok_codes=(0,))
    return measured.peak_rss_mb, measured.wall, measured.cpu


def daemon(
    bench: Bench, config: Path, organizations: int, env: dict[str, str], command: list[str]
) -> str:
    """Runs the daemon until every organization has finished one run; its RSS then, its peak,
    the wall seconds from start, its CPU seconds (user and system), its threads and the runs
    that applied a plan, as table cells."""
    log_path = config.with_suffix(".log")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--config", str(config), "run"],
            env={**bench.env, **env},
            cwd=config.parent,  # not a checkout: its dirsync would shadow PYTHONPATH
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    started = time.monotonic()
    try:
        while _finished(log_path) < organizations:
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited: {log_path.read_text()[-3000:]}")
            if time.monotonic() - started > 1800:
                raise RuntimeError("the daemon did not finish its round in 30 minutes")
            time.sleep(0.5)
        wall = time.monotonic() - started
        rss = _status_kib(proc.pid, "VmRSS") / 1024
        peak = _status_kib(proc.pid, "VmHWM") / 1024
        threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        cpu = _cpu_seconds(proc.pid)
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
    applied = log_path.read_bytes().count(b'"sync.applied"')
    return f"{rss:.0f} | {peak:.0f} | {wall:.0f} | {cpu:.1f} | {threads} | {applied} |"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _finished(log_path: Path) -> int:
    return log_path.read_bytes().count(b'"daemon.run_finished"')


#: the ``--before`` revision's variants: label, ``[daemon]`` lines
BEFORE_VARIANTS = (("", ""), (", max_full_loads = 1", "max_full_loads = 1\n"))

#: the working tree's variants: label, ``[daemon]`` lines
VARIANTS = (
    ("after (max_full_loads default)", ""),
    ("after, max_full_loads = 2", "max_full_loads = 2\n"),
    ("after, max_full_loads = 8", "max_full_loads = 8\n"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--organizations", type=int, default=200)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=15, help="directory changes to catch up")
    parser.add_argument(
        "--interval", type=int, default=900, help="seconds between runs (longer than a round)"
    )
    parser.add_argument("--reinvite-after", default=None, help='e.g. "7d"')
    parser.add_argument("--before", required=True, help="the revision to compare with")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dirsync-daemon-memory-"))
    tree = _worktree(options.before, workdir)
    _compiled(tree)
    old = _environment(tree, _entry_points(tree, workdir / "metadata"))
    before = [sys.executable, "-m", "dirsync"]
    variants = [
        (f"before ({options.before}){label}", lines, old, before)
        for label, lines in BEFORE_VARIANTS
    ]
    variants += [(label, lines, {}, [_dirsync()]) for label, lines in VARIANTS]
    bench = Bench(Scenario(users=options.users, groups=max(1, options.users // 10)), workdir)
    bench.start()
    rows = []
    try:
        load_before = _load()

        def config(name: str, *, full: bool = False, daemon_lines: str = "") -> Path:
            path = workdir / f"{name}.toml"
            text = config_toml(
                bench,
                options.organizations,
                workdir / f"{name}.db",
                options.interval,
                full=full,
                reinvite_after=options.reinvite_after,
            )
            path.write_text(
                text.replace("[daemon]\n", f"[daemon]\nmax_parallel = 8\n{daemon_lines}")
            )
            return path

        def store_from(source: str, name: str) -> None:
            shutil.copyfile(workdir / f"{source}.db", workdir / f"{name}.db")

        def daemons(phase: str, *, full: bool = False, synced: str | None = None) -> None:
            for number, (label, lines, env, command) in enumerate(variants):
                name = f"{phase.replace(' ', '-')}-{number}"
                if synced is not None:
                    store_from(synced, name)
                path = config(name, full=full, daemon_lines=lines)
                found = daemon(bench, path, options.organizations, env, command)
                rows.append(f"| {phase} | daemon, {label} | {found}")

        shot = config("one-shot")
        peak, wall, cpu = one_shot(bench, shot)
        rows.append(_shot_row("first cycle", "sync", peak, wall, cpu))
        store_from("one-shot", "synced")  # before any change, for the later phases
        daemons("first cycle")

        peak, wall, cpu = one_shot(bench, shot)
        rows.append(_shot_row("steady state", "sync", peak, wall, cpu))
        daemons("steady state", synced="synced")

        peak, wall, cpu = one_shot(bench, shot, "--full")
        rows.append(_shot_row("full re-read", "sync --full", peak, wall, cpu))
        daemons("full re-read", full=True, synced="synced")

        bench.slapd.modify_ldif(bench.directory.changes(options.changes))
        store_from("synced", "catch-up-shot")
        peak, wall, cpu = one_shot(bench, config("catch-up-shot"))
        rows.append(_shot_row("catch-up", "sync", peak, wall, cpu))
        daemons("catch-up", synced="synced")
    finally:
        bench.stop()
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)])
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"- machine: {_machine()}")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        "- command: `.venv/bin/python -m bench.daemon_memory "
        f"--organizations {options.organizations} --users {options.users} "
        f"--changes {options.changes} --interval {options.interval} --before {options.before}"
        f"{f' --reinvite-after {options.reinvite_after}' if options.reinvite_after else ''}`"
    )
    print(f"- load average before {load_before}, after {_load()}")
    print()
    print("| phase | process | RSS MB | peak RSS MB | wall s | CPU s | threads | runs applied |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)


def _shot_row(phase: str, command: str, peak: float, wall: float, cpu: float) -> str:
    return f"| {phase} | one-shot `{command}` |  | {peak:.0f} | {wall:.0f} | {cpu:.1f} | 1 |  |"


if __name__ == "__main__":
    main()
