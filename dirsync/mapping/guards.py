"""Safety guards: a plan that does too much, or comes from a suspicious read, is refused whole."""

from __future__ import annotations

from dirsync.model import Mirror
from dirsync.organization import MemberStatus, OrganizationState
from dirsync.plan import Plan
from dirsync.rules import SyncRules


def refusal_reasons(
    plan: Plan,
    current: OrganizationState,
    mirror: Mirror,
    rules: SyncRules,
    *,
    previous_users: int = 0,
) -> list[str]:
    """Why this plan must not be applied; empty when it may.

    ``mirror`` is the directory as this run sees it; ``previous_users`` is the number of users
    in the last good read (the stored mirror), for the shrink guard.
    """
    reasons: list[str] = []
    managed = [
        m for m in current.members if m.external_id is not None and m.status != MemberStatus.REVOKED
    ]
    if not mirror.users and managed:
        reasons.append(
            f"the directory returned no users while the organization has {len(managed)} "
            "managed member(s); refusing to deprovision everyone (check the base DN, filters "
            "and the service account's read rights)"
        )
    elif previous_users and len(mirror.users) < rules.min_source_ratio * previous_users:
        reasons.append(
            f"the directory now yields {len(mirror.users)} user(s), fewer than "
            f"min_source_ratio ({rules.min_source_ratio:g}) of the {previous_users} in the last "
            "good read (check the base DN, filters and the service account's read rights)"
        )

    removals = len(plan.revoke) + len(plan.remove)
    limit = rules.max_removals.limit(len(current.members))
    if removals > limit:
        reasons.append(
            f"the plan revokes or removes {removals} member(s), more than max_removals "
            f"({rules.max_removals} = {limit} of {len(current.members)})"
        )

    if rules.seats and (plan.invite or plan.restore):
        seated = sum(1 for m in current.members if m.seated)
        freed = sum(1 for r in plan.revoke if r.previous_status != MemberStatus.REVOKED)
        freed += sum(1 for r in plan.remove if r.previous_status != MemberStatus.REVOKED)
        needed = seated - freed + len(plan.invite) + len(plan.restore)
        if needed > rules.seats:
            reasons.append(
                f"the plan needs {needed} seats but the organization has {rules.seats}: "
                f"short by {needed - rules.seats} seat(s)"
            )
    return reasons
