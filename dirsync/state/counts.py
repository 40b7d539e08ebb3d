"""The whole-organization counts the guards take, kept on the organization's row.

A run planned by difference (``mapping.scope``) needs the organization's members, seated
members, mirror users and mirror groups as numbers, not rows. Counting them is a walk of an
index of the organization's rows (~4 ms each at 100,000), on every push. So they are kept on
``organizations`` with the version they are true for (``counted_version``):

- a reader takes them when ``counted_version`` is the organization's version, and counts
  otherwise (the first run, or after a writer that does not keep them: every writer bumps the
  version, so a stale count is never taken);
- a run's apply (``keep``) adds what its plan and mirror changed to the counts it started
  from, or counts once afresh when those were not valid, and stamps them with its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dirsync.model import Mirror
from dirsync.organization import SEATED_STATUSES, MemberStatus
from dirsync.plan import Plan
from dirsync.state.schema import MemberRow, MirrorGroupRow, MirrorUserRow, OrganizationRow


@dataclass(frozen=True, slots=True)
class Counts:
    members: int
    seated: int
    mirror_users: int
    mirror_groups: int


def counted(session: Session, org_id: int) -> Counts:
    """The counts, counted (each a ``COUNT`` off an index of the organization's rows)."""

    def count(*where: Any) -> int:
        return int(session.execute(select(func.count()).where(*where)).scalar_one())

    seated = MemberRow.status.in_([str(s) for s in SEATED_STATUSES])
    return Counts(
        members=count(MemberRow.organization_id == org_id),
        seated=count(MemberRow.organization_id == org_id, seated),
        mirror_users=count(MirrorUserRow.organization_id == org_id),
        mirror_groups=count(MirrorGroupRow.organization_id == org_id),
    )


def kept(session: Session, org_id: int, version: int) -> Counts | None:
    """The counts kept for ``version``; None when they are not for it."""
    row = session.execute(
        select(
            OrganizationRow.counted_version,
            OrganizationRow.member_count,
            OrganizationRow.seated_count,
            OrganizationRow.mirror_user_count,
            OrganizationRow.mirror_group_count,
        ).where(OrganizationRow.id == org_id)
    ).one_or_none()
    if row is None or row[0] != version:
        return None
    members, seated, mirror_users, mirror_groups = row[1:]
    if members is None or seated is None or mirror_users is None or mirror_groups is None:
        return None
    return Counts(members, seated, mirror_users, mirror_groups)


def current(session: Session, org_id: int, version: int) -> Counts:
    """The counts at ``version``: kept, or counted."""
    return kept(session, org_id, version) or counted(session, org_id)


def after_apply(before: Counts, plan: Plan, mirror_before: Mirror, mirror_after: Mirror) -> Counts:
    """The counts once a plan and a mirror change are applied to ``before``. Pure: each
    invitation adds a member with a seat, each removal takes one away (and its seat unless it
    was revoked), a revocation frees a seat, a restoration takes one again; the mirror gains
    and loses the entries ``mirror_after`` has and ``mirror_before`` has not, and the reverse
    (a scoped run's mirrors hold every entry it adds or deletes)."""
    revoked = MemberStatus.REVOKED
    freed = sum(1 for r in plan.revoke if r.previous_status != revoked)
    freed += sum(1 for r in plan.remove if r.previous_status != revoked)
    taken = len(plan.invite) + sum(1 for r in plan.restore if r.to_status in SEATED_STATUSES)
    users_before, users_after = mirror_before.users.keys(), mirror_after.users.keys()
    groups_before, groups_after = mirror_before.groups.keys(), mirror_after.groups.keys()
    return Counts(
        members=before.members + len(plan.invite) - len(plan.remove),
        seated=before.seated + taken - freed,
        mirror_users=before.mirror_users
        + len(users_after - users_before)
        - len(users_before - users_after),
        mirror_groups=before.mirror_groups
        + len(groups_after - groups_before)
        - len(groups_before - groups_after),
    )


def keep(
    session: Session,
    org_id: int,
    *,
    expected_version: int,
    version: int,
    plan: Plan,
    mirror_before: Mirror,
    mirror_after: Mirror,
) -> None:
    """Stamp the counts for ``version``, after the apply's writes (same transaction):
    brought up to date from those kept for ``expected_version``, else counted."""
    before = kept(session, org_id, expected_version)
    if before is None:
        now = counted(session, org_id)
    else:
        now = after_apply(before, plan, mirror_before, mirror_after)
    session.execute(
        update(OrganizationRow)
        .where(OrganizationRow.id == org_id)
        .values(
            counted_version=version,
            member_count=now.members,
            seated_count=now.seated,
            mirror_user_count=now.mirror_users,
            mirror_group_count=now.mirror_groups,
        )
        .execution_options(synchronize_session=False)
    )
