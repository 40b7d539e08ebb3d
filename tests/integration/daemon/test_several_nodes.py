"""Several ``dirsync run`` processes on one PostgreSQL and one slapd, as several hosts would be.

Every node has the same config but its ``[daemon] node`` (on one machine the host names are
all the same) and a runtime folder of its own. The run records say which node ran what and
when: no organization may run on two nodes at once or more than once per interval, and every
run has a record. Nodes are killed, stopped and cut off from the store in the middle of a run
through a launcher that pauses the run at a chosen point (``LAUNCHER``); every wait polls for
a condition with a deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.sync.store_lock import libpq_conninfo
from dirsync.testing.fault_proxy import FaultProxy
from dirsync.testing.nodes_soak import CLI
from dirsync.testing.postgres import Postgres
from tests.integration.conftest import LdapTree
from tests.integration.daemon.support import DaemonConfig, closed_port
from tests.integration.daemon.test_daemon_process import Process, wait_until

_databases = itertools.count(1)
TAKEOVER = timedelta(seconds=3)
INTERVAL = timedelta(seconds=2)
DEADLINE = 30.0

#: ``dirsync run`` with a pause at a chosen point of its first apply; argv: mode, marker file,
#: then the CLI's arguments. Modes: ``plain``; ``hold`` (inside the apply's transaction, after
#: the members are written, until ``<marker>.release`` exists: for a SIGKILL or a network cut
#: there); ``stop`` (the process stops itself with SIGSTOP right before the apply, its
#: transaction not begun); ``stop-inside`` (it stops itself inside the apply's transaction)
LAUNCHER = """
import os, signal, sys, time
from pathlib import Path
from dirsync.state import apply
from dirsync.state.sql_store import SqlStore
from dirsync.cli.main import main

mode, marker = sys.argv[1], Path(sys.argv[2])

def hold(stage):
    if stage != "after_members" or marker.exists():
        return
    marker.write_text(str(os.getpid()))
    release = Path(str(marker) + ".release")
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)

original_apply = SqlStore.apply

def stop_then_apply(self, organization, **changes):
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGSTOP)
    return original_apply(self, organization, **changes)

def stop_inside(stage):
    if stage == "after_members" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGSTOP)

if mode == "hold":
    apply._fault_hook = hold
elif mode == "stop-inside":
    apply._fault_hook = stop_inside
elif mode == "stop":
    SqlStore.apply = stop_then_apply
