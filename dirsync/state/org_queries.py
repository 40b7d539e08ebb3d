"""Read queries of the organization side: collections, who reaches them, pending invitations,
recent deprovisionings."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from dirsync.organization import CollectionAccess, MemberStatus, OrgCollection, Permission
from dirsync.state.records import CollectionView, OrganizationSummary
from dirsync.state.schema import (
    CollectionAccessRow,
    CollectionRow,
    EventRow,
    GroupMemberRow,
    GroupRow,
    MemberRow,
    OrganizationRow,
)

#: a revoked member reaches no collection, whatever its groups
REVOKED = str(MemberStatus.REVOKED)


def organization_id(session: Session, name: str) -> int | None:
    return session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))


def removals_since(session: Session, name: str, since: datetime) -> int:
    """Members revoked or removed by runs (syncs, pushes; not administrators) since then."""
    org_id = organization_id(session, name)
    if org_id is None:
        return 0
    query = select(func.count()).where(
        EventRow.organization_id == org_id,
        EventRow.at >= since,
        EventRow.run_id.is_not(None),
        EventRow.action.in_(("member.revoke", "member.remove")),
    )
    return int(session.execute(query).scalar_one())


def load_collections(session: Session, org_id: int) -> tuple[OrgCollection, ...]:
    access: defaultdict[int, set[CollectionAccess]] = defaultdict(set)
    stmt = (
        select(
            CollectionAccessRow.collection_id, GroupRow.external_id, CollectionAccessRow.permission
        )
        .join(GroupRow, GroupRow.id == CollectionAccessRow.group_id)
        .where(GroupRow.organization_id == org_id, GroupRow.external_id.is_not(None))
    )
    for collection_id, group_external_id, permission in session.execute(stmt):
        if group_external_id is None:  # the query leaves these out; this tells the type checker
            continue
        access[collection_id].add(
            CollectionAccess(group_external_id=group_external_id, permission=Permission(permission))
        )
    rows = session.execute(
        select(
            CollectionRow.id, CollectionRow.external_id, CollectionRow.name, CollectionRow.managed
        )
        .where(CollectionRow.organization_id == org_id)
        .order_by(CollectionRow.id)
    )
    return tuple(
        OrgCollection(
            id=r.id,
            external_id=r.external_id,
            name=r.name,
            managed=r.managed,
            access=frozenset(access[r.id]),
        )
        for r in rows
    )


def collection_views(session: Session, name: str) -> list[CollectionView]:
    """Every collection with its groups, and the members who reach it through them."""
    org_id = organization_id(session, name)
    if org_id is None:
        return []
    groups: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
    stmt = (
        select(CollectionAccessRow.collection_id, GroupRow.name, CollectionAccessRow.permission)
        .join(GroupRow, GroupRow.id == CollectionAccessRow.group_id)
        .where(GroupRow.organization_id == org_id)
    )
    for collection_id, group_name, permission in session.execute(stmt):
        groups[collection_id].append((group_name, permission))
    emails: defaultdict[int, set[str]] = defaultdict(set)
    reach = (
        select(CollectionAccessRow.collection_id, MemberRow.email)
        .join(GroupMemberRow, GroupMemberRow.group_id == CollectionAccessRow.group_id)
        .join(MemberRow, MemberRow.id == GroupMemberRow.member_id)
        .where(MemberRow.organization_id == org_id, MemberRow.status != REVOKED)
    )
    for collection_id, email in session.execute(reach):
        emails[collection_id].add(email)
    rows = session.execute(
        select(
            CollectionRow.id, CollectionRow.name, CollectionRow.external_id, CollectionRow.managed
        )
        .where(CollectionRow.organization_id == org_id)
        .order_by(CollectionRow.name, CollectionRow.id)
    )
    return [
        CollectionView(
            name=r.name,
            external_id=r.external_id,
            managed=r.managed,
            groups=tuple(sorted(groups[r.id])),
            members=tuple(sorted(emails[r.id])),
        )
        for r in rows
    ]


def member_collections(session: Session, name: str) -> dict[str, dict[str, str]]:
    """Member email → collection name → the strongest permission its groups give it."""
    org_id = organization_id(session, name)
    if org_id is None:
        return {}
    stmt = (
        select(MemberRow.email, CollectionRow.name, CollectionAccessRow.permission)
        .join(GroupMemberRow, GroupMemberRow.member_id == MemberRow.id)
        .join(CollectionAccessRow, CollectionAccessRow.group_id == GroupMemberRow.group_id)
        .join(CollectionRow, CollectionRow.id == CollectionAccessRow.collection_id)
        .where(MemberRow.organization_id == org_id, MemberRow.status != REVOKED)
    )
    out: defaultdict[str, dict[str, str]] = defaultdict(dict)
    for email, collection, permission in session.execute(stmt):
        held = out[email].get(collection)
        if held is None or Permission(permission).rank > Permission(held).rank:
            out[email][collection] = permission
    return dict(out)


def empty_summary() -> OrganizationSummary:
    return OrganizationSummary(members={str(s): 0 for s in MemberStatus})


def summaries(
    session: Session, stale_before: dict[str, datetime | None]
) -> dict[str, OrganizationSummary]:
    """Members by status and invitations sent before the organization's cutoff, by name."""
    by_status: defaultdict[str, dict[str, int]] = defaultdict(dict)
    stmt = (
        select(OrganizationRow.name, MemberRow.status, func.count())
        .join(MemberRow, MemberRow.organization_id == OrganizationRow.id)
        .where(OrganizationRow.name.in_(list(stale_before)))
        .group_by(OrganizationRow.name, MemberRow.status)
    )
    for org, status, count in session.execute(stmt):
        by_status[org][status] = count
    out: dict[str, OrganizationSummary] = {}
    for org, cutoff in stale_before.items():
        stale = 0
        if cutoff is not None:
            sent = func.coalesce(MemberRow.last_invited_at, MemberRow.invited_at)
            stale = (
                session.scalar(
                    select(func.count())
                    .select_from(MemberRow)
                    .join(OrganizationRow, OrganizationRow.id == MemberRow.organization_id)
                    .where(
                        OrganizationRow.name == org,
                        MemberRow.status == str(MemberStatus.INVITED),
                        sent <= cutoff,
                    )
                )
                or 0
            )
        counts = {str(s): by_status[org].get(str(s), 0) for s in MemberStatus}
        out[org] = OrganizationSummary(members=counts, stale_invitations=stale)
    return out


