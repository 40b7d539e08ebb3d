"""Approvals of refused pushes, kept as audit events (``plan.approve``, the plan's digest as
target), so that ``dirsync events`` shows who approved what, and when.

A push cannot wait for an administrator: the identity provider sends it, is refused, and
retries later. ``dirsync sync --approve`` on a pushed organization records the approval; the
retry finds it (``sync.approvals``). An approval is used once a run applied the plan it names
after it (the runs' ``plan_digest``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dirsync.errors import NotFound
from dirsync.plan import Outcome
from dirsync.state.events import EventLog
from dirsync.state.org_queries import organization_id
from dirsync.state.records import PlanApproval
from dirsync.state.schema import EventRow, RunRow

APPROVE = "plan.approve"


def refused_at(session: Session, organization: str, digest: str) -> datetime | None:
    """When a run of the organization last refused the plan with this digest (or None)."""
    org_id = organization_id(session, organization)
    if org_id is None:
        return None
    found = session.scalar(
        select(func.max(RunRow.started_at)).where(
            RunRow.organization_id == org_id,
            RunRow.outcome == str(Outcome.REFUSED),
            RunRow.plan_digest == digest,
        )
    )
    return found


def record_approval(
    session: Session, organization: str, digest: str, *, actor: str, now: datetime
) -> None:
    """The approval's event, in the caller's write transaction."""
    org_id = organization_id(session, organization)
    if org_id is None:
        raise NotFound(f"organization {organization!r} has nothing in the store yet")
    log = EventLog(organization_id=org_id, run_id=None, actor=actor, at=now)
    log.add(APPROVE, digest, None, {"plan": digest})
    log.write(session)


def approvals_since(session: Session, organization: str, since: datetime) -> list[PlanApproval]:
    """The approvals recorded at or after ``since``, oldest first, each saying whether a run
    applied its plan after it. One indexed look at the events of that span."""
    org_id = organization_id(session, organization)
    if org_id is None:
        return []
    rows = session.execute(
        select(EventRow.target, EventRow.at, EventRow.actor)
        .where(EventRow.organization_id == org_id, EventRow.at >= since, EventRow.action == APPROVE)
        .order_by(EventRow.at)
    ).all()
    found = []
    for digest, at, actor in rows:
        applied = session.scalar(
            select(func.count()).where(
                RunRow.organization_id == org_id,
                RunRow.outcome == str(Outcome.APPLIED),
                RunRow.plan_digest == digest,
                RunRow.started_at >= at,
            )
        )
        found.append(PlanApproval(digest=digest, at=at, actor=actor, used=bool(applied)))
    return found
