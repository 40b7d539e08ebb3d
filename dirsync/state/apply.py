"""One apply: version check, plan, mirror, cursor and run record, inside the caller's transaction.

The caller (``SqlStore.apply``) owns the transaction: it commits after ``apply_run`` returns and
rolls back on any exception, so a failure at any stage leaves the store as it was.

Crash tests set ``_fault_hook``: it is called with the name of each stage in ``STAGES`` as the
stage completes, and whatever it raises aborts the apply right there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dirsync.errors import ConcurrentRunError, RunTakenOver
from dirsync.model import Cursor, Mirror
from dirsync.plan import Outcome, Plan
from dirsync.state import counts
from dirsync.state.events import EventLog
from dirsync.state.mirror_rows import write_mirror
from dirsync.state.organization_writes import apply_organization_side
from dirsync.state.plan_writes import apply_groups, apply_members
from dirsync.state.records import RunRecord
from dirsync.state.schema import CursorRow, OrganizationRow, RunRow

STAGES = (
    "after_organization",
    "after_members",
    "after_groups",
    "after_events",
    "after_mirror",
    "after_cursor",
    "before_commit",
)

#: test seam: called with each stage name; raising from it simulates a crash at that point
_fault_hook: Callable[[str], None] | None = None


def _stage(name: str) -> None:
    hook = _fault_hook
    if hook is not None:
        hook(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyInput:
    organization: str
    plan: Plan
    mirror_before: Mirror
    mirror_after: Mirror
    cursor: Cursor | None
    run: RunRecord
    expected_version: int
    now: datetime


def apply_run(session: Session, job: ApplyInput) -> int:
    """Write one run; returns the organization's new version."""
    check_not_taken_over(session, job.organization, job.run.run_id)
    org_id, version = bump_version(session, job)
    _stage("after_organization")
    log = EventLog(
        organization_id=org_id,
        run_id=job.run.run_id,
        actor=job.run.actor or f"sync:{job.run.run_id}",
        at=job.now,
        session=session,
    )
    apply_members(session, org_id, job.plan, job.now, log)
    _stage("after_members")
    apply_groups(session, org_id, job.plan, log)
    _stage("after_groups")
    apply_organization_side(session, org_id, job.plan, job.now, log)
    log.write(session)
    _stage("after_events")
    write_mirror(session, org_id, job.mirror_before, job.mirror_after)
    counts.keep(
        session,
        org_id,
        expected_version=job.expected_version,
        version=version,
        plan=job.plan,
        mirror_before=job.mirror_before,
        mirror_after=job.mirror_after,
    )
    _stage("after_mirror")
    write_cursor(session, org_id, job.cursor, job.now)
    _stage("after_cursor")
    # the run was recorded as running when it began; its final record replaces that row
    session.execute(delete(RunRow).where(RunRow.id == job.run.run_id))
    session.execute(insert(RunRow), [run_values(org_id, job.run)])
    _stage("before_commit")
    return version


def check_not_taken_over(session: Session, organization: str, run_id: str) -> None:
    """The fencing token: a run's own record. ``begin_run`` closes every other running run of
    the organization, so a run whose record no longer says running was taken over by a run
    that began after it (a node that stalled or was cut off past ``[daemon] takeover`` lost
    its lock, and another node took the organization): it must write nothing. ``FOR UPDATE``
    orders this check with that close on PostgreSQL; SQLite has one writer at a time anyway.
    A run without a record (a store used directly, without ``begin_run``) is not fenced."""
    outcome = session.scalar(select(RunRow.outcome).where(RunRow.id == run_id).with_for_update())
    if outcome is not None and outcome != str(Outcome.RUNNING):
        raise taken_over(organization)


def taken_over(organization: str) -> RunTakenOver:
    return RunTakenOver(
        f"{organization}: another run of it began after this one (this node was stalled "
        "or cut off from the store longer than [daemon] takeover, and another node took "
        "the organization over); nothing of this run was applied"
    )


def bump_version(session: Session, job: ApplyInput) -> tuple[int, int]:
    """Optimistic lock: the organization must still be at ``expected_version``."""
    user_count = len(job.mirror_after.users) if job.run.full else None
    org_id = session.scalar(
        select(OrganizationRow.id).where(OrganizationRow.name == job.organization)
    )
    if org_id is None:
        if job.expected_version != 0:
            raise ConcurrentRunError(
                f"organization {job.organization!r} vanished from the store since it was loaded"
            )
        values = {
            "name": job.organization,
            "version": 1,
            "created_at": job.now,
            "last_user_count": user_count,
        }
        try:
            org_id = session.execute(
                insert(OrganizationRow).values(values).returning(OrganizationRow.id)
            ).scalar_one()
        except IntegrityError as exc:  # another node created it first
            raise ConcurrentRunError(
                f"organization {job.organization!r} was created by a concurrent run"
            ) from exc
        return org_id, 1
    changes: dict[str, Any] = {"version": OrganizationRow.version + 1}
    if user_count is not None:
        changes["last_user_count"] = user_count
    result = session.execute(
        update(OrganizationRow)
        .where(OrganizationRow.id == org_id, OrganizationRow.version == job.expected_version)
        .values(changes)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ConcurrentRunError(
            f"organization {job.organization!r} changed since it was loaded "
            f"(expected version {job.expected_version})"
        )
    return org_id, job.expected_version + 1


def ensure_organization(session: Session | Connection, organization: str, now: datetime) -> int:
    """The organization's id, creating its row at version 0 when absent."""
    org_id = session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == organization))
    if org_id is not None:
        return org_id
    values = {"name": organization, "version": 0, "created_at": now, "last_user_count": None}
    return session.execute(
        insert(OrganizationRow).values(values).returning(OrganizationRow.id)
    ).scalar_one()


def write_cursor(session: Session, org_id: int, cursor: Cursor | None, now: datetime) -> None:
    """Store the cursor; an unchanged cursor keeps its row (and its ``updated_at``) as it is."""
    exists = session.execute(
        select(CursorRow.kind, CursorRow.value).where(CursorRow.organization_id == org_id)
    ).first()
    if cursor is None:
        if exists is not None:
            session.execute(delete(CursorRow).where(CursorRow.organization_id == org_id))
        return
    if exists is not None and tuple(exists) == (cursor.kind, cursor.value):
        return
    values = {"kind": cursor.kind, "value": cursor.value, "updated_at": now}
    if exists is None:
        session.execute(insert(CursorRow), [{"organization_id": org_id, **values}])
    else:
        session.execute(
            update(CursorRow)
            .where(CursorRow.organization_id == org_id)
            .values(values)
            .execution_options(synchronize_session=False)  # no ORM objects to keep in step
        )


def run_values(org_id: int, run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.run_id,
        "organization_id": org_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": str(run.outcome),
        "full": run.full,
        "counts": dict(run.counts),
        "entries_read": run.entries_read,
        "error": run.error,
        "warnings": list(run.warnings),
        "plan_digest": run.plan_digest,
        "node": run.node,
    }
