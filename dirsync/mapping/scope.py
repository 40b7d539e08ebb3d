"""Planning by difference: which users, members and groups a delta can change. Pure.

Full planning loads the whole organization and mirror (100,000 members: over a second) and
plans over all of it. When the organization is exactly as the last applied plan left it (the
quiet key says so: same rules, same version), that plan had brought it to a fixed point of
full planning, so a delta can only change the plan for what it *touches*:

- the users it changes or deletes;
- the users whose group memberships it changes: refs added to or removed from a group, and
  every user under a nested group that joined, left, was renamed or deleted;
- everyone sharing an address with those, old or new, directory users and members alike,
  to a fixed point (duplicate emails, address chains, adoptions and blocked invitations all
  go through addresses);
- the groups that name any of those users, directly or through nesting, and the touched groups.

The scope may be larger than needed (that costs time, never correctness); it must never be
smaller. ``plan_scoped`` runs the very same planner over that part of the organization and the
mirror, with the whole organization's counts for the guards; a property test compares it with
full planning over generated organizations and deltas, through the real store.

What a scoped run does not repeat: warnings about entries it did not touch (a full run lists
them all again) and unresolved member references (reported by full runs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from dirsync.mapping import guards
from dirsync.mapping.desired import normalize_email
from dirsync.mapping.mirror import MirrorUpdate, update_mirror
from dirsync.mapping.pipeline import PlannedRun, plan_update
from dirsync.model import (
    DirectoryDelta,
    DirectoryGroup,
    DirectoryUser,
    Mirror,
    Reading,
    username_ref,
)
from dirsync.organization import OrganizationState
from dirsync.rules import SyncRules


@dataclass(frozen=True, slots=True)
class UserKeys:
    """What the scope needs of a stored directory user: how it is named and addressed."""

    ref: str
    username: str | None
    email: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredKeys:
    """The cheap, whole-organization part of the store the scope is worked out from."""

    #: mirror user id → its ref, user name and raw email
    users: Mapping[str, UserKeys]
    #: mirror group id → its ref
    groups: Mapping[str, str]
    #: mirror group id → ids of the mirror groups naming it as a member (nesting)
    parents: Mapping[str, frozenset[str]]
    #: member id → (email, external id)
    members: Mapping[int, tuple[str, str | None]]


class StoredEdges(Protocol):
    """Member edges of the stored mirror, fetched on demand (there are hundreds of thousands)."""

    def member_refs(self, group_ids: Collection[str]) -> Mapping[str, frozenset[str]]:
        """The stored member refs of these groups (groups without members may be absent)."""
        ...

    def groups_naming(self, refs: Collection[str]) -> set[str]:
        """Ids of the stored groups with any of these refs among their members."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    user_ids: frozenset[str]
    member_ids: frozenset[int]
    group_ids: frozenset[str]


def may_scope(rules: SyncRules, reading: Reading) -> bool:
    """Whether this reading can be planned by difference: a delta without an id scan (which
    makes absence count), and rules whose plan does not depend on the whole organization
    (collections name any group; re-invitations come due with time alone)."""
    delta = reading.delta
    return (
        delta is not None
        and delta.present_user_ids is None
        and delta.present_group_ids is None
        and not rules.collections
        and rules.reinvite_after is None
    )


