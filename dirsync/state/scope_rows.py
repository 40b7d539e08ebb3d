"""Loading only what a delta touches (``mapping.scope``): cheap keys, then the scope's rows.

The keys (every mirror user's ref, user name and email; every member's email and external id;
the groups and their nesting) are a few narrow columns. Member edges are the bulk of the
mirror, so they are fetched only for the groups the scope asks about. At 100,000 users this
reads a fraction of what a whole load reads and builds no object for what the delta leaves
alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Integer, func, select, type_coerce
from sqlalchemy.orm import Session

from dirsync.mapping.guards import Census
from dirsync.mapping.scope import (
    ScopedOrganization,
    StoredKeys,
    UserKeys,
    scope_of,
)
from dirsync.model import DirectoryDelta, DirectoryGroup, DirectoryUser, Mirror
from dirsync.organization import SEATED_STATUSES, MemberStatus, OrganizationState, OrgGroup
from dirsync.state.plan_writes import chunked
from dirsync.state.queries import load_members
from dirsync.state.rows import plain_rows
from dirsync.state.schema import (
    GroupMemberRow,
    GroupRow,
    MemberRow,
    MirrorGroupMemberRow,
    MirrorGroupRow,
    MirrorUserRow,
    OrganizationRow,
)


class _Edges:
    """``StoredEdges`` over the mirror's member edges, one organization."""

    def __init__(self, session: Session, org_id: int) -> None:
        self._session = session
        self._org_id = org_id

    def member_refs(self, group_ids: Collection[str]) -> Mapping[str, frozenset[str]]:
        refs: defaultdict[str, set[str]] = defaultdict(set)
        table = MirrorGroupMemberRow
        for chunk in chunked(sorted(group_ids)):
            query = select(table.group_external_id, table.member_ref).where(
                table.organization_id == self._org_id, table.group_external_id.in_(chunk)
            )
            for group_id, ref in plain_rows(self._session, query):
                refs[group_id].add(ref)
        return {gid: frozenset(r) for gid, r in refs.items()}

    def groups_naming(self, refs: Collection[str]) -> set[str]:
        table = MirrorGroupMemberRow
        found: set[str] = set()
        for chunk in chunked(sorted(refs)):
            query = (
                select(table.group_external_id)
                .where(table.organization_id == self._org_id, table.member_ref.in_(chunk))
                .distinct()
            )
            found.update(row[0] for row in plain_rows(self._session, query))
        return found


def _keys(session: Session, org_id: int) -> StoredKeys:
    users = {
        uid: UserKeys(ref, username, email)
        for uid, ref, username, email in plain_rows(
            session,
            select(
                MirrorUserRow.external_id,
                MirrorUserRow.ref,
                MirrorUserRow.username,
                MirrorUserRow.email,
            ).where(MirrorUserRow.organization_id == org_id),
        )
    }
    groups: dict[str, str] = {
        gid: ref
        for gid, ref in plain_rows(
            session,
            select(MirrorGroupRow.external_id, MirrorGroupRow.ref).where(
                MirrorGroupRow.organization_id == org_id
            ),
        )
    }
    ids_by_ref = {ref: gid for gid, ref in groups.items()}
    parents: defaultdict[str, set[str]] = defaultdict(set)
    table = MirrorGroupMemberRow
    for chunk in chunked(sorted(ids_by_ref)):
        query = select(table.group_external_id, table.member_ref).where(
            table.organization_id == org_id, table.member_ref.in_(chunk)
        )
        for parent, ref in plain_rows(session, query):
            parents[ids_by_ref[ref]].add(parent)
    members = {
        mid: (email, external_id)
        for mid, email, external_id in plain_rows(
            session,
            select(MemberRow.id, MemberRow.email, MemberRow.external_id).where(
                MemberRow.organization_id == org_id
            ),
        )
    }
    return StoredKeys(
        users=users,
        groups=groups,
        parents={gid: frozenset(p) for gid, p in parents.items()},
        members=members,
    )


