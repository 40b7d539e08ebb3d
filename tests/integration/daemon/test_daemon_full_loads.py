"""``[daemon] max_full_loads``: at most that many runs hold a whole organization at once.

The runs are the daemon's own ``run_job`` on threads of their own, as its thread pool runs
them, against the real slapd and SQLite. The directory reads are watched (never faked) by a
connector that wraps the real one: it counts the reads in progress and holds each until the
test lets it go, so what runs beside what is decided by the test, not by timing. The waits
below have a deadline only so that a broken gate fails instead of hanging.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dirsync.config.settings import load_config
from dirsync.connectors.base import Connector, ProgressCallback
from dirsync.connectors.registry import create_connector
from dirsync.daemon.scheduler import Daemon
from dirsync.model import Cursor, Reading
from dirsync.state.sql_store import SqlStore
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig

DEADLINE = 60.0


class WatchedReads:
    """Real connectors whose reads are counted and held until ``open_gate``."""

    def __init__(self) -> None:
        self.reading = 0
        self.most_at_once = 0
        self.reads = 0
        self.held = True
        self._changed = threading.Condition()

    def factory(self, settings: Any, **options: Any) -> Connector:
        return _Watched(create_connector(settings, **options), self)

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


class _Watched:
    def __init__(self, inner: Connector, watch: WatchedReads) -> None:
        self.inner = inner
        self.watch = watch

    def read(self, cursor: Cursor | None, *, progress: ProgressCallback | None = None) -> Reading:
        self.watch.enter()
        try:
            return self.inner.read(cursor, progress=progress)
        finally:
            self.watch.leave()

    def probe(self) -> Any:
        return self.inner.probe()

    def close(self) -> None:
        self.inner.close()


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
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


def _outcomes(store: SqlStore) -> dict[str, str]:
    return {name: str(run.outcome) for name, run in store.last_runs().items()}


def _run_all(daemon: Daemon, names: list[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=daemon.run_job, args=[name]) for name in names]
    for thread in threads:
        thread.start()
    return threads


def test_first_syncs_of_four_organizations_read_two_at_a_time(
    daemon: tuple[Daemon, WatchedReads, SqlStore],
) -> None:
    the_daemon, watch, store = daemon
    names = ["acme", "beta", "gamma", "delta"]
    threads = _run_all(the_daemon, names)

    # two first syncs read; the other two wait for the gate before loading anything
    until(lambda: watch.reading == 2 and the_daemon.full_loads.waiting == 2, "2 read, 2 wait")
    assert the_daemon.running() == sorted(names)  # all four hold their lock
    assert _outcomes(store) == dict.fromkeys(names, "running")  # and none has finished
    watch.open_gate()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive()

    assert watch.most_at_once == 2 and watch.reads == 4
    assert the_daemon.full_loads.peak == 2 and the_daemon.full_loads.holding == 0
    assert _outcomes(store) == dict.fromkeys(names, "applied")
    assert all(len(store.members(name)) == 3 for name in names)


def test_quiet_runs_go_on_while_every_full_load_is_taken(
    daemon: tuple[Daemon, WatchedReads, SqlStore],
) -> None:
    the_daemon, watch, store = daemon
    watch.open_gate()
    the_daemon.run_job("acme")  # synced: its next run is a quiet one
    assert _outcomes(store)["acme"] == "applied"

    with the_daemon.full_loads, the_daemon.full_loads:  # both slots, as two long full reads
        (quiet,) = _run_all(the_daemon, ["acme"])
        quiet.join(DEADLINE)
        assert not quiet.is_alive()  # it never waited for a slot
        assert _outcomes(store)["acme"] == "unchanged"
        assert the_daemon.full_loads.waiting == 0

        # a first sync does wait, and goes once a slot is free
        (first,) = _run_all(the_daemon, ["beta"])
        until(lambda: the_daemon.full_loads.waiting == 1, "beta waits for a slot")
        assert _outcomes(store)["beta"] == "running"
    first.join(DEADLINE)
    assert not first.is_alive()
    assert _outcomes(store)["beta"] == "applied"
    assert watch.most_at_once == 1
