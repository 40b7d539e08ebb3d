"""The MSP cycle (``bench.msp_cycle``'s directory) on one, two and three ``dirsync run`` nodes
sharing one PostgreSQL.

For each node count, an empty database: the nodes start together (``startup_jitter = "0"``,
so every organization is due at once) and the first cycle lasts until every organization has
a completed run. Then 1% of the users change, the nodes stop, every organization is made due
again in the shared schedule (``UPDATE schedules SET next_due = now()``) and the nodes start
again: the change cycle lasts until every organization has a completed run that began after
the change (the nodes' start-up, a second or two, is in both figures). Measured: wall time,
and the CPU seconds of the nodes, of slapd and of PostgreSQL (the postmaster and its
backends, from ``/proc``) during the cycle: what limits it.

    .venv/bin/python -m bench.nodes_cycle --organizations 500 --users 100000
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.__main__ import _load, _machine
from bench.msp_cycle import Bench, _slapd_cpu, config_toml
from dirsync.sync.store_lock import libpq_conninfo
from dirsync.testing.postgres import Postgres

COMPLETED = ("applied", "unchanged", "refused")


@dataclass(frozen=True)
class Cycle:
    nodes: int
    label: str
    wall: float
    nodes_cpu: float
    slapd_cpu: float
    postgres_cpu: float
    runs: int


def _cpu(pid: int, *, children: bool) -> float:
    """utime + stime (+ the reaped children's, with ``children``) of ``pid``, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """A postmaster's CPU: its own, its reaped backends' and its live backends'."""
    total = _cpu(pid, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                total += _cpu(int(entry.name), children=False)
    return total


class Nodes:
    """``count`` nodes on one database: their configs, processes and the runs they record."""

    def __init__(self, bench: Bench, postgres: Postgres, count: int, folder: Path) -> None:
        self.bench = bench
        self.postgres = postgres
        self.folder = folder
        self.url = postgres.create_database(f"cycle_{count}_{time.monotonic_ns()}")
        self.configs = [self._config(f"node-{'abc'[i]}") for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        upgrade = [sys.executable, "-m", "dirsync", "--config", str(self.configs[0])]
        subprocess.run([*upgrade, "db", "upgrade"], check=True, capture_output=True)

    def _config(self, node: str) -> Path:
        text = config_toml(self.bench.slapd, self.bench.clients, Path("unused"), features=True)
        text = text.replace('url = "sqlite:///unused"', f'url = "{self.url}"', 1)
        daemon = f'[daemon]\nnode = "{node}"\nstartup_jitter = "0"\n\n[logging]'
        path = self.folder / f"{node}.toml"
        path.write_text(text.replace("[logging]", daemon, 1))
        path.chmod(0o600)
        return path

    def sql(self, statement: str, *args: object) -> list[tuple[object, ...]]:
        with psycopg.connect(libpq_conninfo(self.url)) as conn:
            return conn.execute(statement, args).fetchall()  # type: ignore[call-overload, no-any-return]

    def cycle(self, label: str, since: datetime) -> Cycle:
        """Start the nodes; wait until every organization completed a run begun after
        ``since``; stop them."""
        slapd_before = _slapd_cpu(self.bench.slapd)
        postmaster = self.postgres.pid
        assert postmaster is not None
        postgres_before = _tree_cpu(postmaster)
        began = time.monotonic()
        for config in self.configs:
            log = (self.folder / f"{config.stem}.log").open("ab")
            command = [sys.executable, "-m", "dirsync", "--config", str(config), "run"]
            runtime = {"RUNTIME_DIRECTORY": str(self.folder / f"{config.stem}.run")}
            self.procs.append(subprocess.Popen(command, stderr=log, env={**os.environ, **runtime}))
            log.close()
        wanted = len(self.bench.clients)
        while True:
            ((done,),) = self.sql(
                "SELECT count(DISTINCT organization_id) FROM runs "
                "WHERE outcome = ANY(%s) AND started_at >= %s",
                list(COMPLETED),
                since,
            )
            if done == wanted:
                break
            if time.monotonic() - began > 3600:
                raise RuntimeError(f"{label}: {done} of {wanted} organizations after an hour")
            time.sleep(0.5)
        wall = time.monotonic() - began
        nodes_cpu = sum(_cpu(p.pid, children=False) for p in self.procs)
        slapd_cpu = _slapd_cpu(self.bench.slapd) - slapd_before
        postgres_cpu = _tree_cpu(postmaster) - postgres_before
        ((runs,),) = self.sql("SELECT count(*) FROM runs WHERE started_at >= %s", since)
        self.stop()
        return Cycle(
            len(self.configs), label, wall, nodes_cpu, slapd_cpu, postgres_cpu, int(str(runs))
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(120)
        self.procs = []


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nodes_cycle")
    parser.add_argument("--organizations", type=int, default=500)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--nodes", default="1,2,3", help="node counts, comma-separated")
    parser.add_argument("--change", type=float, default=0.01, help="share of users changed")
    options = parser.parse_args()
    load_before = _load()
    found: list[Cycle] = []
    with tempfile.TemporaryDirectory(prefix="dirsync-nodes-cycle-") as scratch:
        bench = Bench(options, Path(scratch))
        bench.start()
        try:
            with Postgres() as postgres:
                for count in (int(n) for n in options.nodes.split(",")):
                    folder = Path(scratch) / f"{count}-nodes"
                    folder.mkdir()
                    nodes = Nodes(bench, postgres, count, folder)
                    try:
                        found.append(nodes.cycle("first cycle", datetime.now(UTC)))
                        changed = datetime.now(UTC)
                        bench.change(options.change)
                        nodes.sql("UPDATE schedules SET next_due = now() RETURNING 1")
                        found.append(nodes.cycle(f"{options.change:.0%} change cycle", changed))
                    finally:
                        nodes.stop()
                    for cycle in found[-2:]:
                        print(f"{count} node(s) {cycle.label}: {cycle.wall:.1f} s", file=sys.stderr)
        finally:
            bench.slapd.stop()
    print(f"- machine: {_machine()}")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"- command: `.venv/bin/python -m bench.nodes_cycle {' '.join(sys.argv[1:])}`")
    print(f"- {len(bench.clients)} organizations, {bench.users:,} users")
    print(f"- load average before {load_before}, after {_load()}")
    print()
    print("| nodes | cycle | wall s | nodes' CPU s | slapd CPU s | PostgreSQL CPU s | runs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in found:
        print(
            f"| {c.nodes} | {c.label} | {c.wall:.1f} | {c.nodes_cpu:.1f} | {c.slapd_cpu:.1f} "
            f"| {c.postgres_cpu:.1f} | {c.runs} |"
        )


if __name__ == "__main__":
    main()
