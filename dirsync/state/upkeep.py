"""The store's upkeep: pruning old run records and audit events, and online backups.

``[store] keep_runs`` (default 90 days) bounds the run history: a run row per organization per
run is ~1M rows a year for 30 clients every 15 minutes. Each organization keeps its latest run
and its latest successful one whatever their age (``status`` and ``status --check`` read them).
Audit events are kept unless ``[store] keep_events`` says otherwise.

``backup_sqlite`` copies a SQLite store with SQLite's online backup API in a single step, that
is one read transaction: a consistent snapshot even while syncs write (WAL lets them go on).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Select, bindparam, delete, func, select
from sqlalchemy.orm import Session

from dirsync.errors import StoreError
from dirsync.plan import Outcome
from dirsync.state.bulk import table_of
from dirsync.state.files import FILE_MODE, private_folder
from dirsync.state.schema import EventRow, OrganizationRow, RunRow

_SUCCESS = (str(Outcome.APPLIED), str(Outcome.UNCHANGED))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    runs: int = 0
    events: int = 0


_runs = table_of(RunRow)
_events = table_of(EventRow)
_orgs = table_of(OrganizationRow)


def _latest(*where: ColumnElement[bool]) -> Select[tuple[str]]:
    """The organization's latest run (of those ``where`` selects): the one to keep."""
    return (
        select(_runs.c.id)
        .where(_runs.c.organization_id == bindparam("org_id"), *where)
        .order_by(_runs.c.started_at.desc(), _runs.c.id.desc())
        .limit(1)
    )


# built once: a one-shot cycle prunes after the runs of hundreds of organizations, and
# building these per organization through the ORM cost more than running them. One statement
# per organization, its two kept runs found by subqueries (an id is the primary key, never
# NULL: ``NOT IN`` a subquery that finds no run keeps nothing)
_DELETE_RUNS = delete(_runs).where(
    _runs.c.organization_id == bindparam("org_id"),
    _runs.c.started_at < bindparam("before"),
    _runs.c.id.not_in(_latest()),
    _runs.c.id.not_in(_latest(_runs.c.outcome.in_(_SUCCESS))),
)
_DELETE_EVENTS = delete(_events).where(
    _events.c.organization_id == bindparam("org_id"), _events.c.at < bindparam("before")
)


def prune(
    connection: Connection, *, runs_before: datetime, events_before: datetime | None
) -> Pruned:
    """Delete runs started before ``runs_before`` (but each organization's latest run and
    latest success) and, given ``events_before``, the events before it; per organization, on
    the (organization, time) indexes."""
    runs = events = 0
    for org_id in connection.scalars(select(_orgs.c.id)).all():
        result = connection.execute(_DELETE_RUNS, {"org_id": org_id, "before": runs_before})
        runs += result.rowcount or 0
        if events_before is not None:
            result = connection.execute(_DELETE_EVENTS, {"org_id": org_id, "before": events_before})
            events += result.rowcount or 0
    return Pruned(runs=runs, events=events)


def count_runs(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(RunRow)) or 0)


def backup_sqlite(source: Path, destination: Path) -> int:
    """Copy the SQLite store ``source`` to ``destination`` (owner-only, replaced atomically);
    returns its size in bytes. Failures are ``StoreError`` (the old backup, if any, stays)."""
    if not source.is_file():
        raise StoreError(f"there is no store at {source}")
    try:
        return _backup(source, destination)
    except (sqlite3.Error, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StoreError(f"cannot back up {source} to {destination}: {reason}") from exc


def _backup(source: Path, destination: Path) -> int:
    private_folder(destination.parent)
    # written in a folder of its own with an unguessable name (0700), then renamed into place:
    # in a folder others may write (/tmp), nobody can plant a link where the copy or SQLite's
    # journal beside it is about to be opened
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    temporary = staging / destination.name
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        with (
            closing(sqlite3.connect(f"file:{source.absolute()}?mode=rw", uri=True)) as src,
            closing(sqlite3.connect(temporary)) as dst,
        ):
            src.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst, pages=-1)  # one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # a single file, whole on its own
        temporary.replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination.stat().st_size