sys.argv = ["dirsync", *sys.argv[3:]]
main()
"""


@dataclass(frozen=True)
class Run:
    organization: str
    run_id: str
    node: str | None
    started: datetime
    finished: datetime | None
    outcome: str
    error: str | None


class Cluster:
    """One PostgreSQL database, one config, and the nodes started on them."""

    def __init__(self, tree: LdapTree, tmp_path: Path, store_url: str) -> None:
        self.tmp_path = tmp_path
        self.store_url = store_url
        self.config = _Config(tree, tmp_path, store_url)
        self.config.daemon.update(
            {"takeover": f"{TAKEOVER.seconds}s", "retry_initial": "1s", "max_parallel": 4}
        )
        self.nodes: dict[str, Process] = {}

    def start(self, node: str, *, mode: str = "plain", store_url: str | None = None) -> Process:
        """``dirsync run`` as ``node``: the shared config with its node name (and store URL)."""
        self.config.url = store_url or self.store_url
        self.config.daemon["node"] = node
        self.config.path = self.tmp_path / f"{node}.toml"
        path = self.config.write()
        self.config.url = self.store_url
        runtime = self.tmp_path / f"{node}.run"
        process = Process(
            ["-c", LAUNCHER, mode, str(self.marker(node)), "--config", str(path), "run"],
            self.tmp_path / f"{node}.log",
            env={"RUNTIME_DIRECTORY": str(runtime)},
        )
        self.nodes[node] = process
        return process

    def marker(self, node: str) -> Path:
        return self.tmp_path / f"{node}.paused"

    def release(self, node: str) -> None:
        Path(f"{self.marker(node)}.release").write_text("")

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(libpq_conninfo(self.store_url)) as conn:
            return conn.execute(statement).fetchall()  # type: ignore[arg-type]

    def runs(self) -> list[Run]:
        rows = self.sql(
            "SELECT o.name, r.id, r.node, r.started_at, r.finished_at, r.outcome, r.error "
            "FROM runs r JOIN organizations o ON o.id = r.organization_id ORDER BY r.started_at"
        )
        return [Run(*row) for row in rows]

    def completed(self, organization: str) -> list[Run]:
        return [
            r
            for r in self.runs()
            if r.organization == organization and r.outcome in ("applied", "unchanged")
        ]

    def invites(self, organization: str) -> list[str]:
        rows = self.sql(
            "SELECT e.target FROM events e JOIN organizations o ON o.id = e.organization_id "
            f"WHERE o.name = '{organization}' AND e.action = 'member.invite' ORDER BY e.target"
        )
        return [r[0] for r in rows]

    def members(self, organization: str) -> list[str]:
        rows = self.sql(
            "SELECT m.email FROM members m JOIN organizations o ON o.id = m.organization_id "
            f"WHERE o.name = '{organization}' ORDER BY m.email"
        )
        return [r[0] for r in rows]

    def stop_all(self) -> None:
        for process in self.nodes.values():
            if process.proc.poll() is None:
                os.kill(process.proc.pid, signal.SIGCONT)
                process.proc.send_signal(signal.SIGTERM)
        for process in self.nodes.values():
            if process.proc.poll() is None or not process._stderr.closed:
                code, _ = process.finish()
                assert code in (0, -signal.SIGKILL), process.log.read_text()[-2000:]


class _Config(DaemonConfig):
    def __init__(self, tree: LdapTree, tmp_path: Path, url: str) -> None:
        super().__init__(tree, tmp_path)
        self.url = url

    @property
    def store_url(self) -> str:
        return self.url


@pytest.fixture
def cluster(setup: DaemonConfig, postgres: Postgres, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(setup.tree, tmp_path, postgres.create_database(f"nodes_{next(_databases)}"))
    made.config.write()
    # once, before the first node starts (the README's order)
    upgraded = CliRunner().invoke(cli, ["--config", str(made.config.path), "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    yield made
    for process in made.nodes.values():
        if process.proc.poll() is None:
            os.kill(process.proc.pid, signal.SIGCONT)
        process.kill()


def _never_two_at_once(runs: list[Run]) -> None:
    """Per organization, each run that wrote a result began after the one before it finished
    (the lock is taken before a run is recorded as begun and released after its record is
    final). A run that lost its lock while stalled may overlap the one that took over: it
    fails and writes nothing but its record (the tests check that nothing was applied twice)."""
    by_org: dict[str, list[Run]] = {}
    for run in runs:
        if run.outcome in ("applied", "unchanged", "refused"):
            by_org.setdefault(run.organization, []).append(run)
    for name, history in by_org.items():
        for before, after in itertools.pairwise(history):
            assert before.finished is not None and after.started >= before.finished, (
                name,
                before,
                after,
            )


def _once_per_interval(runs: list[Run]) -> None:
    """Scheduled runs of one organization are due an interval apart whichever node runs them,
    never twice per interval. A run starts after its due time by its node's pause and the
    machine's load, so the starts are compared with room for that (a node's own schedule
    beside another's would put runs at random distances, most of them much closer)."""
    for before, after in itertools.pairwise(runs):
        assert after.started - before.started >= INTERVAL * 0.35, (before, after)


