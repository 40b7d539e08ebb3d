"""``[daemon] max_full_loads`` (1 by default): at most that many runs load, plan and apply
their whole organization at once, and at most that many more read their directory meanwhile;
a read that is slow lends its read slot to the others.

The runs are the daemon's own ``run_job`` on threads of their own, as its thread pool runs
them, against the real slapd and SQLite. The directory reads and the whole loads are watched
(never faked): a connector that wraps the real one counts the reads in progress, a store that
wraps the real one counts the runs between their load and the end of their apply, and each
holds them until the test lets them go, so what runs beside what is decided by the test, not
by timing. The waits below have a deadline only so that a broken gate fails instead of
hanging. The last test is the daemon as it runs, with its own scheduler and threads, and a
directory that stops answering in the middle of a first sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dirsync.config.settings import load_config
from dirsync.connectors.base import Connector, HeldRefs, ProgressCallback
from dirsync.connectors.registry import create_connector
from dirsync.daemon.scheduler import Daemon
from dirsync.model import Cursor, Reading
from dirsync.state.sql_store import SqlStore
from dirsync.testing.fault_proxy import FaultProxy
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig
from tests.integration.test_hostile_directory import BIND_RESPONSE

DEADLINE = 60.0


class Watch:
    """Counts what is in progress (the most at once, how many in all) and holds each until
    ``open_gate``."""

    def __init__(self) -> None:
        self.reading = 0
        self.most_at_once = 0
        self.reads = 0
        self.held = True
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self.reading += 1
            self.reads += 1
            self.most_at_once = max(self.most_at_once, self.reading)
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: not self.held, timeout=DEADLINE):
                raise AssertionError("the test never let this read go")

    def leave(self) -> None:
        with self._changed:
            self.reading -= 1
            self._changed.notify_all()

    def open_gate(self) -> None:
        with self._changed:
            self.held = False
            self._changed.notify_all()


class WatchedReads(Watch):
    """Real connectors whose reads are counted and held."""

    def factory(self, settings: Any, **options: Any) -> Connector:
        return _Watched(create_connector(settings, **options), self)


class WatchedLoads(Watch):
    """The real store, whose runs are counted and held from their whole load (``load``) to the
    end of their apply: what ``max_full_loads`` bounds."""

    def __init__(self, inner: SqlStore) -> None:
        super().__init__()
        self.inner = inner

    def load(self, organization: str) -> Any:
        self.enter()
        return self.inner.load(organization)

    def apply(self, organization: str, **arguments: Any) -> Any:
        try:
            return self.inner.apply(organization, **arguments)
        finally:
            self.leave()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Watched:
    def __init__(self, inner: Connector, watch: Watch) -> None:
        self.inner = inner
        self.watch = watch

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        self.watch.enter()
        try:
            return self.inner.read(cursor, progress=progress, held=held)
        finally:
            self.watch.leave()

    def probe(self) -> Any:
        return self.inner.probe()

    def close(self) -> None:
        self.inner.close()


def until(condition: Callable[[], bool], what: str, seconds: float = DEADLINE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture
def daemon(setup: DaemonConfig) -> Iterator[tuple[Daemon, WatchedReads, SqlStore]]:
    setup.daemon.update(max_parallel=4, max_full_loads=2)
    for name in ("acme", "beta", "gamma", "delta"):
        setup.add(name, interval="15m")
    config = load_config(setup.write())
    store = SqlStore.open(config.store.url)
    watch = WatchedReads()
    made = Daemon(
        config,
        store=store,
        runtime_dir=setup.runtime_dir,
        scheduler=ManualScheduler(),
        connector_factory=watch.factory,
    )
    made.start(paused=True)  # the test runs the jobs, on threads of its own
    yield made, watch, store
    watch.open_gate()  # a failed test leaves no read held
    made.shutdown()
    store.close()


@pytest.fixture
def watched_loads(setup: DaemonConfig) -> Iterator[tuple[Daemon, WatchedReads, WatchedLoads]]:
    """Four organizations, ``max_parallel = 4`` and ``max_full_loads`` at its default."""
    setup.daemon.update(max_parallel=4)
    for name in ("acme", "beta", "gamma", "delta"):
        setup.add(name, interval="15m")
    config = load_config(setup.write())
    assert config.daemon.max_full_loads == 1
    store = SqlStore.open(config.store.url)
    reads, loads = WatchedReads(), WatchedLoads(store)
    made = Daemon(
        config,
        store=loads,  # type: ignore[arg-type]  # the real store, watched
        runtime_dir=setup.runtime_dir,
        scheduler=ManualScheduler(),
        connector_factory=reads.factory,
    )
    made.start(paused=True)  # the test runs the jobs, on threads of its own
    yield made, reads, loads
    reads.open_gate()  # a failed test leaves nothing held
    loads.open_gate()
    made.shutdown()
    store.close()


def _outcomes(store: SqlStore) -> dict[str, str]:
    return {name: str(run.outcome) for name, run in store.last_runs().items()}


def _run_all(daemon: Daemon, names: list[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=daemon.run_job, args=[name]) for name in names]
    for thread in threads:
        thread.start()
    return threads


def test_first_syncs_of_four_organizations_read_and_load_one_at_a_time(
    watched_loads: tuple[Daemon, WatchedReads, WatchedLoads],
) -> None:
    the_daemon, reads, loads = watched_loads
    the_daemon.full_loads.patience = DEADLINE  # no read here is slow enough to lend its slot
    reads.open_gate()
    names = ["acme", "beta", "gamma", "delta"]
    threads = _run_all(the_daemon, names)

    # one loads its whole organization, the next has read its directory meanwhile and waits
    # to load, the two others wait to read: no more than one finished reading waits
    until(lambda: loads.reading == 1 and the_daemon.full_loads.waiting == 3, "1 loads, 3 wait")
    assert reads.reads == 2
    assert the_daemon.running() == sorted(names)  # all four hold their lock
    assert _outcomes(loads.inner) == dict.fromkeys(names, "running")  # none has finished
    loads.open_gate()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()

    assert loads.most_at_once == 1 and loads.reads == 4  # the bound held, every run loaded
    assert reads.most_at_once == 1 and reads.reads == 4
    assert the_daemon.full_loads.peak == 1 and the_daemon.full_loads.holding == 0
    assert the_daemon.full_loads.lent == 0
    assert _outcomes(loads.inner) == dict.fromkeys(names, "applied")
    assert all(len(loads.inner.members(name)) == 3 for name in names)


def test_slow_reads_lend_their_slot_and_the_whole_loads_still_go_one_at_a_time(
    watched_loads: tuple[Daemon, WatchedReads, WatchedLoads],
) -> None:
    the_daemon, reads, loads = watched_loads
    names = ["acme", "beta", "gamma", "delta"]
    threads = _run_all(the_daemon, names)

    # every directory is slow (its read held): each read lends its slot to the next run
    # after the gate's patience, so that the four end up reading at once, none holding one
    until(lambda: reads.reading == 4 and the_daemon.full_loads.lent == 4, "4 reads, 4 lent")
    assert the_daemon.full_loads.holding == 0 and the_daemon.full_loads.waiting == 0
    reads.open_gate()

    # their loads, plans and applies still go one at a time
    until(lambda: loads.reading == 1 and the_daemon.full_loads.waiting == 3, "1 loads, 3 wait")
    assert reads.reading == 0 and reads.reads == 4
    loads.open_gate()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()

    assert loads.most_at_once == 1 and loads.reads == 4
    assert the_daemon.full_loads.peak == 1 and the_daemon.full_loads.holding == 0
    assert _outcomes(loads.inner) == dict.fromkeys(names, "applied")


def test_quiet_runs_go_on_while_every_full_load_is_taken(
    daemon: tuple[Daemon, WatchedReads, SqlStore],
) -> None:
    the_daemon, watch, store = daemon
    watch.open_gate()
    the_daemon.run_job("acme")  # synced: its next run is a quiet one
    assert _outcomes(store)["acme"] == "applied"

    with the_daemon.full_loads() as one, the_daemon.full_loads() as two:
        one.hold()  # both slots, as two long whole loads
        two.hold()
        (quiet,) = _run_all(the_daemon, ["acme"])
        quiet.join(DEADLINE)
        assert not quiet.is_alive()  # it never waited for a slot
        assert _outcomes(store)["acme"] == "unchanged"
        assert the_daemon.full_loads.waiting == 0

        # a first sync reads beside them, then waits to load, and goes once a slot is free
        (first,) = _run_all(the_daemon, ["beta"])
        until(lambda: the_daemon.full_loads.waiting == 1, "beta waits for a slot")
        assert watch.reads == 3  # acme's first and quiet runs, and beta's
        assert _outcomes(store)["beta"] == "running"
    first.join(DEADLINE)
    assert not first.is_alive()
    assert _outcomes(store)["beta"] == "applied"
    assert watch.most_at_once == 1


def test_a_directory_that_stops_answering_in_its_first_sync_delays_no_other_full_run(
    setup: DaemonConfig,
) -> None:
    """The default bound (one whole load at a time), the daemon's own scheduler and threads,
    real time: ``stuck``'s first sync binds, then its directory (the session's slapd behind
    the fault proxy) never sends a byte more; its read would wait two minutes. The three
    other first syncs (whole loads, each needing the one slot) finish meanwhile, well within
    the 30 s they are given: if stuck took the slot first, it lends it after the gate's
    patience (a quarter of a second)."""
    with FaultProxy(setup.tree.server.port, after=BIND_RESPONSE, mode="stall") as proxy:
        setup.add(
            "stuck",
            interval="1h",
            source={
                "url": proxy.url,  # plain: the proxy shapes the LDAP bytes themselves
                "start_tls": False,
                "allow_plain_ldap": True,
                "timeout": "120s",
                "read_deadline": "120s",
            },
        )
        names = ["acme", "beta", "gamma"]
        for name in names:
            setup.add(name, interval="1h")
        config = load_config(setup.write())
        assert config.daemon.max_full_loads == 1
        store = SqlStore.open(config.store.url)
        daemon = Daemon(config, store=store, runtime_dir=setup.runtime_dir)
        try:
            daemon.start()
            until(lambda: proxy.broken == 1, "stuck's directory stalls after the bind")
            until(
                lambda: (
                    all(
                        str(run.outcome) == "applied"
                        for name, run in store.last_runs().items()
                        if name != "stuck"
                    )
                    and len(store.last_runs()) == 4
                    and daemon.running() == ["stuck"]  # their workers left: slot given back
                ),
                "the other three first syncs applied",
                30,
            )
            assert str(store.last_runs()["stuck"].outcome) == "running"
            assert daemon.full_loads.peak == 1 and daemon.full_loads.holding == 0
            assert daemon.full_loads.patience == 0.25
            assert all(len(store.members(name)) == 3 for name in names)
            proxy.close()  # ends stuck's read (its connection closes), then its run
            daemon.shutdown(wait=True)
            assert str(store.last_runs()["stuck"].outcome) == "failed"
        finally:
            daemon.shutdown(wait=False)
            store.close()
