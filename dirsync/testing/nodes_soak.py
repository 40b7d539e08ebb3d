"""The several-nodes soak: ``dirsync run`` on three nodes, one PostgreSQL, one slapd.

While the client organizations' directories change, nodes are killed (SIGKILL, then started
again), stopped past ``takeover`` (SIGSTOP, then SIGCONT) and cut off from PostgreSQL (each
node reaches it through a ``FaultProxy`` of its own) at random moments chosen by a seeded
``random.Random``. Then every fault is undone, each organization is run once more after the
last change, the nodes stop cleanly, and ``findings`` lists what is wrong:

- an organization's store differs from a fresh full sync of its directory into an empty store
  (members that are not revoked, and groups; a revoked member must be a disabled user);
- a run has no final record (``running`` after every node stopped);
- two runs of one organization that wrote a result (applied, unchanged, refused) overlap, or a
  run that failed or was interrupted wrote an audit event (it applied something);
- an address was invited twice (an apply made twice).

``tests/integration/daemon/test_nodes_soak.py`` runs it briefly with a fixed seed;
``python -m bench.nodes_soak`` runs it for minutes.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dirsync.plan import Outcome
from dirsync.state.records import GroupView, RunRecord
from dirsync.state.sql_store import SqlStore
from dirsync.testing.fault_proxy import FaultProxy
from dirsync.testing.postgres import Postgres
from dirsync.testing.slapd import Slapd
from dirsync.testing.soak_directory import DISABLED_FILTER, SoakDirectory

#: ``python -c`` for the dirsync CLI in a child process
CLI = "from dirsync.cli.main import main; main()"
#: a node: the CLI with a random pause (up to argv[1] seconds) inside every apply's
#: transaction, after the members are written, so that faults often land in the middle of one
NODE = """
import random, sys, time
from dirsync.state import apply
longest = float(sys.argv.pop(1))

def pause(stage):
    if stage == "after_members":
        time.sleep(random.uniform(0, longest))

apply._fault_hook = pause
from dirsync.cli.main import main
main()
"""
WROTE_A_RESULT = {Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REFUSED}


@dataclass(frozen=True)
class SoakSettings:
    seed: int
    seconds: float
    organizations: int = 6
    users: int = 12
    nodes: int = 3
    interval: int = 2  # seconds between an organization's runs
    takeover: int = 3  # seconds
    #: the mean pause between two things done to the cluster (a change or a fault)
    pace: float = 1.0
    #: the longest pause inside an apply's transaction (a random one in every apply)
    apply_pause: float = 1.5
    #: how long the organizations get, once the faults are over, for a run after the last change
    settle: float = 120.0


@dataclass
class SoakReport:
    findings: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    #: the faults that hit a node while one of its runs was in progress
    faults_in_a_run: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (node, outcome)
    #: the longest time between two completed runs of one organization: seconds, organization
    longest_gap: tuple[float, str] = (0.0, "")
    #: nodes that exited by themselves (and were started again): exit code and last line
    exits: Counter[str] = field(default_factory=Counter)
    #: nodes that did not stop within a minute of SIGTERM and were killed
    killed_on_stop: list[str] = field(default_factory=list)
    #: for a run with no final record, the last lines of its node's logs that name it (the
    #: logs are gone with the test's temporary folder; this is what a failure keeps of them)
    evidence: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        by_node = sorted(self.runs.items())
        return [
            f"faults: {dict(self.faults)}, of them during a run: {dict(self.faults_in_a_run)}",
            f"directory changes: {dict(self.changes)}",
            f"longest time between two completed runs of an organization: "
            f"{self.longest_gap[0]:.1f} s ({self.longest_gap[1]})",
            f"nodes that exited by themselves (started again): {dict(self.exits)}",
            "runs by node and outcome: "
            + ", ".join(f"{node} {outcome}: {n}" for (node, outcome), n in by_node),
            f"nodes killed after SIGTERM: {self.killed_on_stop}",
            f"findings: {len(self.findings)}",
            *(f"  {finding}" for finding in self.findings),
            *(f"  | {line}" for line in self.evidence),
        ]


class _Node:
    """One ``dirsync run`` process and its own proxy to PostgreSQL."""

    def __init__(
        self, name: str, folder: Path, config: Path, proxy: FaultProxy, pause: float
    ) -> None:
        self.name = name
        self.pause = pause
        self.folder = folder
        self.config = config
        self.proxy = proxy
        self.proc: subprocess.Popen[bytes] | None = None
        self.fault: str | None = None
        self.undo_at = 0.0
        #: when a node that exited by itself starts again (systemd's ``Restart=on-failure``)
        self.restart_at: float | None = None
        self.log: Path | None = None
        self._logs = itertools.count(1)

    def start(self) -> None:
        self.log = self.folder / f"{self.name}.{next(self._logs)}.log"
        log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", NODE, str(self.pause), "--config", str(self.config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "RUNTIME_DIRECTORY": str(self.folder / f"{self.name}.run")},
        )
        log.close()

    def exited(self) -> int | None:
        """Its exit code if it exited by itself (not killed by the soak)."""
        if self.proc is None or self.fault == "kill" or self.restart_at is not None:
            return None
        return self.proc.poll()

    def last_line(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log else []
        return lines[-1][:300] if lines else ""

    def signal(self, number: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, number)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM and wait; the exit code (None: it had to be killed)."""
        if self.proc is None:
            return 0
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def _toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower()