def due_conditions(
    org_id: int | BindParameter[int], sent_before: datetime | BindParameter[datetime]
) -> tuple[ColumnElement[bool], ...]:
    """What makes a member's invitation due again (see ``due_invitations``); the values may be
    bound parameters, for a statement built once (``run_rows``)."""
    return (
        MemberRow.organization_id == org_id,
        MemberRow.status == str(MemberStatus.INVITED),
        MemberRow.invited_at <= sent_before,
        or_(MemberRow.last_invited_at.is_(None), MemberRow.last_invited_at <= sent_before),
        MemberRow.external_id.is_not(None),
    )


def due_invitations(
    session: Session, org_id: int, sent_before: datetime, *, limit: int | None = None
) -> list[str]:
    """The external ids of linked members still invited whose invitation was last sent at or
    before ``sent_before``: those ``reinvite_after`` may send again (the planner decides).

    A range of ``ix_members_org_status_invited_at``: a re-invitation is sent only once the
    first is due, so ``last_invited_at`` is never before ``invited_at``, and an invitation last
    sent by then was first sent by then too."""
    query = select(MemberRow.external_id).where(*due_conditions(org_id, sent_before))
    if limit is not None:
        query = query.limit(limit)
    return [external_id for (external_id,) in session.execute(query) if external_id is not None]
