"""The scheduler in-process, with frozen time and no sleeps, against the real slapd and SQLite.

APScheduler's own scheduling logic runs (triggers, coalescing, misfire grace, max instances);
only its sleeping thread is replaced by ``ManualScheduler.fire_due()`` at the frozen time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from freezegun.api import FrozenDateTimeFactory
from structlog.testing import capture_logs

from dirsync.config.settings import load_config
from dirsync.daemon.metrics import Metrics
from dirsync.daemon.process import reload
from dirsync.daemon.scheduler import Daemon
from dirsync.daemon.systemd import Notifier
from dirsync.state import apply
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import OrganizationLock
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig


class Harness:
    def __init__(self, setup: DaemonConfig, *, metrics: Metrics | None = None) -> None:
        self.setup = setup
        config = load_config(setup.write())
        self.store = SqlStore.open(config.store.url)
        self.scheduler = ManualScheduler()
        self.daemon = Daemon(
            config,
            store=self.store,
            runtime_dir=setup.runtime_dir,
            metrics=metrics,
            scheduler=self.scheduler,
        )
        self.daemon.start()

    def next_in(self, name: str) -> float:
        """Seconds from now to the organization's next run."""
        when = self.daemon.next_run(name)
        assert when is not None
        return (when - datetime.now(UTC)).total_seconds()

    def outcomes(self) -> dict[str, str]:
        return {name: str(run.outcome) for name, run in self.store.last_runs().items()}

    def close(self) -> None:
        self.daemon.shutdown()
        self.store.close()


@pytest.fixture
def start(setup: DaemonConfig) -> Iterator[Callable[..., Harness]]:
    """Starts the daemon on the config written so far; stops it after the test."""
    made: list[Harness] = []

    def make(metrics: Metrics | None = None) -> Harness:
        made.append(Harness(setup, metrics=metrics))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


