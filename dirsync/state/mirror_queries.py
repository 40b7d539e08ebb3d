"""Reads of single mirror users, for a source that is asked about its users one at a time.

A SCIM identity provider reads back what it pushed: a user by id, the users with a user name,
a page of users. Each is an indexed lookup or one page, never the whole organization.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dirsync.model import DirectoryUser
from dirsync.state.mirror_rows import directory_user, mirror_users_query
from dirsync.state.queries import organization_version
from dirsync.state.schema import MirrorUserRow


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
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[DirectoryUser]]:
    """(how many match, this page of them) in external id order; ``username`` matches
    case-insensitively (user names are case-insensitive in SCIM's User schema)."""
    org_id, _ = organization_version(session, organization)
    if org_id is None:
        return 0, []
    query = mirror_users_query(org_id)
    counted = select(func.count()).select_from(MirrorUserRow)
    counted = counted.where(MirrorUserRow.organization_id == org_id)
    if username is not None:
        same_name = func.lower(MirrorUserRow.username) == username.lower()
        query, counted = query.where(same_name), counted.where(same_name)
    total = session.execute(counted).scalar_one()
    page = query.order_by(MirrorUserRow.external_id).offset(offset).limit(limit)
    return total, [directory_user(row) for row in session.execute(page)]
