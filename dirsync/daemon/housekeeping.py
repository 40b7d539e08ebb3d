"""What the daemon does around its runs: alerts, stale organizations, retention, seats.

After each run: the organization's incident (``alerting``), the store's retention (at most
once per ``PRUNE_EVERY``) and its seats for ``dirsync_seats_used``. From the main loop: the
stale check, at most once per ``STALE_CHECK_EVERY``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from dirsync.config.settings import Config
from dirsync.daemon import schedule
from dirsync.daemon.alerting import Alerter
from dirsync.daemon.metrics import Metrics
from dirsync.errors import DirsyncError
from dirsync.organization import SEATED_STATUSES
from dirsync.state.sql_store import SqlStore
from dirsync.sync.result import RunResult
from dirsync.sync.retention import prune_store

log = structlog.get_logger("dirsync.daemon.housekeeping")

#: how often the daemon prunes old run records and events (after a run)
PRUNE_EVERY = timedelta(hours=1)
#: an organization without a completed run for this many of its intervals is stale (alerts)
STALE_INTERVALS = 3
STALE_CHECK_EVERY = timedelta(minutes=1)


class Housekeeping:
    def __init__(
        self,
        store: SqlStore,
        *,
        alerter: Alerter,
        metrics: Metrics | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.alerter = alerter
        self.metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at = clock()
        self._last_prune: datetime | None = None
        self._last_stale_check: datetime | None = None

    def after_run(self, config: Config, result: RunResult, finished: datetime) -> None:
        if config.alert:
            self.alerter.after_run(config.alert, result, finished)
        with self._lock:
            due = self._last_prune is None or finished - self._last_prune >= PRUNE_EVERY
            if due:
                self._last_prune = finished
        if due:
            prune_store(self.store, config.store, finished)

    def check_stale(self, config: Config) -> None:
        """Alert on organizations without a completed run for STALE_INTERVALS of their
        schedule (since the daemon started, for one that never completed one)."""
        now = self._clock()
        if not config.alert or (
            self._last_stale_check is not None and now - self._last_stale_check < STALE_CHECK_EVERY
        ):
            return
        self._last_stale_check = now
        try:
            successes = self.store.last_successes()
        except DirsyncError as exc:
            log.warning("daemon.stale_check_failed", error=str(exc))
            return
        for org in config.organization:
            last = successes.get(org.name)
            since = _aware(last) if last is not None else self._started_at
            if now - since > org.interval * STALE_INTERVALS:
                problem = schedule.overdue_problem(org, last, now, STALE_INTERVALS)
                self.alerter.stale(config.alert, org.name, since, problem or "")

    def publish_seats(self, names: list[str]) -> None:
        """The seats ``names`` use, from the store (for ``dirsync_seats_used``)."""
        if self.metrics is None or not names:
            return
        try:
            summaries = self.store.summaries(dict.fromkeys(names))
        except DirsyncError as exc:
            log.warning("daemon.seats_not_read", error=str(exc))
            return
        for name in names:
            summary = summaries.get(name)
            members = summary.members if summary is not None else {}
            used = sum(n for status, n in members.items() if status in SEATED_STATUSES)
            self.metrics.seats(name, used)


def _aware(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
