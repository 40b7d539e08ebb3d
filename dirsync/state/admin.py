"""An administrator's change to one member: decided on the stored state, written with its event.

Inside the caller's write transaction: load the members, let the pure rules decide
(``dirsync.lifecycle``), bump the organization's version (the same optimistic check as a sync
apply: a run or another administrator that got in between makes this a ``ConcurrentRunError``),
write the member row and one event. Any failure rolls all of it back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from dirsync.errors import ConcurrentRunError, NotFound
from dirsync.lifecycle import AdminChange
from dirsync.organization import OrganizationState
from dirsync.state.events import EventLog
from dirsync.state.queries import load_members
from dirsync.state.schema import MemberRow, OrganizationRow

Decide = Callable[[OrganizationState], AdminChange | None]


def apply_admin(
    session: Session, organization: str, decide: Decide, *, actor: str, now: datetime
) -> AdminChange | None:
    """Apply what ``decide`` says to the stored organization; None when nothing changes."""
    found = session.execute(
        select(OrganizationRow.id, OrganizationRow.version).where(
            OrganizationRow.name == organization
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"organization {organization!r} has no members in the store yet")
    org_id, version = found
    change = decide(OrganizationState(name=organization, members=load_members(session, org_id)))
    if change is None:
        return None
    bumped = session.execute(
        update(OrganizationRow)
        .where(OrganizationRow.id == org_id, OrganizationRow.version == version)
        .values(version=OrganizationRow.version + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(bumped, "rowcount", 0) != 1:
        raise ConcurrentRunError(
            f"organization {organization!r} changed while the change was being made; try again"
        )
    member_id = change.before.id
    mine = (MemberRow.id == member_id, MemberRow.organization_id == org_id)
    if change.after is None:
        session.execute(
            delete(MemberRow).where(*mine), execution_options={"synchronize_session": False}
        )
    else:
        after = change.after
        session.execute(
            update(MemberRow)
            .where(*mine)
            .values(
                status=str(after.status),
                role=str(after.role),
                restore_status=str(after.restore_status) if after.restore_status else None,
                revoked_reason=str(after.revoked_reason) if after.revoked_reason else None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    log = EventLog(organization_id=org_id, run_id=None, actor=actor, at=now)
    log.add(change.action.event, change.before.email, change.before_json(), change.after_json())
    log.write(session)
    return change
