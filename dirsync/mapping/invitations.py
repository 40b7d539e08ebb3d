"""Invitations pending longer than ``reinvite_after`` are sent again. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from dirsync.organization import DesiredOrganization, MemberStatus, OrganizationState
from dirsync.plan import Plan, Reinvite


def stale_invitation(invited_at: datetime | None, now: datetime, after: timedelta) -> bool:
    """Whether an invitation sent at ``invited_at`` has been pending longer than ``after``."""
    return invited_at is not None and now - invited_at >= after


def plan_reinvites(
    current: OrganizationState,
    desired: DesiredOrganization,
    plan: Plan,
    *,
    after: timedelta | None,
    now: datetime | None,
) -> tuple[Reinvite, ...]:
    """Linked, still invited members whose directory user is enabled and whose invitation is old.

    Members without an external id are the administrator's, as always; a member this plan
    revokes, removes or restores is not invited again.
    """
    if after is None or now is None:
        return ()
    enabled = {u.external_id for u in desired.users if not u.disabled}
    touched = {r.member_id for r in plan.revoke} | {r.member_id for r in plan.remove}
    touched |= {r.member_id for r in plan.restore}
    emails = {u.member_id: u.email for u in plan.update}
    return tuple(
        Reinvite(
            member_id=m.id,
            external_id=m.external_id,
            email=emails.get(m.id, m.email),
            invited_at=m.invited_at,
        )
        for m in sorted(current.members, key=lambda m: m.email)
        if m.status == MemberStatus.INVITED
        and m.external_id in enabled
        and m.id not in touched
        and stale_invitation(m.invited_at, now, after)
    )
