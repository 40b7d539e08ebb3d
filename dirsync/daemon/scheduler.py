"""The scheduler: one APScheduler 3.x job per organization, retries, reloads, health.

Each job is ``run_job(name)``: it takes the organization's lock (shared with one-shot
``dirsync sync``), runs one sync with the settings current at that moment, and reschedules a
failed organization with exponential backoff, never later than its next regular run. Jobs run
on a thread pool, so a slow or failing organization never delays another; ``max_instances=1``
keeps one run per organization, ``coalesce`` folds missed runs into one, and a late run still
starts within its ``misfire_grace_time`` (one interval; APScheduler's default is one second).

Signals, sd_notify and the watchdog live in ``process.py``; this module has no process-wide
effects, and tests drive it with frozen time through ``dirsync.testing.scheduler``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED, BaseScheduler

from dirsync.config.settings import Config, OrganizationSettings
from dirsync.connectors.base import Connector
from dirsync.connectors.registry import create_connector
from dirsync.daemon import memory, schedule
from dirsync.daemon.alert_delivery import deliver
from dirsync.daemon.alerting import Alerter, Deliver
from dirsync.daemon.claims import Claims, LocalClaims, SharedClaims
from dirsync.daemon.full_loads import FullLoads
from dirsync.daemon.housekeeping import Housekeeping
from dirsync.daemon.metrics import Metrics
from dirsync.errors import DirsyncError
from dirsync.plan import Outcome, Plan
from dirsync.state.schedules import Claim
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import LockBusy, LockError, LockRefused
from dirsync.sync.result import RunResult
from dirsync.sync.run import Clock, run_organization, this_node, utcnow
from dirsync.sync.store_lock import StoreLockError, is_postgresql, organization_lock

log = structlog.get_logger("dirsync.daemon.scheduler")

ConnectorFactory = Callable[..., Connector]


@dataclass(slots=True)
class OrganizationProgress:
    """What the daemon knows about one organization between runs (mutable, daemon-private)."""

    failures: int = 0
    running_since: datetime | None = None
    last_full: datetime | None = None
    last_outcome: str | None = None
    last_finished: datetime | None = None


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        store: SqlStore,
        runtime_dir: Path,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
        connector_factory: ConnectorFactory = create_connector,
        scheduler: BaseScheduler | None = None,
        alert_sender: Deliver = deliver,
        claims: Claims | None = None,
    ) -> None:
        self.config = config
        self.store = store
        #: whose turn a run is: this daemon's alone, or the store's shared schedule's
        self.claims = claims or _claims_for(config, store)
        self.runtime_dir = runtime_dir
        self.metrics = metrics
        self._clock = clock
        self._connector_factory = connector_factory
        self._progress: dict[str, OrganizationProgress] = {}
        self._lock = threading.Lock()
        self._active_changed = threading.Condition()
        self._active = 0
        self._stopping = False
        #: why the config file on disk was refused by the last reload (None: it was adopted)
        self.rejected: str | None = None
        #: reloads so far (``reload_report``'s generation)
        self.reloads = 0
        self.upkeep = Housekeeping(
            store, alerter=Alerter(runtime_dir, send=alert_sender), metrics=metrics, clock=clock
        )
        #: fixed at start-up, as the thread pool is (``max_full_loads``)
        self.full_loads = FullLoads(config.daemon.max_full_loads)
        self.scheduler = scheduler or BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(config.daemon.max_parallel)}, timezone=UTC
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- jobs --------------------------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        self.scheduler.start(paused=paused)
        for org in self.config.organization:
            self._add_job(org)
        self._publish_schedule()
        self.upkeep.publish_seats([o.name for o in self.config.organization])

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling; with ``wait`` a run in progress finishes (commits or rolls back).

        The runs are awaited here, not by APScheduler's ``shutdown(wait=True)``: that holds the
        job store lock while it waits, and a finishing run needs the lock to reschedule itself.
        """
        with self._active_changed:
            self._stopping = True
            while wait and self._active:
                self._active_changed.wait(timeout=1)
        if self.scheduler.state != STATE_STOPPED:
            self.scheduler.shutdown(wait=wait)
        schedule.remove_schedule(self.runtime_dir)

    def _add_job(self, org: OrganizationSettings) -> None:
        spread = random.uniform(0, self.config.daemon.startup_jitter.total_seconds())
        self._progress.setdefault(org.name, OrganizationProgress())
        if self.metrics is not None:
            self.metrics.track(org.name, seats=org.seats)
        self.scheduler.add_job(
            self.run_job,
            trigger=schedule.trigger_for(org),
            args=[org.name],
            id=org.name,
            name=f"sync {org.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(org.interval.total_seconds())),
            next_run_time=self._clock() + timedelta(seconds=spread),
            replace_existing=True,
        )

    def jobs(self) -> dict[str, Job]:
        return {job.id: job for job in self.scheduler.get_jobs()}

    def next_run(self, name: str) -> datetime | None:
        job = self.scheduler.get_job(name)
        return None if job is None else job.next_run_time

    def run_job(self, name: str) -> RunResult | None:
        """One scheduled run of ``name``; never raises (a failure is a result and a retry)."""
        with self._active_changed:
            if self._stopping:
                return None
            self._active += 1
        try:
            return self._run(name)
        finally:
            with self._active_changed:
                self._active -= 1
                self._active_changed.notify_all()

    def _run(self, name: str) -> RunResult | None:
        org = next((o for o in self.config.organization if o.name == name), None)
        if org is None:
            return None  # removed by a reload while it waited
        progress = self._progress.setdefault(name, OrganizationProgress())
        pause = self.claims.pause(name, org.interval)
        if pause > 0:  # several nodes may claim it: a short random wait spreads them
            time.sleep(pause)
            if self._stopping:
                return None
        started = self._clock()
        bound = log.bind(organization=name)
        lock = organization_lock(
            self.config.store.url, self.runtime_dir, name, takeover=self.config.daemon.takeover
        )
        full = schedule.needs_full_read(org, progress.last_full, started)
        claim: Claim | None = None
        try:
            lock.acquire()
        except LockBusy as exc:
            bound.info("daemon.run_skipped", reason=str(exc))
            self._look_again(org, started)
            return None
        except (LockError, LockRefused, StoreLockError) as exc:  # e.g. a lock file left by root
            result = _failed(name, str(exc))
        else:
            try:
                turn = self._claimed_run(org, progress, started)
            finally:
                lock.release()
            if turn is None:
                return None
            result, full, claim = turn
        self._after_run(org, progress, result, started=started, full=full)
        if claim is not None:
            self.claims.finish(
                name,
                claim,
                next_due=self.next_run(name),
                failures=progress.failures,
                last_full=progress.last_full,
            )
        memory.give_back()
        return result

    def _claimed_run(
        self, org: OrganizationSettings, progress: OrganizationProgress, started: datetime
    ) -> tuple[RunResult, bool, Claim | None] | None:
        """With the lock held: the run (its result, whether it read in full, its claim) if it
        is this node's turn; None when it is not due (another node ran it)."""
        try:
            claim = self.claims.claim(
                org.name, started, failures=progress.failures, last_full=progress.last_full
            )
        except DirsyncError as exc:  # the store is unavailable
            return _failed(org.name, str(exc)), False, None
        if not claim.won:
            self._not_due(org, claim)
            return None
        with self._lock:  # the shared schedule's, when it knows better
            progress.failures, progress.last_full = claim.failures, claim.last_full
        full = schedule.needs_full_read(org, progress.last_full, started)
        progress.running_since = started
        try:
            return self._sync(org, full=full), full, claim
        finally:
            progress.running_since = None

    def _not_due(self, org: OrganizationSettings, claim: Claim) -> None:
        """Another node ran it (or runs it): this node's job moves to when it is due."""
        if claim.next_due is not None:
            self._reschedule_at(org.name, claim.next_due)
        log.debug("daemon.run_not_due", organization=org.name, due=_iso(claim.next_due))
        self._publish_schedule()

    def _look_again(self, org: OrganizationSettings, now: datetime) -> None:
        when = self.claims.look_again(org.name, now)
        if when is not None:
            self._reschedule_at(org.name, when)
            self._publish_schedule()

    def _sync(self, org: OrganizationSettings, *, full: bool) -> RunResult:
        try:
            connector = self._connector_factory(org.source, organization=org.name)
        except DirsyncError as exc:
            return _failed(org.name, str(exc))
        try:
            return run_organization(
                org.name,
                org.rules(),
                connector,
                self.store,
                full=full,
                now=self._clock,
                node=self.config.daemon.node,
                full_load_gate=self.full_loads,
            )
        except DirsyncError as exc:  # e.g. the store failed while loading
            return _failed(org.name, str(exc))
        except Exception as exc:  # a bug must not stop the scheduler; the log has the traceback
            log.exception("daemon.run_crashed", organization=org.name)
            return _failed(org.name, f"internal error: {type(exc).__name__}")
        finally:
            connector.close()

    def _after_run(
        self,
        org: OrganizationSettings,
        progress: OrganizationProgress,
        result: RunResult,
        *,
        started: datetime,
        full: bool,
    ) -> None:
        finished = self._clock()
        bound = log.bind(organization=org.name, run_id=result.run_id)
        with self._lock:
            progress.last_outcome = str(result.outcome)
            progress.last_finished = finished
            if result.outcome == Outcome.FAILED:
                progress.failures += 1
            elif result.outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
                progress.failures = 0
                if full:
                    progress.last_full = started
        if self.metrics is not None:
            self.metrics.observe(
                result, started=started, finished=finished, failures=progress.failures
            )
            self.upkeep.publish_seats([org.name])
        if result.outcome == Outcome.FAILED:
            delay = schedule.retry_delay(
                progress.failures, initial=self.config.daemon.retry_initial, ceiling=org.interval
            )
            retry_at = finished + delay
            regular = self.next_run(org.name)
            if regular is None or retry_at < regular:
                self._reschedule_at(org.name, retry_at)
            bound.warning(
                "daemon.run_failed",
                failures=progress.failures,
                retry_at=_iso(self.next_run(org.name)),
                error=result.error,
            )
        else:
            bound.info(
                "daemon.run_finished",
                outcome=str(result.outcome),
                full=full,
                seconds=round((finished - started).total_seconds(), 3),
                next_run=_iso(self.next_run(org.name)),
            )
        self._publish_schedule()
        self.upkeep.after_run(self.config, result, finished)

    def check_stale(self) -> None:
        """Alerts for organizations without a completed run for too long (``Housekeeping``)."""
        self.upkeep.check_stale(self.config)

    def _reschedule_at(self, name: str, when: datetime) -> None:
        with contextlib.suppress(LookupError):  # removed by a reload meanwhile: nothing to retry
            self.scheduler.modify_job(name, next_run_time=when)

    # -- reload ------------------------------------------------------------------------------

    def apply_config(self, new: Config) -> schedule.Reload:
        """Adopt a valid new config: add, remove and reschedule organizations."""
        change = schedule.plan_reload(self.config, new)
        self.config = change.config
        for name in change.removed:
            self._remove_job(name)
        for org in change.config.organization:
            if org.name in change.added:
                self._add_job(org)
            elif org.name in change.rescheduled:
                self.scheduler.reschedule_job(org.name, trigger=schedule.trigger_for(org))
            if self.metrics is not None:
                self.metrics.track(org.name, seats=org.seats)  # the seat limit may change
        self._publish_schedule()
        self.upkeep.publish_seats(list(change.added))
        return change

    def _remove_job(self, name: str) -> None:
        with contextlib.suppress(LookupError):
            self.scheduler.remove_job(name)
        self._progress.pop(name, None)
        self.upkeep.alerter.forget(name)
        if self.metrics is not None:
            self.metrics.forget(name)

    # -- health and reporting ----------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why the daemon is unhealthy (the watchdog stops pinging); empty when healthy."""
        found = []
        # BackgroundScheduler's loop thread dies silently on an unexpected error
        thread = getattr(self.scheduler, "_thread", None)
        if self.scheduler.state != STATE_RUNNING or (thread is not None and not thread.is_alive()):
            found.append("the scheduler is not running")
        now = self._clock()
        budget = self.config.daemon.run_budget
        for name, progress in sorted(self._progress.items()):
            since = progress.running_since
            if since is not None and now - since > budget:
                found.append(f"the run of {name} has taken longer than its budget of {budget}")
        if self.metrics is not None:
            self.metrics.health(found)
        return found

    def running(self) -> list[str]:
        """The organizations with a run in progress."""
        return sorted(n for n, p in self._progress.items() if p.running_since is not None)

    def status_line(self) -> str:
        """One line for systemd's STATUS=: each organization's last outcome and next run."""
        parts = []
        for org in self.config.organization:
            progress = self._progress.get(org.name, OrganizationProgress())
            if progress.running_since is not None:
                state = "running"
            elif progress.last_outcome is None:
                state = "waiting"
            else:
                state = progress.last_outcome
                if progress.failures:
                    state += f" x{progress.failures}"
            when = self.next_run(org.name)
            parts.append(f"{org.name} {state}" + (f", next {when:%H:%M:%S}Z" if when else ""))
        line = "; ".join(parts) if parts else "no organizations configured"
        if self.rejected is not None:
            return f"reload rejected, running the previous config: {self.rejected} | {line}"
        return line

    def _publish_schedule(self) -> None:
        runs = {o.name: self.next_run(o.name) for o in self.config.organization}
        if self.metrics is not None:
            for name, when in runs.items():
                self.metrics.scheduled(name, when)
        try:
            with self._lock:  # runs finish on several threads; one writer at a time
                schedule.write_schedule(self.runtime_dir, runs)
        except OSError as exc:
            log.warning("daemon.schedule_not_written", error=exc.strerror or str(exc))

    def _on_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        if isinstance(event, JobSubmissionEvent):  # max instances: the times it could not start
            when = min(event.scheduled_run_times, default=None)
            log.warning("daemon.run_overlapped", organization=event.job_id, scheduled=_iso(when))
        else:
            log.warning(
                "daemon.run_missed",
                organization=event.job_id,
                scheduled=_iso(event.scheduled_run_time),
            )


def _claims_for(config: Config, store: SqlStore) -> Claims:
    """A PostgreSQL store may be shared by several nodes: its schedule decides."""
    if is_postgresql(config.store.url):
        node = config.daemon.node or this_node()
        return SharedClaims(store, node=node, takeover=config.daemon.takeover)
    return LocalClaims()


def _failed(name: str, error: str) -> RunResult:
    return RunResult(
        organization=name,
        run_id="-",
        dry_run=False,
        outcome=Outcome.FAILED,
        plan=Plan(),
        error=error,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
