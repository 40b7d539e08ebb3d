"""The diff: desired organization + current organization + rules → plan. Pure and deterministic."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from dirsync.mapping.collections import known_groups, plan_collections
from dirsync.mapping.invitations import plan_reinvites
from dirsync.organization import (
    DesiredOrganization,
    DesiredUser,
    Member,
    MemberStatus,
    OrganizationState,
    RevokeReason,
)
from dirsync.plan import (
    GroupCreate,
    GroupDelete,
    GroupUpdate,
    Invite,
    MemberUpdate,
    Plan,
    Reinvite,
    Remove,
    Restore,
    Revoke,
)
from dirsync.rules import Deprovision, SyncRules

#: revocations a sync may undo: the ones a sync made
_SYNC_REASONS = frozenset({RevokeReason.DISABLED, RevokeReason.DEPROVISIONED})


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffInput:
    desired: DesiredOrganization
    current: OrganizationState
    rules: SyncRules
    #: users the directory explicitly deleted (tombstones)
    deleted_user_ids: frozenset[str] = frozenset()
    deleted_group_ids: frozenset[str] = frozenset()
    #: the desired state comes from a complete read: absence may deprovision
    complete: bool = True
    #: the time of the run, for invitations pending too long; None: never re-invite
    now: datetime | None = None


@dataclass(slots=True)
class _Members:
    """Working state while planning members."""

    invite: list[Invite] = field(default_factory=list)
    update: list[MemberUpdate] = field(default_factory=list)
    revoke: list[Revoke] = field(default_factory=list)
    restore: list[Restore] = field(default_factory=list)
    remove: list[Remove] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def diff(given: DiffInput) -> tuple[Plan, tuple[str, ...]]:
    """The plan and the warnings that arose while making it."""
    members = _plan_members(given) if given.rules.users else _Members()
    groups = _plan_groups(given, members) if given.rules.groups else ((), (), ())
    plan = Plan(
        invite=tuple(members.invite),
        update=tuple(members.update),
        revoke=tuple(members.revoke),
        restore=tuple(members.restore),
        remove=tuple(members.remove),
        create_groups=groups[0],
        update_groups=groups[1],
        delete_groups=groups[2],
    )
    known = known_groups(given.desired, given.current, synced=given.rules.groups)
    collections = plan_collections(given.rules.collections, known, given.current.collections)
    reinvite: tuple[Reinvite, ...] = ()
    if given.rules.users:
        after = given.rules.reinvite_after
        reinvite = plan_reinvites(given.current, given.desired, plan, after=after, now=given.now)
    plan = replace(
        plan,
        create_collections=collections.create,
        update_collections=collections.update,
        reinvite=reinvite,
    )
    return plan, tuple(members.warnings) + collections.warnings


def _plan_members(given: DiffInput) -> _Members:
    out = _Members()
    current = given.current.members
    by_external_id = {m.external_id: m for m in current if m.external_id is not None}
    unlinked_by_email = {m.email.lower(): m for m in current if m.external_id is None}
    emails_in_use = {m.email.lower(): m for m in current}
    # Deprovisioning first: the address of a member removed in this plan is free to take.
    _plan_deprovisioning(given, out)
    for removed in out.remove:
        emails_in_use.pop(removed.email.lower(), None)

    # Linked members first, so that an address one of them gives up can be taken in this same
    # plan; the store applies updates in this order, before invites.
    linked = [
        (u, by_external_id[u.external_id])
        for u in given.desired.users
        if u.external_id in by_external_id
    ]
    emails = _resolve_emails(linked, emails_in_use, out.warnings)
    # Members whose address does not change first, in their order, then the changes in the
    # order they resolve: what a stable sort by (order, or -1) gives, without sorting 100,000
    # members when a handful change address.
    order = emails.order
    moving = sorted((pair for pair in linked if pair[1].id in order), key=lambda p: order[p[1].id])
    staying = (pair for pair in linked if pair[1].id not in order)
    for user, member in (*staying, *moving):
        _plan_existing(user, member, emails.final[member.id], False, given.rules, out)

    deprovisioned = _deprovisioned_now(out, by_external_id)
    desired_ids = {u.external_id for u in given.desired.users}
    for user in given.desired.users:
        if user.external_id in by_external_id:
            continue
        if (candidate := unlinked_by_email.pop(user.email, None)) is not None:
            _plan_existing(user, candidate, user.email, True, given.rules, out)
            continue
        if user.disabled:
            continue  # a disabled user who is not yet a member is not invited
        holder = emails_in_use.get(user.email) or deprovisioned.get(user.email)
        if (
            holder is not None
            and given.rules.relink_recreated
            and _relinkable(holder, deprovisioned, desired_ids)
        ):
            emails_in_use[user.email] = holder
            _relink(user, holder, out)
            continue
        if holder is not None:
            # A linked member that is active, or revoked by an administrator, is never taken
            # over by another directory user; an administrator decides, e.g. by removing it.
            out.warnings.append(
                f"cannot invite {user.email} ({user.external_id}): the address belongs to a "
                f"{holder.status} member linked to {holder.external_id}; remove that member "
                "to let this user in"
            )
            continue
        out.invite.append(Invite(external_id=user.external_id, email=user.email, name=user.name))
    return out


def _deprovisioned_now(out: _Members, by_external_id: dict[str, Member]) -> dict[str, Member]:
    """The members this plan deprovisions, by address (a removal has freed it already)."""
    ids = [r.external_id for r in out.revoke if r.reason == RevokeReason.DEPROVISIONED]
    ids += [r.external_id for r in out.remove]
    members = (by_external_id[i] for i in ids if i is not None and i in by_external_id)
    return {m.email.lower(): m for m in members}


def _relinkable(holder: Member, deprovisioned: dict[str, Member], desired_ids: set[str]) -> bool:
    """Whether a re-created directory user may take this member over: one the sync
    deprovisioned (before, or in this plan) because its entry is gone; never an active
    member, nor one an administrator revoked, nor an owner or admin."""
    if holder.external_id is None or holder.protected or holder.external_id in desired_ids:
        return False
    if deprovisioned.get(holder.email.lower()) is holder:
        return True
    return (
        holder.status == MemberStatus.REVOKED
        and holder.revoked_reason == RevokeReason.DEPROVISIONED
    )


def _relink(user: DesiredUser, holder: Member, out: _Members) -> None:
    """Link the member to the re-created user: one update naming both ids, and a restore of
    a member revoked before (a deprovisioning planned now is withdrawn instead)."""
    out.revoke = [r for r in out.revoke if r.member_id != holder.id]
    out.remove = [r for r in out.remove if r.member_id != holder.id]
    out.update.append(
        MemberUpdate(
            member_id=holder.id,
            external_id=user.external_id,
            email=user.email,
            name=user.name,
            previous_email=holder.email,
            previous_name=holder.name,
            previous_external_id=holder.external_id,
        )
    )
    if holder.status == MemberStatus.REVOKED:
        out.restore.append(
            Restore(
                member_id=holder.id,
                external_id=user.external_id,
                email=user.email,
                to_status=holder.restore_status or MemberStatus.INVITED,
            )
        )


@dataclass(frozen=True, slots=True)
class _Emails:
    #: member id → the email it ends up with
    final: dict[int, str]
    #: member id → position in which its email change can be applied
    order: dict[int, int]


def _resolve_emails(
    linked: list[tuple[DesiredUser, Member]], in_use: dict[str, Member], warnings: list[str]
) -> _Emails:
    """Give each linked member its directory email unless another member keeps that address.

    Repeats until nothing moves, so that chains (b gives up an address a takes) resolve in one
    plan; what is still blocked after that (a swap, or an address of an unlinked member) keeps
    its old email with a warning.
    """
    final = {m.id: m.email for _, m in linked}
    order: dict[int, int] = {}
    pending = [(u, m) for u, m in linked if u.email != m.email]
    while pending:
        blocked = []
        for user, member in pending:
            holder = in_use.get(user.email)
            if holder is not None and holder.id != member.id:
                blocked.append((user, member))
                continue
            in_use.pop(member.email.lower(), None)
            in_use[user.email] = member
            final[member.id] = user.email
            order[member.id] = len(order)
        if len(blocked) == len(pending):
            break
        pending = blocked
    for user, member in pending:
        warnings.append(
            f"cannot change the email of {member.email} to {user.email}: the address belongs "
            "to another member"
        )
    return _Emails(final=final, order=order)


def _plan_existing(
    user: DesiredUser, member: Member, email: str, adopt: bool, rules: SyncRules, out: _Members
) -> None:
    if adopt or email != member.email or user.name != member.name:
        out.update.append(
            MemberUpdate(
                member_id=member.id,
                external_id=user.external_id,
                email=email,
                name=user.name,
                previous_email=member.email,
                previous_name=member.name,
                adopt=adopt,
            )
        )

    if user.disabled:
        if rules.remove_disabled and not member.protected:
            _revoke(out, member, user.external_id, email, RevokeReason.DISABLED)
    elif member.status == MemberStatus.REVOKED and member.revoked_reason in _SYNC_REASONS:
        out.restore.append(
            Restore(
                member_id=member.id,
                external_id=user.external_id,
                email=email,
                to_status=member.restore_status or MemberStatus.INVITED,
            )
        )


def _plan_deprovisioning(given: DiffInput, out: _Members) -> None:
    present = {u.external_id for u in given.desired.users} | given.desired.skipped_user_ids
    absence_counts = given.complete and given.rules.overwrite_existing
    for member in given.current.members:
        if member.external_id is None or member.external_id in present:
            continue  # members without an external id are never touched by a sync
        explicit = member.external_id in given.deleted_user_ids
        if not (explicit or absence_counts):
            continue
        if member.protected:
            out.warnings.append(
                f"{member.role} {member.email} is gone from the directory; owners and admins "
                "are never deprovisioned by a sync"
            )
            continue
        if given.rules.deprovision == Deprovision.REMOVE:
            out.remove.append(
                Remove(
                    member_id=member.id,
                    external_id=member.external_id,
                    email=member.email,
                    previous_status=member.status,
                )
            )
        else:
            _revoke(out, member, member.external_id, member.email, RevokeReason.DEPROVISIONED)


def _revoke(
    out: _Members, member: Member, external_id: str, email: str, reason: RevokeReason
) -> None:
    """Revoke a member unless it already is (its remembered status must not be overwritten)."""
    if member.status != MemberStatus.REVOKED:
        out.revoke.append(
            Revoke(
                member_id=member.id,
                external_id=external_id,
                email=email,
                reason=reason,
                previous_status=member.status,
            )
        )


def _plan_groups(
    given: DiffInput, members: _Members
) -> tuple[tuple[GroupCreate, ...], tuple[GroupUpdate, ...], tuple[GroupDelete, ...]]:
    removed = {r.external_id for r in members.remove}
    linked = {m.external_id for m in given.current.members if m.external_id is not None}
    linked |= {u.external_id for u in members.update if u.links}
    linked |= {i.external_id for i in members.invite}
    relinked = {
        u.previous_external_id: u.external_id
        for u in members.update
        if u.previous_external_id is not None
    }
    linked -= removed | set(relinked)

    current = {g.external_id: g for g in given.current.groups if g.external_id is not None}
    creates: list[GroupCreate] = []
    updates: list[GroupUpdate] = []
    for group in given.desired.groups:
        wanted = group.member_external_ids & linked
        existing = current.get(group.external_id)
        if existing is None:
            creates.append(
                GroupCreate(
                    external_id=group.external_id, name=group.name, member_external_ids=wanted
                )
            )
            continue
        have = existing.member_external_ids - removed
        if relinked and have & relinked.keys():
            have = frozenset(relinked.get(i, i) for i in have)
        add, drop = wanted - have, have - wanted
        if add or drop or group.name != existing.name:
            updates.append(
                GroupUpdate(
                    group_id=existing.id,
                    external_id=group.external_id,
                    name=group.name,
                    previous_name=existing.name,
                    add_member_ids=frozenset(add),
                    remove_member_ids=frozenset(drop),
                )
            )

    desired_ids = {g.external_id for g in given.desired.groups}
    absence_counts = given.complete and given.rules.overwrite_existing
    deletes = [
        GroupDelete(group_id=g.id, external_id=g.external_id, name=g.name)
        for gid, g in sorted(current.items())
        if gid not in desired_ids and (absence_counts or gid in given.deleted_group_ids)
    ]
    return tuple(creates), tuple(updates), tuple(deletes)