@pytest.mark.parametrize("count", [2, 3])
def test_nodes_share_the_organizations_each_on_its_schedule_never_two_at_once(
    cluster: Cluster, count: int
) -> None:
    names = [f"org{i}" for i in range(2 * count)]
    for name in names:
        cluster.config.add(name, interval=f"{INTERVAL.seconds}s")
    nodes = [f"node-{letter}" for letter in "abc"[:count]]
    for node in nodes:
        cluster.start(node)

    def enough() -> bool:
        runs = cluster.runs()
        ran = {r.node for r in runs if r.outcome in ("applied", "unchanged")}
        return ran == set(nodes) and all(len(cluster.completed(n)) >= 3 for n in names)

    wait_until(enough, "three runs of every organization, on every node", DEADLINE)

    # a node that stops cleanly: the others run every organization on, at its due time
    leaving = cluster.nodes[nodes[0]]
    leaving.proc.send_signal(signal.SIGTERM)
    assert leaving.finish()[0] == 0
    left = datetime.now(UTC)

    def all_run_on() -> bool:
        return all(
            any(r.started > left and r.node != nodes[0] for r in cluster.completed(n))
            for n in names
        )

    wait_until(
        all_run_on, "every organization run by the nodes that stayed", 3 * INTERVAL.seconds + 5
    )
    cluster.stop_all()

    runs = cluster.runs()
    assert {r.outcome for r in runs} <= {"applied", "unchanged"}, runs
    _never_two_at_once(runs)
    for name in names:
        completed = cluster.completed(name)
        _once_per_interval(completed)
        assert completed[0].outcome == "applied"
        assert cluster.invites(name) == cluster.members(name)  # each invited once
        assert len(cluster.members(name)) == 3
    # a host without a daemon: status shows the schedule the nodes share
    shown = CliRunner().invoke(cli, ["--config", str(cluster.config.path), "status", "--json"])
    due = dict(
        cluster.sql(
            "SELECT o.name, s.next_due FROM schedules s "
            "JOIN organizations o ON o.id = s.organization_id"
        )
    )
    assert {row["organization"]: row["next_run"] for row in json.loads(shown.stdout)} == {
        name: due[name].astimezone(UTC).isoformat().replace("+00:00", "Z") for name in names
    }


def test_a_node_killed_in_the_middle_of_an_apply_is_taken_over_and_nothing_is_half_written(
    cluster: Cluster,
) -> None:
    cluster.config.add("acme", interval="1h")  # taken over in seconds, not at the next run
    first = cluster.start("node-a", mode="hold")
    wait_until(cluster.marker("node-a").exists, "node-a inside its apply", DEADLINE)
    assert cluster.members("acme") == []  # the members written so far are not committed
    second = cluster.start("node-b")

    first.proc.kill()
    first.finish()

    done = wait_until(
        lambda: cluster.completed("acme"), "node-b's run of acme", 4 * TAKEOVER.seconds + 10
    )
    assert [r.node for r in done] == ["node-b"] and done[0].outcome == "applied"
    killed = next(r for r in cluster.runs() if r.node == "node-a")
    assert killed.outcome == "interrupted" and killed.finished is None
    assert len(cluster.members("acme")) == 3
    assert cluster.invites("acme") == cluster.members("acme")
    assert second.proc.poll() is None
    cluster.stop_all()
    _never_two_at_once(cluster.runs())


def test_a_node_stopped_past_takeover_resumes_and_applies_nothing_over_the_run_that_took_over(
    cluster: Cluster,
) -> None:
    cluster.config.add("acme", interval="1h")
    first = cluster.start("node-a", mode="stop")
    wait_until(cluster.marker("node-a").exists, "node-a stopped before its apply", DEADLINE)
    cluster.start("node-b")
    done = wait_until(
        lambda: cluster.completed("acme"), "node-b's run of acme", 4 * TAKEOVER.seconds + 10
    )
    assert [r.node for r in done] == ["node-b"]

    os.kill(first.proc.pid, signal.SIGCONT)

    failed = wait_until(lambda: first.event("daemon.run_failed"), "node-a's apply refused")
    assert "another run of it began after this one" in failed["error"]
    record = wait_until(
        lambda: [r for r in cluster.runs() if r.node == "node-a" and r.outcome == "failed"],
        "node-a's run recorded as failed",
    )
    assert "nothing of this run was applied" in (record[0].error or "")
    assert len(cluster.members("acme")) == 3
    assert cluster.invites("acme") == cluster.members("acme")  # applied once, by node-b
    cluster.stop_all()