def _mirror_users(session: Session, org_id: int, ids: Collection[str]) -> dict[str, DirectoryUser]:
    disabled = type_coerce(MirrorUserRow.disabled, Integer)
    users: dict[str, DirectoryUser] = {}
    for chunk in chunked(sorted(ids)):
        query = select(
            MirrorUserRow.external_id,
            MirrorUserRow.ref,
            MirrorUserRow.username,
            MirrorUserRow.email,
            MirrorUserRow.name,
            disabled,
        ).where(MirrorUserRow.organization_id == org_id, MirrorUserRow.external_id.in_(chunk))
        for uid, ref, username, email, name, is_disabled in plain_rows(session, query):
            users[uid] = DirectoryUser(
                external_id=uid,
                ref=ref,
                username=username,
                email=email,
                name=name,
                disabled=bool(is_disabled),
            )
    return users


def _mirror_groups(
    session: Session, org_id: int, ids: Collection[str], edges: _Edges
) -> dict[str, DirectoryGroup]:
    refs = edges.member_refs(ids)
    groups: dict[str, DirectoryGroup] = {}
    for chunk in chunked(sorted(ids)):
        query = select(MirrorGroupRow.external_id, MirrorGroupRow.ref, MirrorGroupRow.name).where(
            MirrorGroupRow.organization_id == org_id, MirrorGroupRow.external_id.in_(chunk)
        )
        for gid, ref, name in plain_rows(session, query):
            groups[gid] = DirectoryGroup(
                external_id=gid, ref=ref, name=name, member_refs=refs.get(gid, frozenset())
            )
    return groups


def _org_groups(
    session: Session, org_id: int, ids: Collection[str], members: Mapping[int, Any]
) -> tuple[OrgGroup, ...]:
    """The organization's groups with these external ids, in id order, their members narrowed
    to ``members`` (member id → the member's (email, external id))."""
    found: list[tuple[int, str, str]] = []
    for chunk in chunked(sorted(ids)):
        query = select(GroupRow.id, GroupRow.external_id, GroupRow.name).where(
            GroupRow.organization_id == org_id, GroupRow.external_id.in_(chunk)
        )
        found.extend((gid, ext, name) for gid, ext, name in plain_rows(session, query))
    linked: defaultdict[int, set[str]] = defaultdict(set)
    for id_chunk in chunked(sorted(g[0] for g in found)):
        edges = select(GroupMemberRow.group_id, GroupMemberRow.member_id).where(
            GroupMemberRow.group_id.in_(id_chunk)
        )
        for group_id, member_id in plain_rows(session, edges):
            if (member := members.get(member_id)) is not None and member[1] is not None:
                linked[group_id].add(member[1])
    return tuple(
        OrgGroup(id=gid, external_id=ext, name=name, member_external_ids=frozenset(linked[gid]))
        for gid, ext, name in sorted(found)
    )


def _census(session: Session, org_id: int, directory_users: int) -> Census:
    seated = [str(s) for s in SEATED_STATUSES]
    members, managed, seats = session.execute(
        select(
            func.count(),
            func.count(MemberRow.external_id).filter(MemberRow.status != str(MemberStatus.REVOKED)),
            func.count().filter(MemberRow.status.in_(seated)),
        ).where(MemberRow.organization_id == org_id)
    ).one()
    return Census(
        members=members,
        managed=managed,
        seated=seats,
        directory_users=directory_users,
        previous_users=directory_users,
    )


def load_scoped(session: Session, name: str, delta: DirectoryDelta) -> ScopedOrganization | None:
    """The part of the organization ``delta`` touches; None when it was never written."""
    org = session.execute(
        select(OrganizationRow.id, OrganizationRow.version).where(OrganizationRow.name == name)
    ).one_or_none()
    if org is None:
        return None
    org_id, version = org
    edges = _Edges(session, org_id)
    keys = _keys(session, org_id)
    scope = scope_of(delta, keys, edges)
    users = _mirror_users(session, org_id, scope.user_ids & keys.users.keys())
    groups = _mirror_groups(session, org_id, scope.group_ids & keys.groups.keys(), edges)
    mirror = Mirror(users=users, groups=groups)
    members = load_members(session, org_id, share=mirror, only=scope.member_ids)
    in_scope = {mid: keys.members[mid] for mid in scope.member_ids}
    in_scope_users = {
        mid: (email, ext) for mid, (email, ext) in in_scope.items() if ext in scope.user_ids
    }
    state = OrganizationState(
        name=name,
        members=members,
        groups=_org_groups(session, org_id, scope.group_ids, in_scope_users),
    )
    return ScopedOrganization(
        state=state,
        mirror=mirror,
        version=version,
        directory_groups=len(keys.groups),
        counted=_census(session, org_id, len(keys.users)),
    )