def scope_of(delta: DirectoryDelta, keys: StoredKeys, edges: StoredEdges) -> Scope:
    """The users, members and groups the delta can change the plan for (see the module)."""
    new_users = {u.external_id: u for u in delta.users}
    new_groups = {g.external_id: g for g in delta.groups}
    user_ids_by_ref = _user_ids_by_ref(keys, new_users.values())
    group_ids_by_ref = {ref: gid for gid, ref in keys.groups.items()}
    refs_now = _group_refs_now(delta, keys)
    group_ids_by_ref.update((ref, gid) for gid, ref in refs_now.items())

    users = set(new_users) | delta.deleted_user_ids
    under: set[str] = set(delta.deleted_group_ids)  # every user below these is in scope
    touched = set(new_groups) | delta.deleted_group_ids
    touched.update(c.external_id for c in delta.group_changes)
    stored_refs = edges.member_refs([g for g in touched if g in keys.groups])
    changed_refs: set[str] = set()
    for gid, group in new_groups.items():
        changed_refs |= stored_refs.get(gid, frozenset()) ^ group.member_refs
        if gid in keys.groups and keys.groups[gid] != group.ref:
            under.add(gid)  # renamed: the groups naming its old ref no longer reach it
    for change in delta.group_changes:
        changed_refs |= change.added_refs | change.removed_refs
    for ref in changed_refs:
        users.update(user_ids_by_ref.get(ref, ()))
        if (child := group_ids_by_ref.get(ref)) is not None:
            under.add(child)
    users |= _users_under(under, edges, new_groups, user_ids_by_ref, group_ids_by_ref)

    users, members = _address_closure(users, keys, new_users.values())
    # a group under a ref it did not have (new, or renamed) is now reached by the groups that
    # named that ref: they nest it from now on
    moved = {ref for gid, ref in refs_now.items() if keys.groups.get(gid) != ref}
    touched |= edges.groups_naming(moved)
    groups = _groups_reaching(users, touched, keys, edges, new_users.values())
    return Scope(user_ids=frozenset(users), member_ids=frozenset(members), group_ids=groups)


def _group_refs_now(delta: DirectoryDelta, keys: StoredKeys) -> dict[str, str]:
    """The ref of every group the delta reads or changes, as the mirror will have it (a
    partial change names an unknown group by the ref it gives)."""
    refs = {g.external_id: g.ref for g in delta.groups}
    for change in delta.group_changes:
        if change.external_id not in refs and change.external_id not in keys.groups:
            refs[change.external_id] = change.ref
    return refs


def _user_ids_by_ref(keys: StoredKeys, new_users: Iterable[DirectoryUser]) -> dict[str, set[str]]:
    """Every ref (and user-name ref) → the ids of the users it names, stored or read now."""
    found: dict[str, set[str]] = {}
    for uid, user in keys.users.items():
        found.setdefault(user.ref, set()).add(uid)
        if user.username:
            found.setdefault(username_ref(user.username), set()).add(uid)
    for new in new_users:
        found.setdefault(new.ref, set()).add(new.external_id)
        if new.username:
            found.setdefault(username_ref(new.username), set()).add(new.external_id)
    return found


def _users_under(
    roots: set[str],
    edges: StoredEdges,
    new_groups: Mapping[str, DirectoryGroup],
    user_ids_by_ref: Mapping[str, set[str]],
    group_ids_by_ref: Mapping[str, str],
) -> set[str]:
    """The users below these groups, through nesting, as stored and as read now."""
    users: set[str] = set()
    seen: set[str] = set()
    frontier = set(roots)
    while frontier:
        seen |= frontier
        stored = edges.member_refs(frontier)
        refs: set[str] = set()
        for gid in frontier:
            refs |= stored.get(gid, frozenset())
            if gid in new_groups:
                refs |= new_groups[gid].member_refs
        frontier = set()
        for ref in refs:
            users.update(user_ids_by_ref.get(ref, ()))
            if (child := group_ids_by_ref.get(ref)) is not None and child not in seen:
                frontier.add(child)
    return users


