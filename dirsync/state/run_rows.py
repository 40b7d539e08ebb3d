"""Opening a run and recording a quiet one: a few Core statements, built once per process.

An MSP's no-change cycle opens and records hundreds of runs that change nothing else. Through
the ORM session each statement was built anew (SQLAlchemy's expression construction and cache
key) and each transaction paid for a session: ~2.3 ms of CPU per organization for the two
transactions, a third of a 500-organization cycle. The statements here are module constants
with bound parameters, so SQLAlchemy builds their cache keys once and finds them compiled;
they run on a plain ``Connection`` in the caller's transaction. Same SQL, same rows, same
fencing and version checks as ``apply.open_run`` / ``SqlStore.record_quiet_run`` did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from dirsync.model import Cursor
from dirsync.plan import Outcome
from dirsync.state.apply import ensure_organization, run_values, taken_over
from dirsync.state.bulk import table_of
from dirsync.state.org_queries import due_conditions
from dirsync.state.records import OpenedRun, RunRecord
from dirsync.state.schema import CursorRow, MemberRow, OrganizationRow, RunRow

_orgs = table_of(OrganizationRow)
_cursors = table_of(CursorRow)
_runs = table_of(RunRow)
_RUNNING: Final = str(Outcome.RUNNING)

#: the organization's id and version and its stored cursor, in one statement
_ORGANIZATION: Final = (
    select(_orgs.c.id, _orgs.c.version, _cursors.c.kind, _cursors.c.value)
    .outerjoin(_cursors, _cursors.c.organization_id == _orgs.c.id)
    .where(_orgs.c.name == bindparam("name"))
)
INTERRUPTED_ERROR: Final = (
    "the process stopped before this run finished (killed, crashed or the machine went down); "
    "nothing from it was applied"
)
#: the organization's runs still marked running, marked interrupted (found through
#: ``ix_runs_org_outcome``, not by reading the run history the store keeps)
CLOSE_STALE: Final = (
    update(_runs)
    .where(_runs.c.organization_id == bindparam("org_id"), _runs.c.outcome == _RUNNING)
    .values(outcome=str(Outcome.INTERRUPTED), finished_at=None, error=INTERRUPTED_ERROR)
)
_INSERT_RUN: Final = insert(_runs)
#: the fencing token: the run's own record, locked (see ``apply.check_not_taken_over``)
_RUN_OUTCOME: Final = (
    select(_runs.c.outcome).where(_runs.c.id == bindparam("run_id")).with_for_update()
)
#: the run's record as it finished (replacing the running one; the SET names every column)
_FINISH_RUN: Final = update(_runs).where(_runs.c.id == bindparam("b_run_id"))
#: whether an invitation is due again (``org_queries.due_invitations``, limit 1)
_DUE: Final = (
    select(MemberRow.id).where(*due_conditions(bindparam("org_id"), bindparam("before"))).limit(1)
)
_INSERT_CURSOR: Final = insert(_cursors)
_UPDATE_CURSOR: Final = (
    update(_cursors)
    .where(_cursors.c.organization_id == bindparam("b_org_id"))
    .values(kind=bindparam("kind"), value=bindparam("value"), updated_at=bindparam("now"))
)
_DELETE_CURSOR: Final = delete(_cursors).where(_cursors.c.organization_id == bindparam("org_id"))


def _organization(connection: Connection, name: str) -> tuple[int, int, Cursor | None] | None:
    row = connection.execute(_ORGANIZATION, {"name": name}).first()
    if row is None:
        return None
    org_id, version, kind, value = row
    return org_id, version, (None if kind is None else Cursor(kind=kind, value=value))


def begin_run(connection: Connection, organization: str, run: RunRecord) -> int:
    """Record ``run`` as running; returns how many stale running runs were closed first.

    A run still marked running when the next one begins belongs to a process that died: the
    per-organization lock guarantees no other process is inside a run of this organization.
    """
    org_id = ensure_organization(connection, organization, run.started_at)
    closed = connection.execute(CLOSE_STALE, {"org_id": org_id})
    connection.execute(_INSERT_RUN, run_values(org_id, run))
    return int(closed.rowcount or 0)


def open_run(connection: Connection, organization: str, run: RunRecord) -> OpenedRun:
    """Record ``run`` as running, closing the organization's runs left running; with the
    stored cursor and version (read in the same statement as the organization's id)."""
    found = _organization(connection, organization)
    cursor: Cursor | None = None
    if found is None:
        org_id, version = ensure_organization(connection, organization, run.started_at), 0
    else:
        org_id, version, cursor = found
    closed = connection.execute(CLOSE_STALE, {"org_id": org_id})
    connection.execute(_INSERT_RUN, run_values(org_id, run))
    return OpenedRun(closed=int(closed.rowcount or 0), cursor=cursor, version=version)


def record_quiet_run(
    connection: Connection,
    organization: str,
    *,
    cursor: Cursor | None,
    run: RunRecord,
    expected_version: int,
    reinvite_before: datetime | None,
) -> bool:
    """See ``SqlStore.record_quiet_run``: False (nothing written) when the version moved or
    an invitation is due; ``RunTakenOver`` when another run closed this one."""
    outcome = connection.execute(_RUN_OUTCOME, {"run_id": run.run_id}).scalar()
    if outcome is not None and outcome != _RUNNING:
        raise taken_over(organization)
    found = _organization(connection, organization)
    if found is None or found[1] != expected_version:
        return False
    org_id, _, stored = found
    if reinvite_before is not None:
        due = connection.execute(_DUE, {"org_id": org_id, "before": reinvite_before}).first()
        if due is not None:
            return False
    now = run.finished_at or run.started_at
    _write_cursor(connection, org_id, stored, cursor, now)
    values: dict[str, Any] = run_values(org_id, run)
    finished = connection.execute(_FINISH_RUN, {"b_run_id": run.run_id, **values})
    if not finished.rowcount:  # the record written when the run began is gone: write it now
        connection.execute(_INSERT_RUN, values)
    return True


def _write_cursor(
    connection: Connection,
    org_id: int,
    stored: Cursor | None,
    cursor: Cursor | None,
    now: datetime,
) -> None:
    """``apply.write_cursor``, with the stored cursor already read: an unchanged cursor keeps
    its row (and its ``updated_at``)."""
    if cursor is None:
        if stored is not None:
            connection.execute(_DELETE_CURSOR, {"org_id": org_id})
        return
    if stored == cursor:
        return
    values = {"kind": cursor.kind, "value": cursor.value}
    if stored is None:
        connection.execute(_INSERT_CURSOR, {"organization_id": org_id, **values, "updated_at": now})
    else:
        connection.execute(_UPDATE_CURSOR, {"b_org_id": org_id, **values, "now": now})