def test_a_node_stopped_inside_its_apply_transaction_holds_up_nobody_past_takeover(
    cluster: Cluster,
) -> None:
    """Its open transaction holds row locks the next run needs: PostgreSQL ends it after
    ``takeover`` (``idle_in_transaction_session_timeout``), rolled back, and the node that
    resumes finds its connection gone and fails its run."""
    cluster.config.add("acme", interval="1h")
    first = cluster.start("node-a", mode="stop-inside")
    wait_until(cluster.marker("node-a").exists, "node-a stopped inside its apply", DEADLINE)
    cluster.start("node-b")
    done = wait_until(
        lambda: cluster.completed("acme"), "node-b's run of acme", 4 * TAKEOVER.seconds + 10
    )
    assert [r.node for r in done] == ["node-b"]

    os.kill(first.proc.pid, signal.SIGCONT)

    failed = wait_until(lambda: first.event("daemon.run_failed"), "node-a's run failing")
    assert failed["error"].startswith("store transaction failed: "), failed
    assert len(cluster.members("acme")) == 3
    assert cluster.invites("acme") == cluster.members("acme")  # applied once, by node-b
    cluster.stop_all()
    _never_two_at_once(cluster.runs())


def test_a_network_cut_to_the_store_fails_the_run_cleanly_and_it_resumes_when_it_is_back(
    cluster: Cluster, postgres: Postgres
) -> None:
    cluster.config.add("acme", interval="1h")
    with FaultProxy(postgres.port) as proxy:
        through = cluster.store_url.replace(f":{postgres.port}/", f":{proxy.port}/")
        node = cluster.start("node-a", mode="hold", store_url=through)
        wait_until(cluster.marker("node-a").exists, "node-a inside its apply", DEADLINE)

        proxy.cut()
        cluster.release("node-a")

        failed = wait_until(lambda: node.event("daemon.run_failed"), "the run failing")
        assert failed["error"].startswith("store transaction failed: "), failed
        assert cluster.members("acme") == []  # nothing half-written
        wait_until(
            lambda: len([e for e in node.events() if e["event"] == "daemon.run_failed"]) >= 2,
            "a retry failing while the store is away",
        )
        proxy.restore()
        done = wait_until(lambda: cluster.completed("acme"), "the run once the store is back")

    assert done[0].node == "node-a" and done[0].outcome == "applied"
    assert len(cluster.members("acme")) == 3
    assert cluster.invites("acme") == cluster.members("acme")
    outcomes = [r.outcome for r in cluster.runs()]
    assert outcomes[0] == "interrupted" and outcomes[-1] == "applied", outcomes
    cluster.stop_all()


def test_a_node_started_while_the_store_is_unreachable_exits_with_one_line_for_systemd(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    """Exit 1, so that ``Restart=on-failure`` starts it again (2 would stop systemd trying)."""
    url = f"postgresql+psycopg://dirsync:the-password@127.0.0.1:{closed_port()}/dirsync"
    config = _Config(setup.tree, tmp_path, url)
    config.add("acme")
    node = Process(
        ["-c", CLI, "--config", str(config.write()), "run"],
        tmp_path / "node.log",
        env={"RUNTIME_DIRECTORY": str(tmp_path / "node.run")},
    )
    code, _ = node.finish()
    lines = node.log.read_text().splitlines()
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith(
        "dirsync: cannot open the store postgresql+psycopg://dirsync:***@127.0.0.1:"
    ), lines
    assert "the-password" not in lines[0]
