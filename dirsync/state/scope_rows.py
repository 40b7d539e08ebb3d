"""Loading only what a delta touches (``mapping.scope``): indexed lookups, then its rows.

The scope is worked out through ``_Stored``, the ``StoredDirectory`` the pure scope asks:
users by id, by ref and by normalized address, members by external id and by address, groups
by id and by ref, the member edges of given groups and the groups naming given refs, each an
indexed query. Then only the scope's rows are loaded in full, and of a group in the scope only
the member edges the scope can see or change (a group the delta replaces whole: all of them).
At 100,000 users a delta of a hundred changes reads a few thousand rows instead of half a
million; a push that adds 100 members to a 10,000-member group reads no more than one that
adds them to an empty one. The whole organization's counts the guards take (members, seated
members, mirror users and groups) are kept on the organization (``state.counts``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dirsync.mapping.guards import Census
from dirsync.mapping.scope import MemberKeys, ScopedOrganization, UserKeys, scope_of
from dirsync.model import (
    USERNAME_REF_PREFIX,
    DirectoryDelta,
    DirectoryGroup,
    DirectoryUser,
    Mirror,
    username_ref,
)
from dirsync.organization import MemberStatus, OrganizationState, OrgGroup
from dirsync.state import counts
from dirsync.state.mirror_rows import (
    directory_group,
    directory_user,
    mirror_groups_query,
    mirror_users_query,
)
from dirsync.state.org_queries import due_invitations, load_collections
from dirsync.state.queries import load_members
from dirsync.state.rows import chunked, plain_rows
from dirsync.state.schema import (
    CollectionAccessRow,
    GroupMemberRow,
    GroupRow,
    MemberRow,
    MirrorGroupMemberRow,
    MirrorGroupRow,
    MirrorUserRow,
    OrganizationRow,
)

if TYPE_CHECKING:
    from dirsync.state.rows import AnySelect


class _Stored:
    """``StoredDirectory`` over one organization's rows: each lookup an indexed query."""

    def __init__(self, session: Session, org_id: int) -> None:
        self._session = session
        self._org_id = org_id
        self._users: dict[str, UserKeys | None] = {}
        self._by_username: dict[str, set[str]] | None = None
        self._group_refs: dict[str, str | None] = {}

    def _rows(self, query: AnySelect) -> Iterator[Sequence[Any]]:
        return plain_rows(self._session, query)

    def _edges_naming(self, refs: Collection[str]) -> Iterator[Sequence[Any]]:
        table = MirrorGroupMemberRow
        for chunk in chunked(sorted(refs)):
            yield from self._rows(
                select(table.group_external_id, table.member_ref).where(
                    table.organization_id == self._org_id, table.member_ref.in_(chunk)
                )
            )

    def group_refs(self, ids: Collection[str]) -> Mapping[str, str]:
        missing = sorted(gid for gid in ids if gid not in self._group_refs)
        for chunk in chunked(missing):
            self._group_refs.update((gid, None) for gid in chunk)
            query = select(MirrorGroupRow.external_id, MirrorGroupRow.ref).where(
                MirrorGroupRow.organization_id == self._org_id,
                MirrorGroupRow.external_id.in_(chunk),
            )
            self._group_refs.update((gid, ref) for gid, ref in self._rows(query))
        return {gid: ref for gid in ids if (ref := self._group_refs.get(gid)) is not None}

    def groups_with_refs(self, refs: Collection[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for chunk in chunked(sorted(refs)):
            query = (
                select(MirrorGroupRow.ref, MirrorGroupRow.external_id)
                .where(
                    MirrorGroupRow.organization_id == self._org_id,
                    MirrorGroupRow.ref.in_(chunk),
                )
                .order_by(MirrorGroupRow.external_id)
            )
            for ref, gid in self._rows(query):
                found[ref] = gid  # two groups under one ref: the last id, deterministically
                self._group_refs[gid] = ref
        return found

    def parents(self, group_ids: Collection[str]) -> Mapping[str, frozenset[str]]:
        ids_by_ref: defaultdict[str, set[str]] = defaultdict(set)
        for gid, ref in self.group_refs(group_ids).items():
            ids_by_ref[ref].add(gid)
        parents: defaultdict[str, set[str]] = defaultdict(set)
        for parent, ref in self._edges_naming(ids_by_ref):
            for gid in ids_by_ref[ref]:
                parents[gid].add(parent)
        return {gid: frozenset(p) for gid, p in parents.items()}

    def users(self, ids: Collection[str]) -> Mapping[str, UserKeys]:
        missing = sorted(uid for uid in ids if uid not in self._users)
        for chunk in chunked(missing):
            self._users.update((uid, None) for uid in chunk)
            query = select(
                MirrorUserRow.external_id,
                MirrorUserRow.ref,
                MirrorUserRow.username,
                MirrorUserRow.email,
            ).where(
                MirrorUserRow.organization_id == self._org_id,
                MirrorUserRow.external_id.in_(chunk),
            )
            for uid, ref, username, email in self._rows(query):
                self._users[uid] = UserKeys(ref, username, email)
        return {uid: found for uid in ids if (found := self._users.get(uid)) is not None}

    def users_named(self, refs: Collection[str]) -> Mapping[str, set[str]]:
        found: dict[str, set[str]] = {}
        plain = sorted(r for r in refs if not r.startswith(USERNAME_REF_PREFIX))
        for chunk in chunked(plain):
            query = select(MirrorUserRow.ref, MirrorUserRow.external_id).where(
                MirrorUserRow.organization_id == self._org_id, MirrorUserRow.ref.in_(chunk)
            )
            for ref, uid in self._rows(query):
                found.setdefault(ref, set()).add(uid)
        if by_name := [r for r in refs if r.startswith(USERNAME_REF_PREFIX)]:
            # posixGroup memberUid: user names are normalized in Python, so they are read
            # all at once, and only for a delta that reaches such a reference
            index = self._usernames()
            found.update((ref, set(index[ref])) for ref in by_name if ref in index)
        return found

    def _usernames(self) -> dict[str, set[str]]:
        if self._by_username is None:
            self._by_username = {}
            query = select(MirrorUserRow.username, MirrorUserRow.external_id).where(
                MirrorUserRow.organization_id == self._org_id,
                MirrorUserRow.username.is_not(None),
            )
            for username, uid in self._rows(query):
                self._by_username.setdefault(username_ref(username), set()).add(uid)
        return self._by_username

    def users_at(self, emails: Collection[str]) -> Mapping[str, set[str]]:
        found: dict[str, set[str]] = {}
        for chunk in chunked(sorted(emails)):
            query = select(MirrorUserRow.email_key, MirrorUserRow.external_id).where(
                MirrorUserRow.organization_id == self._org_id,
                MirrorUserRow.email_key.in_(chunk),
            )
            for email, uid in self._rows(query):
                found.setdefault(email, set()).add(uid)
        return found

    def _members(self, where: Any) -> dict[int, MemberKeys]:
        query = select(MemberRow.id, MemberRow.email, MemberRow.external_id).where(
            MemberRow.organization_id == self._org_id, where
        )
        return {mid: (email, ext) for mid, email, ext in self._rows(query)}

    def members_of(self, user_ids: Collection[str]) -> Mapping[int, MemberKeys]:
        found: dict[int, MemberKeys] = {}
        for chunk in chunked(sorted(user_ids)):
            found.update(self._members(MemberRow.external_id.in_(chunk)))
        return found

    def members_at(self, emails: Collection[str]) -> Mapping[int, MemberKeys]:
        # member addresses are stored as the planner compares them, normalized: every
        # writer takes them from the plan, whose addresses come from ``normalize_email``
        found: dict[int, MemberKeys] = {}
        for chunk in chunked(sorted(emails)):
            found.update(self._members(MemberRow.email.in_(chunk)))
        return found

    def member_refs(self, group_ids: Collection[str]) -> Mapping[str, frozenset[str]]:
        refs: defaultdict[str, set[str]] = defaultdict(set)
        table = MirrorGroupMemberRow
        for chunk in chunked(sorted(group_ids)):
            query = select(table.group_external_id, table.member_ref).where(
                table.organization_id == self._org_id, table.group_external_id.in_(chunk)
            )
            for group_id, ref in self._rows(query):
                refs[group_id].add(ref)
        return {gid: frozenset(r) for gid, r in refs.items()}

    def groups_naming(self, refs: Collection[str]) -> set[str]:
        return {group_id for group_id, _ in self._edges_naming(refs)}

    def member_refs_among(
        self, group_ids: Collection[str], refs: Collection[str]
    ) -> Mapping[str, frozenset[str]]:
        """The stored member refs of these groups that are among ``refs`` (found through the
        edges naming ``refs``: a large group's other members are not read)."""
        wanted = set(group_ids)
        found: defaultdict[str, set[str]] = defaultdict(set)
        for group_id, ref in self._edges_naming(refs):
            if group_id in wanted:
                found[group_id].add(ref)
        return {gid: frozenset(r) for gid, r in found.items()}


def _mirror_users(session: Session, org_id: int, ids: Collection[str]) -> dict[str, DirectoryUser]:
    users: dict[str, DirectoryUser] = {}
    for chunk in chunked(sorted(ids)):
        query = mirror_users_query(org_id).where(MirrorUserRow.external_id.in_(chunk))
        users.update((row[0], directory_user(row)) for row in plain_rows(session, query))
    return users


def _mirror_groups(
    session: Session,
    org_id: int,
    ids: Collection[str],
    edges: _Stored,
    *,
    whole: Collection[str],
    refs: Collection[str],
) -> dict[str, DirectoryGroup]:
    """The stored groups with these ids: those in ``whole`` with all their member refs (the
    delta replaces or deletes them, and the mirror is written by difference), the others with
    those of their member refs that are among ``refs``: a scoped plan looks at no other (see
    ``scope.restricted``), and a plan's mirror changes no other, so the difference written
    is the same."""
    member_refs = dict(edges.member_refs_among(set(ids) - set(whole), refs))
    member_refs.update(edges.member_refs(whole))
    groups: dict[str, DirectoryGroup] = {}
    for chunk in chunked(sorted(ids)):
        query = mirror_groups_query(org_id).where(MirrorGroupRow.external_id.in_(chunk))
        for row in plain_rows(session, query):
            groups[row[0]] = directory_group(row, member_refs.get(row[0], frozenset()))
    return groups


def _refs_in_scope(
    delta: DirectoryDelta, users: Mapping[str, DirectoryUser], group_refs: Mapping[str, str]
) -> set[str]:
    """Every ref the scope's entries have, stored or in the delta, and every ref the delta's
    group changes add or remove: the member refs a scoped plan can see or change."""
    refs = set(group_refs.values())
    named = [*users.values(), *delta.users]
    refs.update(u.ref for u in named)
    refs.update(username_ref(u.username) for u in named if u.username)
    refs.update(g.ref for g in delta.groups)
    for change in delta.group_changes:
        refs.add(change.ref)
        refs |= change.added_refs | change.removed_refs
    return refs


def _org_groups(
    session: Session, org_id: int, ids: Collection[str], members: Mapping[int, str | None]
) -> tuple[OrgGroup, ...]:
    """The organization's groups with these external ids, in id order, their members narrowed
    to ``members`` (member id → the external id it is linked to)."""
    found: list[tuple[int, str, str]] = []
    for chunk in chunked(sorted(ids)):
        query = select(GroupRow.id, GroupRow.external_id, GroupRow.name).where(
            GroupRow.organization_id == org_id, GroupRow.external_id.in_(chunk)
        )
        found.extend((gid, ext, name) for gid, ext, name in plain_rows(session, query))
    linked: defaultdict[int, set[str]] = defaultdict(set)
    # the edges between these groups and these members only, by key: not every member of a
    # large group
    for id_chunk in chunked(sorted(g[0] for g in found)):
        for member_chunk in chunked(sorted(members)):
            edges = select(GroupMemberRow.group_id, GroupMemberRow.member_id).where(
                GroupMemberRow.group_id.in_(id_chunk), GroupMemberRow.member_id.in_(member_chunk)
            )
            for group_id, member_id in plain_rows(session, edges):
                if (external_id := members.get(member_id)) is not None:
                    linked[group_id].add(external_id)
    return tuple(
        OrgGroup(id=gid, external_id=ext, name=name, member_external_ids=frozenset(linked[gid]))
        for gid, ext, name in sorted(found)
    )


def _census(
    session: Session, org_id: int, version: int, delta: DirectoryDelta, *, seats: bool
) -> tuple[Census, int]:
    """The whole organization's counts, and its mirror groups: kept on the organization for
    this version (``state.counts``), else counted. Managed members take a scan of every
    member, so they are counted only when a guard can ask: when the delta deletes as many users
    as the mirror holds (an emptied directory)."""
    now = counts.current(session, org_id, version)
    managed = None
    if len(delta.deleted_user_ids) >= now.mirror_users:
        managed = session.execute(
            select(func.count(MemberRow.external_id)).where(
                MemberRow.organization_id == org_id, MemberRow.status != str(MemberStatus.REVOKED)
            )
        ).scalar_one()
    census = Census(
        members=now.members,
        managed=managed,
        seated=now.seated if seats else None,
        directory_users=now.mirror_users,
        previous_users=now.mirror_users,
    )
    return census, now.mirror_groups


def _collection_groups(session: Session, org_id: int, references: Collection[str]) -> set[str]:
    """The mirror groups collections name (by name or id) and those their access reaches now."""
    found: set[str] = set()
    for chunk in chunked(sorted(references)):
        query = select(MirrorGroupRow.external_id).where(
            MirrorGroupRow.organization_id == org_id,
            or_(MirrorGroupRow.name.in_(chunk), MirrorGroupRow.external_id.in_(chunk)),
        )
        found.update(gid for (gid,) in plain_rows(session, query))
    access = (
        select(GroupRow.external_id)
        .join(CollectionAccessRow, CollectionAccessRow.group_id == GroupRow.id)
        .where(GroupRow.organization_id == org_id, GroupRow.external_id.is_not(None))
    )
    found.update(gid for (gid,) in plain_rows(session, access))
    return found


def load_scoped(
    session: Session,
    name: str,
    delta: DirectoryDelta,
    *,
    seats: bool,
    reinvite_before: datetime | None = None,
    collection_groups: Collection[str] | None = None,
) -> ScopedOrganization | None:
    """The part of the organization ``delta`` touches; None when it was never written.
    ``seats``: the organization has a seat limit (its guard counts seated members);
    ``reinvite_before``: invitations last sent by then are due (their members join the scope);
    ``collection_groups``: with collections configured, the groups (names or ids) they name
    (those and every group collections reach now join the scope); None without collections."""
    org = session.execute(
        select(OrganizationRow.id, OrganizationRow.version).where(OrganizationRow.name == name)
    ).one_or_none()
    if org is None:
        return None
    org_id, version = org
    counted, directory_groups = _census(session, org_id, version, delta, seats=seats)
    stored = _Stored(session, org_id)
    due = [] if reinvite_before is None else due_invitations(session, org_id, reinvite_before)
    also_groups: set[str] = set()
    if collection_groups is not None:
        also_groups = _collection_groups(session, org_id, collection_groups)
    scope = scope_of(delta, stored, also_users=due, also_groups=also_groups)
    users = _mirror_users(session, org_id, scope.user_ids)
    group_refs = stored.group_refs(scope.group_ids)
    groups = _mirror_groups(
        session,
        org_id,
        group_refs.keys(),
        stored,
        # replaced or deleted: the mirror's difference takes (or drops) all their edges
        whole=({g.external_id for g in delta.groups} | delta.deleted_group_ids) & group_refs.keys(),
        refs=_refs_in_scope(delta, users, group_refs),
    )
    mirror = Mirror(users=users, groups=groups)
    members = load_members(session, org_id, share=mirror, only=scope.member_ids)
    linked = {m.id: m.external_id for m in members if m.external_id in scope.user_ids}
    state = OrganizationState(
        name=name,
        members=members,
        groups=_org_groups(session, org_id, scope.group_ids, linked),
        collections=() if collection_groups is None else load_collections(session, org_id),
    )
    return ScopedOrganization(
        state=state,
        mirror=mirror,
        version=version,
        directory_groups=directory_groups,
        counted=counted,
    )
