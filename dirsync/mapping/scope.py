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
- the groups that name any of those users, directly or through nesting, and the touched groups;
- with ``reinvite_after``, the members whose invitation has come due (time alone changes the
  plan for them), and with collections, every group a collection names or reaches now: a
  collection's access is a function of those groups alone.

The scope may be larger than needed (that costs time, never correctness); it must never be
smaller. ``plan_scoped`` runs the very same planner over that part of the organization and the
mirror, with the whole organization's counts for the guards; a property test compares it with
full planning over generated organizations and deltas, through the real store.

What a scoped run does not repeat: warnings about entries it did not touch (a full run lists
them all again) and unresolved member references (reported by full runs).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from dirsync.mapping import guards
from dirsync.mapping.desired import normalize_email
from dirsync.mapping.mirror import MirrorUpdate, update_mirror
from dirsync.mapping.pipeline import PlannedRun, plan_update
from dirsync.model import (
    DirectoryDelta,
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


#: a member's (email, external id)
MemberKeys = tuple[str, str | None]


class StoredDirectory(Protocol):
    """The stored mirror and members, looked up by what a delta reaches (the store indexes
    each lookup; a whole organization is never read)."""

    def group_refs(self, ids: Collection[str]) -> Mapping[str, str]:
        """The stored mirror groups with these ids → their refs."""
        ...

    def groups_with_refs(self, refs: Collection[str]) -> Mapping[str, str]:
        """Ref → id of the stored mirror group with it, for those of these refs a group has."""
        ...

    def parents(self, group_ids: Collection[str]) -> Mapping[str, frozenset[str]]:
        """Ids of these stored groups → ids of the stored groups naming them (by the ref they
        are stored under) as a member (nesting); a group no group names may be absent."""
        ...

    def users(self, ids: Collection[str]) -> Mapping[str, UserKeys]:
        """The stored users with these ids."""
        ...

    def users_named(self, refs: Collection[str]) -> Mapping[str, set[str]]:
        """Ref (or user-name ref) → ids of the stored users it names."""
        ...

    def users_at(self, emails: Collection[str]) -> Mapping[str, set[str]]:
        """Normalized address → ids of the stored users with it."""
        ...

    def members_of(self, user_ids: Collection[str]) -> Mapping[int, MemberKeys]:
        """The members linked to these external ids."""
        ...

    def members_at(self, emails: Collection[str]) -> Mapping[int, MemberKeys]:
        """The members whose address, lower-cased, is one of these."""
        ...

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
    makes absence count). Collections need their groups in the scope, which the mirror's
    groups give only when groups are synced (without, they name the organization's own)."""
    delta = reading.delta
    return (
        delta is not None
        and delta.present_user_ids is None
        and delta.present_group_ids is None
        and (rules.groups or not rules.collections)
    )


class _Reach:
    """Lookups over the stored directory with the delta's own users and groups laid over it
    (the stored groups' refs are looked up as they are reached, and kept)."""

    def __init__(self, stored: StoredDirectory, delta: DirectoryDelta) -> None:
        self.stored = stored
        self.new_users = {u.external_id: u for u in delta.users}
        self.new_groups = {g.external_id: g for g in delta.groups}
        self._group_refs: dict[str, str | None] = {}
        named = set(self.new_groups) | {c.external_id for c in delta.group_changes}
        self.group_refs_now = _group_refs_now(delta, self.stored_group_refs(named))
        self._ids_now = {ref: gid for gid, ref in self.group_refs_now.items()}
        self._ids_by_ref: dict[str, str | None] = {}
        self._new_named: dict[str, set[str]] = {}
        self._new_at: dict[str, set[str]] = {}
        for user in delta.users:
            for ref in _refs_of(user.ref, user.username):
                self._new_named.setdefault(ref, set()).add(user.external_id)
            if (email := normalize_email(user.email)) is not None:
                self._new_at.setdefault(email, set()).add(user.external_id)

    def stored_group_refs(self, ids: Collection[str]) -> dict[str, str]:
        """The stored groups among these ids → the refs they are stored under."""
        if missing := [gid for gid in ids if gid not in self._group_refs]:
            found = self.stored.group_refs(missing)
            self._group_refs.update((gid, found.get(gid)) for gid in missing)
        return {gid: ref for gid in ids if (ref := self._group_refs.get(gid)) is not None}

    def group_ids_of(self, refs: Collection[str]) -> dict[str, str]:
        """Ref → id of the group it names: a group of the delta under its ref now, else the
        stored group under it (a renamed group is still found by its old ref)."""
        if missing := [r for r in refs if r not in self._ids_now and r not in self._ids_by_ref]:
            found = self.stored.groups_with_refs(missing)
            self._ids_by_ref.update((ref, found.get(ref)) for ref in missing)
        named: dict[str, str] = {}
        for ref in refs:
            gid = self._ids_now.get(ref) or self._ids_by_ref.get(ref)
            if gid is not None:
                named[ref] = gid
        return named

    def users_named(self, refs: Collection[str]) -> dict[str, set[str]]:
        found = {ref: set(ids) for ref, ids in self.stored.users_named(refs).items()}
        for ref in refs:
            if ref in self._new_named:
                found.setdefault(ref, set()).update(self._new_named[ref])
        return found

    def users_at(self, emails: Collection[str]) -> set[str]:
        found = set().union(*self.stored.users_at(emails).values())
        for email in emails:
            found |= self._new_at.get(email, set())
        return found

    def emails_of(self, user_ids: Collection[str]) -> set[str]:
        """The normalized addresses these users have, stored or read now."""
        raw = [u.email for u in self.stored.users(user_ids).values()]
        raw += [new.email for uid in user_ids if (new := self.new_users.get(uid)) is not None]
        return {email for r in raw if (email := normalize_email(r)) is not None}

    def refs_of(self, user_ids: Collection[str]) -> set[str]:
        """Every ref (and user-name ref) these users have, stored or read now."""
        refs: set[str] = set()
        for user in self.stored.users(user_ids).values():
            refs.update(_refs_of(user.ref, user.username))
        for uid in user_ids:
            if (new := self.new_users.get(uid)) is not None:
                refs.update(_refs_of(new.ref, new.username))
        return refs


def _refs_of(ref: str, username: str | None) -> tuple[str, ...]:
    return (ref, username_ref(username)) if username else (ref,)


def _group_refs_now(delta: DirectoryDelta, stored_groups: Mapping[str, str]) -> dict[str, str]:
    """The ref of every group the delta reads or changes, as the mirror will have it (a
    partial change names an unknown group by the ref it gives)."""
    refs = {g.external_id: g.ref for g in delta.groups}
    for change in delta.group_changes:
        if change.external_id not in refs and change.external_id not in stored_groups:
            refs[change.external_id] = change.ref
    return refs


def scope_of(
    delta: DirectoryDelta,
    stored: StoredDirectory,
    *,
    also_users: Collection[str] = (),
    also_groups: Collection[str] = (),
) -> Scope:
    """The users, members and groups the delta can change the plan for (see the module),
    and ``also_users`` and ``also_groups`` (ids) with everything they reach, as if the delta
    touched them: the members whose invitation came due, the groups collections name."""
    reach = _Reach(stored, delta)
    users = set(reach.new_users) | delta.deleted_user_ids | set(also_users)
    under: set[str] = set(delta.deleted_group_ids)  # every user below these is in scope
    touched = set(reach.new_groups) | delta.deleted_group_ids
    touched.update(reach.stored_group_refs(also_groups))
    touched.update(c.external_id for c in delta.group_changes)
    # a group the delta gives whole is compared with its stored members; a partial change
    # names its own (so a PATCH of a few members of a large group reads only those)
    replaced = reach.stored_group_refs(reach.new_groups)
    stored_refs = stored.member_refs(sorted(replaced))
    changed_refs: set[str] = set()
    for gid, group in reach.new_groups.items():
        changed_refs |= stored_refs.get(gid, frozenset()) ^ group.member_refs
        if gid in replaced and replaced[gid] != group.ref:
            under.add(gid)  # renamed: the groups naming its old ref no longer reach it
    for change in delta.group_changes:
        changed_refs |= change.added_refs | change.removed_refs
    for ids in reach.users_named(changed_refs).values():
        users |= ids
    under.update(reach.group_ids_of(changed_refs).values())
    users |= _users_under(under, reach)

    users, members = _address_closure(users, reach)
    # a group under a ref it did not have (new, or renamed) is now reached by the groups that
    # named that ref: they nest it from now on
    before = reach.stored_group_refs(reach.group_refs_now)
    moved = {ref for gid, ref in reach.group_refs_now.items() if before.get(gid) != ref}
    touched |= stored.groups_naming(moved)
    groups = _groups_reaching(users, touched, reach)
    return Scope(user_ids=frozenset(users), member_ids=frozenset(members), group_ids=groups)


def _users_under(roots: set[str], reach: _Reach) -> set[str]:
    """The users below these groups, through nesting, as stored and as read now."""
    users: set[str] = set()
    seen: set[str] = set()
    frontier = set(roots)
    while frontier:
        seen |= frontier
        stored = reach.stored.member_refs(frontier)
        refs: set[str] = set()
        for gid in frontier:
            refs |= stored.get(gid, frozenset())
            if gid in reach.new_groups:
                refs |= reach.new_groups[gid].member_refs
        for ids in reach.users_named(refs).values():
            users |= ids
        frontier = set(reach.group_ids_of(refs).values()) - seen
    return users


def _address_closure(users: set[str], reach: _Reach) -> tuple[set[str], set[int]]:
    """Grow the users (and find the members) until no address is shared with the outside."""
    stored = reach.stored
    members: dict[int, MemberKeys] = {}
    emails: set[str] = set()
    pending_users = set(users)
    while pending_users:
        found = dict(stored.members_of(pending_users))
        addresses = reach.emails_of(pending_users)
        pending_users = set()
        while True:
            fresh_members = {mid: keys for mid, keys in found.items() if mid not in members}
            members.update(fresh_members)
            for email, external_id in fresh_members.values():
                addresses.add(email.lower())
                if external_id is not None and external_id not in users:
                    users.add(external_id)
                    pending_users.add(external_id)
            fresh = addresses - emails
            if not fresh:
                break
            emails |= fresh
            for uid in reach.users_at(fresh) - users:
                users.add(uid)
                pending_users.add(uid)
            found = dict(stored.members_at(fresh))
            addresses = set()
    return users, set(members)


def _groups_reaching(users: set[str], touched: set[str], reach: _Reach) -> frozenset[str]:
    """The touched groups and every stored group naming a scope user, with all their stored
    ancestors. (A group whose members the delta sets or changes is touched, so nesting the
    delta adds is covered by the touched groups themselves.)"""
    groups = reach.stored.groups_naming(reach.refs_of(users)) | touched
    frontier = set(groups)
    while frontier:
        above = set().union(*reach.stored.parents(frontier).values()) - groups
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
    recent_removals: int = 0,
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
        recent_removals=recent_removals,
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
