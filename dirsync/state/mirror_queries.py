"""Reads of single mirror users and groups, for a source that is asked about them one at a time.

A SCIM identity provider reads back what it pushed: a user or group by id, the users with a
user name, the groups with a name, a page. Each is an indexed lookup or one page (a group with
its members), never the whole organization.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dirsync.model import DirectoryGroup, DirectoryUser
from dirsync.state.mirror_rows import (
    directory_group,
    directory_user,
    mirror_groups_query,
    mirror_users_query,
    name_key,
)
from dirsync.state.queries import organization_version
from dirsync.state.rows import chunked
from dirsync.state.schema import MirrorGroupMemberRow, MirrorGroupRow, MirrorUserRow

T = TypeVar("T")


def mirror_user(session: Session, organization: str, external_id: str) -> DirectoryUser | None:
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return None
    row = session.execute(
        mirror_users_query(org_id).where(MirrorUserRow.external_id == external_id)
    ).one_or_none()
    return None if row is None else directory_user(row)


def mirror_users_page(
    session: Session,
    organization: str,
    *,
    username: str | None = None,
    idp_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[DirectoryUser]]:
    """(how many match, this page of them) in external id order; ``username`` matches
    case-insensitively (user names are case-insensitive in SCIM's User schema), ``idp_id``
    exactly (``externalId`` is case-exact)."""
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return 0, []
    query = mirror_users_query(org_id)
    matching = []
    if username is not None:
        matching.append(MirrorUserRow.username_key == name_key(username))
    if idp_id is not None:
        matching.append(MirrorUserRow.idp_id == idp_id)
    if matching:
        found = [directory_user(row) for row in session.execute(query.where(*matching))]
        return _page(sorted(found, key=lambda u: u.external_id), offset, limit)
    counted = select(func.count()).where(MirrorUserRow.organization_id == org_id)
    total = session.execute(counted).scalar_one()
    page = query.order_by(MirrorUserRow.external_id).offset(offset).limit(limit)
    return total, [directory_user(row) for row in session.execute(page)]


def _page(found: list[T], offset: int, limit: int) -> tuple[int, list[T]]:
    """A filtered list (a name or an id names few entries) paged here: in SQL, ``ORDER BY``
    the key with ``LIMIT`` leads SQLite to walk the organization in key order rather than
    take the filter's index."""
    return len(found), found[offset : offset + limit]


def _group_members(session: Session, org_id: int, group_ids: list[str]) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {gid: set() for gid in group_ids}
    for chunk in chunked(group_ids):
        edges = select(MirrorGroupMemberRow.group_external_id, MirrorGroupMemberRow.member_ref)
        edges = edges.where(
            MirrorGroupMemberRow.organization_id == org_id,
            MirrorGroupMemberRow.group_external_id.in_(chunk),
        )
        for gid, ref in session.execute(edges):
            refs[gid].add(ref)
    return refs


def mirror_groups_page(
    session: Session,
    organization: str,
    *,
    name: str | None = None,
    group_id: str | None = None,
    idp_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
    members: bool = True,
) -> tuple[int, list[DirectoryGroup]]:
    """(how many match, this page of them) in external id order, with their member refs
    unless ``members`` is False; ``name`` matches case-insensitively, ``idp_id`` exactly."""
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return 0, []
    where = [MirrorGroupRow.organization_id == org_id]
    if name is not None:
        where.append(MirrorGroupRow.name_key == name_key(name))
    if group_id is not None:
        where.append(MirrorGroupRow.external_id == group_id)
    if idp_id is not None:
        where.append(MirrorGroupRow.idp_id == idp_id)
    query = mirror_groups_query(org_id).where(*where)
    if len(where) > 1:
        total, rows = _page(sorted(session.execute(query).all(), key=lambda r: r[0]), offset, limit)
    else:
        counted = select(func.count()).select_from(MirrorGroupRow).where(*where)
        total = session.execute(counted).scalar_one()
        page = query.order_by(MirrorGroupRow.external_id).offset(offset).limit(limit)
        rows = list(session.execute(page).all())
    refs = _group_members(session, org_id, [r[0] for r in rows]) if members else {}
    return total, [directory_group(row, frozenset(refs.get(row[0], ()))) for row in rows]


def mirror_kinds(session: Session, organization: str, refs: Collection[str]) -> dict[str, str]:
    """Which of these refs name a user or a group of the stored mirror: ref → "User" or
    "Group" (a ref that names neither is absent)."""
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return {}
    found: dict[str, str] = {}
    for chunk in chunked(sorted(refs)):
        for table, kind in ((MirrorUserRow, "User"), (MirrorGroupRow, "Group")):
            query = select(table.ref).where(table.organization_id == org_id, table.ref.in_(chunk))
            found.update((ref, kind) for ref in session.execute(query).scalars())
    return found


def mirror_members_among(
    session: Session, organization: str, group_id: str, refs: Collection[str]
) -> frozenset[str]:
    """Which of ``refs`` the stored group names as members (look-ups of its edges by key:
    its other members are not read)."""
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return frozenset()
    table = MirrorGroupMemberRow
    found: set[str] = set()
    for chunk in chunked(sorted(refs)):
        query = select(table.member_ref).where(
            table.organization_id == org_id,
            table.group_external_id == group_id,
            table.member_ref.in_(chunk),
        )
        found.update(session.execute(query).scalars())
    return frozenset(found)
