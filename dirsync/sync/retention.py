"""Applying ``[store] keep_runs`` / ``keep_events`` after syncs (see ``state.upkeep``).

One-shot ``dirsync sync`` prunes after its runs; the daemon after a run at most once an hour.
Pruning is housekeeping: when it fails, the runs' results stand and a warning is logged.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from dirsync.config.settings import StoreSettings
from dirsync.errors import StoreError
from dirsync.state.sql_store import SqlStore

log = structlog.get_logger("dirsync.sync.retention")


def prune_store(store: SqlStore, settings: StoreSettings, now: datetime) -> None:
    runs_before, events_before = settings.prune_cutoffs(now)
    try:
        pruned = store.prune(runs_before=runs_before, events_before=events_before)
    except StoreError as exc:
        log.warning("store.prune_failed", error=str(exc))
        return
    if pruned.runs or pruned.events:
        log.info("store.pruned", runs=pruned.runs, events=pruned.events)