def write_config(
    path: Path,
    store_url: str,
    directory: SoakDirectory,
    daemon: dict[str, Any],
    interval: int,
) -> Path:
    """The config every node shares (with its own ``[daemon] node``), owner-only."""
    server = directory.server
    lines = ["[store]", f"url = {_toml(store_url)}", "", "[daemon]"]
    lines += [f"{k} = {_toml(v)}" for k, v in daemon.items()]
    for name, client in directory.clients.items():
        lines += ["", "[[organization]]", f"name = {_toml(name)}"]
        lines += [f'interval = "{interval}s"', 'jitter = "0"', "[organization.source]"]
        source = {
            "type": "ldap",
            "url": server.url,
            "base_dn": client.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "bind_dn": server.admin_dn,
            "bind_password": server.admin_password,
            "start_tls": True,  # a password never crosses in clear (allow_plain_ldap)
            "ca_file": str(server.ca_file),
            "timeout": "10s",
            "disabled_filter": DISABLED_FILTER,
        }
        lines += [f"{k} = {_toml(v)}" for k, v in source.items()]
        lines += ["[organization.sync]", "overwrite_existing = true", 'deprovision = "remove"']
        lines += ['max_removals = "100%"', "min_source_ratio = 0.0"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _cli(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class NodesSoak:
    """One soak: ``run()`` returns its report. The servers are the caller's."""

    def __init__(
        self, settings: SoakSettings, slapd: Slapd, postgres: Postgres, folder: Path
    ) -> None:
        self.settings = settings
        self.folder = folder
        self.postgres = postgres
        self.rng = random.Random(settings.seed)
        database = f"soak_{settings.seed}_{os.getpid()}_{time.monotonic_ns()}"
        self.store_url = postgres.create_database(database)
        names = [f"client{i:02d}" for i in range(settings.organizations)]
        self.directory = SoakDirectory(slapd, f"{database}-", names, self.rng)
        self.report = SoakReport()
        self.nodes: list[_Node] = []

    def run(self) -> SoakReport:
        s = self.settings
        self.directory.create(s.users)
        admin = write_config(
            self.folder / "admin.toml", self.store_url, self.directory, {}, s.interval
        )
        upgraded = _cli(admin, "db", "upgrade")
        if upgraded.returncode != 0:
            raise RuntimeError(f"db upgrade failed: {upgraded.stderr[-2000:]}")
        try:
            self._start_nodes()
            self._churn_and_fault(time.monotonic() + s.seconds)
            self._undo_every_fault()
            changed = time.monotonic()
            self._wait_for_a_run_after(changed)
        finally:
            self._stop_nodes()
        self.report.changes = self.directory.changes
        self._check()
        return self.report

    # -- the cluster --------------------------------------------------------------------------

    def _start_nodes(self) -> None:
        s = self.settings
        for index in range(s.nodes):
            name = f"node-{'abcdefgh'[index]}"
            proxy = FaultProxy(self.postgres.port)
            proxy.__enter__()
            url = self.store_url.replace(f":{self.postgres.port}/", f":{proxy.port}/")
            daemon = {
                "node": name,
                "takeover": f"{s.takeover}s",
                "startup_jitter": "0",
                "retry_initial": "1s",
                "max_parallel": 4,
            }
            config = write_config(
                self.folder / f"{name}.toml", url, self.directory, daemon, s.interval
            )
            node = _Node(name, self.folder, config, proxy, s.apply_pause)
            node.start()
            self.nodes.append(node)

    def _churn_and_fault(self, end: float) -> None:
        while (now := time.monotonic()) < end:
            self._supervise(now)
            for node in self.nodes:
                if node.fault is not None and now >= node.undo_at:
                    self._undo(node)
            if self.rng.random() < 0.5:
                self.directory.change(self.rng.randint(1, 8))
            else:
                self._fault(self.rng.choice(self.nodes), now)
            time.sleep(self.rng.uniform(0.2, 2 * self.settings.pace))

    def _supervise(self, now: float) -> None:
        """As systemd would: a node that exited by itself starts again a second later, unless
        its exit code was 2 (``RestartPreventExitStatus=2``: a config problem)."""
        for node in self.nodes:
            if (code := node.exited()) is not None:
                said = re.sub(r"postgresql\S*|port \d+", "...", node.last_line())
                self.report.exits[f"{code}: {said}"] += 1
                if code == 2:
                    self.report.findings.append(f"{node.name} exited with 2: {node.last_line()}")
                node.restart_at = now + 1.0
            elif node.restart_at is not None and now >= node.restart_at:
                node.restart_at = None
                node.start()

    def _fault(self, node: _Node, now: float) -> None:
        def healthy(n: _Node) -> bool:
            return n.fault is None and n.restart_at is None and n.exited() is None

        # never the last healthy node: the organizations must keep running
        if not healthy(node) or len([n for n in self.nodes if healthy(n)]) < 2:
            return
        takeover = self.settings.takeover
        kind = self.rng.choice(["kill", "stop", "cut"])
        if self._running_on(node.name):
            self.report.faults_in_a_run[kind] += 1
        if kind == "kill":
            node.signal(signal.SIGKILL)
            assert node.proc is not None
            node.proc.wait()
            node.undo_at = now + self.rng.uniform(0.2, 2 * takeover)
        elif kind == "stop":
            node.signal(signal.SIGSTOP)
            node.undo_at = now + self.rng.uniform(1.2 * takeover, 3 * takeover)
        else:
            node.proxy.cut()
            node.undo_at = now + self.rng.uniform(0.3 * takeover, 3 * takeover)
        node.fault = kind
        self.report.faults[kind] += 1

    def _running_on(self, node: str) -> bool:
        since = datetime.now(UTC) - timedelta(minutes=1)
        with SqlStore.open(self.store_url, readonly=True) as store:
            runs = store.runs(since=since)
        return any(r.node == node and r.outcome == Outcome.RUNNING for r in runs)

    def _undo(self, node: _Node) -> None:
        if node.fault == "kill":
            node.start()
        elif node.fault == "stop":
            node.signal(signal.SIGCONT)
        elif node.fault == "cut":
            node.proxy.restore()
        node.fault = None

    def _undo_every_fault(self) -> None:
        for node in self.nodes:
            if node.fault is not None:
                self._undo(node)

    def _wait_for_a_run_after(self, changed: float) -> None:
        """Until every organization has a run that started after the last change and wrote
        its result, or the settle time is over (the check then reports the stragglers)."""
        since = time.time() - (time.monotonic() - changed)
        end = time.monotonic() + self.settings.settle
        pending = set(self.directory.clients)
        while pending and time.monotonic() < end:
            self._supervise(time.monotonic())
            with SqlStore.open(self.store_url, readonly=True) as store:
                for run in store.runs(sorted(pending)):
                    if (
                        run.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)
                        and run.started_at.timestamp() > since
                    ):
                        pending.discard(run.organization or "")
            time.sleep(0.5)
        self.report.findings += [f"{n}: no run after the last change" for n in sorted(pending)]

    def _stop_nodes(self) -> None:
        for node in self.nodes:
            code = node.stop(timeout=60)
            # -SIGTERM: it was (re)starting and had no handler yet, a clean stop for systemd
            if code is None:
                self.report.killed_on_stop.append(node.name)
            elif code not in (0, -signal.SIGTERM) and node.restart_at is None:
                self.report.findings.append(f"{node.name} exited with {code} on SIGTERM")
            node.proxy.close()

    # -- the check ----------------------------------------------------------------------------

    def _check(self) -> None:
        with self._fresh_sync() as fresh, SqlStore.open(self.store_url, readonly=True) as store:
            runs = store.runs()
            for run in runs:
                self.report.runs[(run.node or "?", str(run.outcome))] += 1
            self.report.findings += check_runs(runs)
            logs = sorted(self.folder.glob("node-*.log"))
            for run in runs:
                if run.outcome == Outcome.RUNNING:
                    self.report.evidence += log_lines_naming(logs, run.run_id)
            self.report.findings += check_logs(sorted(self.folder.glob("node-*.log")))
            self.report.longest_gap = longest_gap(runs)
            for name in sorted(self.directory.clients):
                self.report.findings += self._compare(name, store, fresh)
                self.report.findings += check_audit(name, store.events(name), runs)

    def _fresh_sync(self) -> SqlStore:
        config = write_config(
            self.folder / "fresh.toml",
            f"sqlite:///{self.folder / 'fresh.db'}",
            self.directory,
            {},
            self.settings.interval,
        )
        synced = _cli(config, "sync", "--full")
        if synced.returncode != 0:
            raise RuntimeError(f"the fresh full sync failed: {synced.stderr[-2000:]}")
        return SqlStore.open(f"sqlite:///{self.folder / 'fresh.db'}", readonly=True)

    def _compare(self, name: str, store: SqlStore, fresh: SqlStore) -> list[str]:
        def active(views: list[Any]) -> set[tuple[Any, ...]]:
            return {
                (m.email, m.external_id, m.name, m.status, m.role, m.groups)
                for m in views
                if m.status != "revoked"
            }

        found = []
        members = store.members(name)
        ours, theirs = active(members), active(fresh.members(name))
        if ours != theirs:
            found.append(
                f"{name}: members differ from a fresh sync: only in the store "
                f"{sorted(map(str, ours - theirs))[:5]}, "
                f"only in the fresh one {sorted(map(str, theirs - ours))[:5]}"
            )
        revoked = {m.external_id or "" for m in members if m.status == "revoked"}
        if stray := revoked - self.directory.disabled_ids(name):
            found.append(f"{name}: revoked members who are not disabled users: {sorted(stray)}")

        def listed(views: list[GroupView]) -> set[str]:
            return {json.dumps(g.to_json(), sort_keys=True) for g in views}

        if listed(store.groups(name)) != listed(fresh.groups(name)):
            found.append(f"{name}: groups differ from a fresh sync")
        return found


def check_runs(runs: list[RunRecord]) -> list[str]:
    """Every run finished; per organization, the runs that wrote a result never overlap."""
    found = [
        f"{r.organization}: run {r.run_id} on {r.node} has no final record"
        for r in runs
        if r.outcome == Outcome.RUNNING
    ]
    by_org: dict[str, list[RunRecord]] = {}
    for run in runs:
        if run.outcome in WROTE_A_RESULT:
            by_org.setdefault(run.organization or "", []).append(run)
    for name, history in by_org.items():
        history.sort(key=lambda r: r.started_at)
        for before, after in itertools.pairwise(history):
            if before.finished_at is None or after.started_at < before.finished_at:
                found.append(
                    f"{name}: run {after.run_id} on {after.node} began at {after.started_at} "
                    f"before run {before.run_id} on {before.node} finished "
                    f"({before.finished_at})"
                )
    return found


def check_logs(paths: list[Path]) -> list[str]:
    """Every line a node wrote is whole (a JSON line parses), and none is a traceback: the
    daemon logs what happened as events, never as a stack."""
    found = []
    for path in paths:
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            where = f"{path.name}:{number}"
            if line.startswith("{"):
                try:
                    json.loads(line)
                except ValueError:
                    found.append(f"{where}: a broken log line: {line[:200]}")
            elif line.startswith("Traceback"):
                last = next((x for x in lines[number:] if not x.startswith(" ")), "")
                found.append(f"{where}: a traceback: {lines[number - 2][:120]} / {last[:200]}")
    return found


def log_lines_naming(paths: list[Path], run_id: str, last: int = 15) -> list[str]:
    """The last lines of the nodes' logs that name a run, each prefixed with its log's name."""
    found = [
        f"{path.name}: {line[:400]}"
        for path in paths
        for line in path.read_text(errors="replace").splitlines()
        if run_id in line
    ]
    return found[-last:]


def longest_gap(runs: list[RunRecord]) -> tuple[float, str]:
    """The longest time between the starts of two completed runs of one organization."""
    starts: dict[str, list[datetime]] = {}
    for run in runs:
        if run.outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
            starts.setdefault(run.organization or "", []).append(run.started_at)
    gaps = [
        ((after - before).total_seconds(), name)
        for name, times in starts.items()
        for before, after in itertools.pairwise(sorted(times))
    ]
    return max(gaps, default=(0.0, ""))


def check_audit(name: str, events: list[Any], runs: list[RunRecord]) -> list[str]:
    """No failed or interrupted run wrote an audit event; no address was invited twice."""
    empty = {
        f"sync:{r.run_id}"
        for r in runs
        if r.organization == name and r.outcome in (Outcome.FAILED, Outcome.INTERRUPTED)
    }
    found = [
        f"{name}: {e.action} {e.target} by {e.actor}, a run recorded as failed or interrupted"
        for e in events
        if e.actor in empty
    ]
    invites = Counter(e.target for e in events if e.action == "member.invite")
    found += [f"{name}: {target} invited {n} times" for target, n in invites.items() if n > 1]
    return found
