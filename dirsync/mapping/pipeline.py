"""One run's pure core, in the order of the design: mirror → desired → plan → guards."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dirsync.errors import PlanRefused
from dirsync.mapping import guards
from dirsync.mapping.desired import desired_organization
from dirsync.mapping.diff import DiffInput, diff
from dirsync.mapping.mirror import MirrorUpdate, update_mirror
from dirsync.model import Mirror, Reading
from dirsync.organization import DesiredOrganization, OrganizationState
from dirsync.plan import Plan
from dirsync.rules import SyncRules


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedRun:
    plan: Plan
    mirror: Mirror
    desired: DesiredOrganization
    warnings: tuple[str, ...]
    #: the guards' reasons that a deliberate approval overrode (empty when none fired)
    approved_over: tuple[str, ...] = ()


def plan_run(
    *,
    mirror: Mirror,
    reading: Reading,
    current: OrganizationState,
    rules: SyncRules,
    approve: str | None = None,
    now: datetime | None = None,
    recent_removals: int = 0,
) -> PlannedRun:
    """Plan one run; raises ``PlanRefused`` when a guard says no.

    ``PlanRefused.plan`` still carries the plan, so a refusal can show what it refused.
    ``approve`` is the digest of a refused plan an administrator chose to apply: when this
    run's plan has exactly that digest the guards are overridden, once; a plan that changed
    since it was approved is refused again.
    """
    updated = update_mirror(mirror, reading)
    return plan_update(
        updated,
        current=current,
        rules=rules,
        counted=replace(
            guards.census(current, updated.mirror, previous_users=len(mirror.users)),
            recent_removals=recent_removals,
        ),
        warnings=reading.warnings,
        approve=approve,
        now=now,
    )


def plan_update(
    updated: MirrorUpdate,
    *,
    current: OrganizationState,
    rules: SyncRules,
    counted: guards.Census,
    warnings: tuple[str, ...] = (),
    approve: str | None = None,
    now: datetime | None = None,
) -> PlannedRun:
    """Plan from a mirror already brought up to date; ``counted`` is what the guards judge by
    (the whole organization's counts, also when ``current`` holds only part of it)."""
    linked = frozenset(m.external_id for m in current.members if m.external_id is not None)
    desired = desired_organization(updated.mirror, linked_ids=linked)
    plan, diff_warnings = diff(
        DiffInput(
            desired=desired,
            current=current,
            rules=rules,
            deleted_user_ids=updated.deleted_user_ids,
            deleted_group_ids=updated.deleted_group_ids,
            complete=updated.complete,
            now=now,
        )
    )
    warnings = warnings + updated.warnings + desired.warnings + diff_warnings
    reasons = guards.refusal_reasons(plan, counted, rules)
    if reasons and approve is not None and approve == plan.digest():
        return PlannedRun(
            plan=plan,
            mirror=updated.mirror,
            desired=desired,
            warnings=(
                *warnings,
                f"plan {approve} applied by approval despite: " + "; ".join(reasons),
            ),
            approved_over=tuple(reasons),
        )
    if reasons:
        if approve is not None:
            reasons.append(
                f"the approved plan {approve} is not this run's plan {plan.digest()} "
                "(the directory or the organization changed since); review it and approve again"
            )
        raise PlanRefused(reasons, plan, warnings=warnings)
    return PlannedRun(plan=plan, mirror=updated.mirror, desired=desired, warnings=warnings)
