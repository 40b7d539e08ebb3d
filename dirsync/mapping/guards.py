"""Safety guards: a plan that does too much, or comes from a suspicious read, is refused whole."""

from __future__ import annotations

from dataclasses import dataclass

from dirsync.model import Mirror
from dirsync.organization import MemberStatus, OrganizationState
from dirsync.plan import Plan
from dirsync.rules import SyncRules


@dataclass(frozen=True, slots=True, kw_only=True)
class Census:
    """The whole-organization counts the guards judge a plan by.

    Counted from the loaded organization and mirror, or by the store for a run that loads
    only what its delta touches (``mapping.scope``): the guards see the same numbers either way.
    """

    #: members of the organization
    members: int
    #: members linked to the directory and not revoked (None: not counted, as it cannot
    #: matter: the directory this run sees is not empty)
    managed: int | None
    #: members holding a seat (None: not counted, as there is no seat limit)
    seated: int | None
    #: users in the directory as this run sees it
    directory_users: int
    #: users in the last good read (the stored mirror), for the shrink guard
    previous_users: int
    #: revocations and removals applied within the removal window before this run (counted
    #: for a pushed source only; see ``SyncRules.removal_window``)
    recent_removals: int = 0


def census(current: OrganizationState, mirror: Mirror, *, previous_users: int) -> Census:
    return Census(
        members=len(current.members),
        managed=sum(
            1
            for m in current.members
            if m.external_id is not None and m.status != MemberStatus.REVOKED
        ),
        seated=sum(1 for m in current.members if m.seated),
        directory_users=len(mirror.users),
        previous_users=previous_users,
    )


def refusal_reasons(plan: Plan, counted: Census, rules: SyncRules) -> list[str]:
    """Why this plan must not be applied; empty when it may."""
    reasons: list[str] = []
    # a count that was not made is taken at its most cautious
    managed = counted.managed if counted.managed is not None else counted.members
    # a pushed source is never read, so it cannot come back empty or short: each of its
    # deletions was sent explicitly and counts against max_removals below
    if not rules.pushed:
        reasons.extend(_short_read(counted, rules, managed))

    removals = len(plan.revoke) + len(plan.remove)
    limit = rules.max_removals.limit(counted.members)
    if removals and rules.pushed and removals + counted.recent_removals > limit:
        window = f"{rules.removal_window.total_seconds():g}s"
        reasons.append(
            f"the push revokes or removes {removals} member(s) after "
            f"{counted.recent_removals} in the removal_window ({window}) before it: more than "
            f"max_removals ({rules.max_removals} = {limit} of {counted.members})"
        )
    elif removals > limit:
        reasons.append(
            f"the plan revokes or removes {removals} member(s), more than max_removals "
            f"({rules.max_removals} = {limit} of {counted.members})"
        )

    if rules.seats and (plan.invite or plan.restore):
        freed = sum(1 for r in plan.revoke if r.previous_status != MemberStatus.REVOKED)
        freed += sum(1 for r in plan.remove if r.previous_status != MemberStatus.REVOKED)
        seated = counted.seated if counted.seated is not None else counted.members
        needed = seated - freed + len(plan.invite) + len(plan.restore)
        if needed > rules.seats:
            reasons.append(
                f"the plan needs {needed} seats but the organization has {rules.seats}: "
                f"short by {needed - rules.seats} seat(s)"
            )
    return reasons


def _short_read(counted: Census, rules: SyncRules, managed: int) -> list[str]:
    """A read that suddenly yields nothing, or much less than the last good one."""
    if not counted.directory_users and managed:
        return [
            f"the directory returned no users while the organization has {managed} "
            "managed member(s); refusing to deprovision everyone (check the base DN, filters "
            "and the service account's read rights)"
        ]
    if (
        counted.previous_users
        and counted.directory_users < rules.min_source_ratio * counted.previous_users
    ):
        return [
            f"the directory now yields {counted.directory_users} user(s), fewer than "
            f"min_source_ratio ({rules.min_source_ratio:g}) of the {counted.previous_users} in "
            "the last good read (check the base DN, filters and the service account's read "
            "rights)"
        ]
    return []