def test_each_organization_gets_one_job_that_first_runs_within_the_startup_jitter(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.daemon["startup_jitter"] = "5s"
    setup.add("acme", interval="15m", jitter="20s")
    setup.add("nightly", cron="30 2 * * *", interval="1d")
    setup.add("globex", interval="1h")
    harness = start()

    jobs = harness.daemon.jobs()
    assert sorted(jobs) == ["acme", "globex", "nightly"]
    assert isinstance(jobs["acme"].trigger, IntervalTrigger)
    assert jobs["acme"].trigger.interval == timedelta(minutes=15)
    assert jobs["acme"].trigger.jitter == 20
    assert isinstance(jobs["nightly"].trigger, CronTrigger)
    assert str(jobs["nightly"].trigger.fields[6]) == "30"  # minute
    for name, job in jobs.items():
        assert job.max_instances == 1 and job.coalesce is True
        # an explicit grace of one interval, not APScheduler's default of one second
        interval = load_config(setup.path).get(name).interval
        assert job.misfire_grace_time == interval.total_seconds()
        assert 0 <= harness.next_in(name) <= 5  # right after start, not one interval later


def test_a_failing_organization_retries_with_doubling_delays_up_to_its_interval(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("down", reachable=False, interval="4m")
    harness = start()

    delays = []
    for _ in range(5):
        assert harness.scheduler.fire_due() == 1
        delays.append(harness.next_in("down"))
        frozen.tick(timedelta(seconds=delays[-1]))
    assert delays == [30, 60, 120, 240, 240]
    assert harness.outcomes() == {"down": "failed"}
    assert "down failed x5" in harness.daemon.status_line()


def test_a_failing_organization_neither_delays_nor_breaks_another(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", interval="10m")
    setup.add("down", reachable=False, interval="10m")
    harness = start()

    assert harness.scheduler.fire_due() == 2
    assert harness.outcomes() == {"acme": "applied", "down": "failed"}
    assert len(harness.store.members("acme")) == 3
    assert (harness.next_in("acme"), harness.next_in("down")) == (600, 30)

    frozen.tick(timedelta(seconds=30))
    assert harness.scheduler.fire_due() == 1  # only the retry
    assert harness.next_in("acme") == 570

    frozen.tick(timedelta(seconds=570))
    harness.scheduler.fire_due()
    assert harness.outcomes()["acme"] == "unchanged"
    assert harness.next_in("acme") == 600


def test_a_success_after_failures_returns_to_the_regular_interval(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", reachable=False, interval="10m")
    harness = start()
    harness.scheduler.fire_due()
    assert harness.next_in("acme") == 30

    setup.add("acme", interval="10m")  # the directory is reachable again
    setup.write()
    assert reload(harness.daemon, Notifier(address=None), str(setup.path))
    frozen.tick(timedelta(seconds=30))
    harness.scheduler.fire_due()
    assert harness.outcomes() == {"acme": "applied"}
    assert harness.next_in("acme") == 600


def test_full_sync_interval_reads_in_full_first_and_then_when_due(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", interval="1h", full_sync_interval="1d")
    harness = start()
    with capture_logs() as logs:
        for _ in range(26):
            harness.scheduler.fire_due()
            frozen.tick(timedelta(hours=1))
    # the daemon asks for a full read (the LDAP connector reads in full every time anyway)
    runs = [e for e in logs if e["event"] == "daemon.run_finished"]
    assert len(runs) == 26
    assert [i for i, run in enumerate(runs) if run["full"]] == [0, 24]


def test_sighup_with_a_valid_config_adds_removes_and_reschedules(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", interval="10m")
    setup.add("globex", interval="10m")
    metrics = Metrics()
    harness = start(metrics)
    harness.scheduler.fire_due()
    runs = "dirsync_runs_total"
    assert metrics.registry.get_sample_value(runs, {"organization": "globex", "outcome": "applied"})

    setup.organizations.pop("globex")
    setup.add("acme", interval="30m")
    setup.add("initech", interval="5m")
    setup.write()
    with capture_logs() as logs:
        assert reload(harness.daemon, Notifier(address=None), str(setup.path))
    jobs = harness.daemon.jobs()
    assert sorted(jobs) == ["acme", "initech"]
    assert jobs["acme"].trigger.interval == timedelta(minutes=30)
    assert harness.next_in("acme") == 1800
    assert harness.next_in("initech") == 0  # a new organization runs right away
    (event,) = [e for e in logs if e["event"] == "daemon.reloaded"]
    assert (event["added"], event["removed"], event["rescheduled"]) == (
        ["initech"],
        ["globex"],
        ["acme"],
    )
    assert harness.scheduler.fire_due() == 1
    assert "initech" in harness.outcomes()
    # a removed organization's metrics go with it
    exposed = {s.labels.get("organization") for f in metrics.registry.collect() for s in f.samples}
    assert exposed == {"acme", "initech", None}


def test_sighup_with_an_invalid_config_is_logged_and_the_old_one_keeps_running(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", interval="10m")
    harness = start()
    before = {n: (j.trigger.interval, j.next_run_time) for n, j in harness.daemon.jobs().items()}

    setup.extra = '\n[organization.sync]\nmax_removals = "lots"\n'
    setup.write()
    with capture_logs() as logs:
        assert not reload(harness.daemon, Notifier(address=None), str(setup.path))
    (event,) = [e for e in logs if e["event"] == "daemon.reload_failed"]
    assert any("organization[acme].sync.max_removals" in p for p in event["problems"])
    after = {n: (j.trigger.interval, j.next_run_time) for n, j in harness.daemon.jobs().items()}
    assert after == before
    harness.scheduler.fire_due()
    assert harness.outcomes() == {"acme": "applied"}


def test_a_run_is_skipped_while_a_one_shot_sync_holds_the_organization_lock(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    setup.add("acme", interval="10m")
    harness = start()
    with OrganizationLock(setup.runtime_dir, "acme"), capture_logs() as logs:
        assert harness.scheduler.fire_due() == 1
    assert [e["event"] for e in logs if e["event"].startswith("daemon.run")] == [
        "daemon.run_skipped"
    ]
    assert harness.outcomes() == {}
    assert harness.next_in("acme") == 600


def test_a_run_over_its_budget_makes_the_daemon_unhealthy_until_it_ends(
    setup: DaemonConfig,
    frozen: FrozenDateTimeFactory,
    start: Callable[..., Harness],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup.daemon["run_budget"] = "10m"
    setup.add("acme", interval="1h")
    harness = start()
    seen: list[list[str]] = []

    def slow_apply(stage: str) -> None:
        if stage == "after_members":
            seen.append(harness.daemon.problems())
            frozen.tick(timedelta(minutes=11))
            seen.append(harness.daemon.problems())
            seen.append([harness.daemon.status_line()])

    monkeypatch.setattr(apply, "_fault_hook", slow_apply)
    assert harness.daemon.problems() == []
    harness.scheduler.fire_due()
    assert seen[0] == []
    assert seen[1] == ["the run of acme has taken longer than its budget of 0:10:00"]
    assert seen[2] == ["acme running, next 10:00:00Z"]
    assert harness.daemon.problems() == []


def test_a_directory_that_never_answers_does_not_hold_up_the_other_organizations(
    setup: DaemonConfig,
) -> None:
    """Real threads, real time: the stuck read waits out its timeout on its own worker."""
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        setup.add("stuck", interval="1h", source={"url": url, "timeout": "2s"})
        setup.add("acme", interval="1h")
        config = load_config(setup.write())
        store = SqlStore.open(config.store.url)
        daemon = Daemon(config, store=store, runtime_dir=setup.runtime_dir)
        try:
            daemon.start()
            deadline = time.monotonic() + 20

            def acme_finished() -> bool:
                # its record is committed a moment before its worker leaves the running set
                run = store.last_runs().get("acme")
                done = run is not None and str(run.outcome) != "running"
                return done and "acme" not in daemon.running()

            while not acme_finished() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert str(store.last_runs()["acme"].outcome) == "applied"
            assert daemon.running() == ["stuck"]
            daemon.shutdown(wait=True)  # waits for the stuck run, which fails on its timeout
            assert str(store.last_runs()["stuck"].outcome) == "failed"
        finally:
            daemon.shutdown(wait=False)
            store.close()


def test_a_run_still_going_at_its_next_due_time_is_logged_as_overlapped(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory, start: Callable[..., Harness]
) -> None:
    """APScheduler reports it with the run times it could not start (a submission event, not
    an execution event: seen in the nodes soak as a traceback instead of the log line)."""
    setup.add("acme", interval="10m")
    harness = start()
    with capture_logs() as logs:
        harness.scheduler._process_jobs()  # the first run, submitted and still going
        frozen.tick(timedelta(minutes=10))
        due = harness.daemon.next_run("acme")
        harness.scheduler._process_jobs()  # its next due time: one instance at most
        assert harness.scheduler.executor.run_queued() == 1

    overlapped = [e for e in logs if e["event"] == "daemon.run_overlapped"]
    assert overlapped == [
        {
            "event": "daemon.run_overlapped",
            "log_level": "warning",
            "organization": "acme",
            "scheduled": due.isoformat().replace("+00:00", "Z") if due else None,
        }
    ]
    assert harness.outcomes() == {"acme": "applied"}