def _address_closure(
    users: set[str], keys: StoredKeys, new_users: Iterable[DirectoryUser]
) -> tuple[set[str], set[int]]:
    """Grow the users (and find the members) until no address is shared with the outside."""
    by_id: dict[str, set[str]] = {}
    users_by_email: dict[str, set[str]] = {}

    def note(uid: str, raw: str | None) -> None:
        if (email := normalize_email(raw)) is not None:
            by_id.setdefault(uid, set()).add(email)
            users_by_email.setdefault(email, set()).add(uid)

    for uid, user in keys.users.items():
        note(uid, user.email)
    for new in new_users:
        note(new.external_id, new.email)
    member_by_user: dict[str, int] = {}
    members_by_email: dict[str, set[int]] = {}
    for mid, (email, external_id) in keys.members.items():
        members_by_email.setdefault(email.lower(), set()).add(mid)
        if external_id is not None:
            member_by_user[external_id] = mid

    members: set[int] = set()
    emails: set[str] = set()
    pending_users = list(users)
    pending_members: list[int] = []
    while pending_users or pending_members:
        new_emails: set[str] = set()
        for uid in pending_users:
            new_emails |= by_id.get(uid, set())
            if (linked := member_by_user.get(uid)) is not None and linked not in members:
                members.add(linked)
                pending_members.append(linked)
        pending_users = []
        for mid in pending_members:
            email, external_id = keys.members[mid]
            new_emails.add(email.lower())
            if external_id is not None and external_id not in users:
                users.add(external_id)
                pending_users.append(external_id)
        pending_members = []
        for email in new_emails - emails:
            emails.add(email)
            for uid in users_by_email.get(email, ()):
                if uid not in users:
                    users.add(uid)
                    pending_users.append(uid)
            for mid in members_by_email.get(email, ()):
                if mid not in members:
                    members.add(mid)
                    pending_members.append(mid)
    return users, members


def _groups_reaching(
    users: set[str],
    touched: set[str],
    keys: StoredKeys,
    edges: StoredEdges,
    new_users: Iterable[DirectoryUser],
) -> frozenset[str]:
    """The touched groups and every stored group naming a scope user, with all their stored
    ancestors. (A group whose members the delta sets or changes is touched, so nesting the
    delta adds is covered by the touched groups themselves.)"""
    refs: set[str] = set()
    for uid in users:
        if (stored := keys.users.get(uid)) is not None:
            refs.add(stored.ref)
            if stored.username:
                refs.add(username_ref(stored.username))
    for new in new_users:
        if new.external_id in users:
            refs.add(new.ref)
            if new.username:
                refs.add(username_ref(new.username))
    groups = edges.groups_naming(refs) | touched
    frontier = set(groups)
    while frontier:
        above = set().union(*(keys.parents.get(g, frozenset()) for g in frontier)) - groups
        groups |= above
        frontier = above
    return frozenset(groups)


def restricted(update: MirrorUpdate) -> MirrorUpdate:
    """The part of the mirror a scoped plan looks at: group members narrowed to the users and
    groups in it (a ref to an entry outside the scope is not an unresolved reference)."""
    mirror = update.mirror
    known = {u.ref for u in mirror.users.values()}
    known.update(username_ref(u.username) for u in mirror.users.values() if u.username)
    known.update(g.ref for g in mirror.groups.values())
    groups = {
        gid: g if g.member_refs <= known else replace(g, member_refs=g.member_refs & known)
        for gid, g in mirror.groups.items()
    }
    return replace(update, mirror=Mirror(users=mirror.users, groups=groups))


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopedOrganization:
    """The part of an organization and its mirror that a scope names, and whole counts."""

    state: OrganizationState
    #: the scope's mirror users and groups, groups with all their stored member refs
    mirror: Mirror
    version: int
    #: groups in the stored mirror
    directory_groups: int
    #: the whole organization's counts, before the run (``directory_users``: the stored mirror)
    counted: guards.Census


def plan_scoped(
    loaded: ScopedOrganization,
    reading: Reading,
    rules: SyncRules,
    *,
    approve: str | None = None,
    now: datetime | None = None,
) -> PlannedRun:
    """Plan a delta over the scope's part of the organization; equal to full planning when
    the organization is at the fixed point the last applied plan left it in.

    The returned mirror is the scope's part of the mirror after the delta, with every member
    ref, for the store to write by difference."""
    updated = update_mirror(loaded.mirror, reading)
    grown = len(updated.mirror.users) - len(loaded.mirror.users)
    counted = replace(
        loaded.counted,
        directory_users=loaded.counted.directory_users + grown,
        previous_users=loaded.counted.directory_users,
    )
    planned = plan_update(
        restricted(updated),
        current=loaded.state,
        rules=rules,
        counted=counted,
        warnings=reading.warnings,
        approve=approve,
        now=now,
    )
    return replace(planned, mirror=updated.mirror)
