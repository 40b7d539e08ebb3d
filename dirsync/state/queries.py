"""Read queries of the store; rows become values here and never leave ``state/``."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from dirsync.model import Cursor, Mirror
from dirsync.organization import (
    Member,
    MemberStatus,
    OrganizationState,
    OrgGroup,
    RevokeReason,
    Role,
)
from dirsync.plan import Outcome
from dirsync.state.mirror_rows import load_mirror
from dirsync.state.org_queries import load_collections
from dirsync.state.records import EventView, GroupView, MemberView, RunRecord, StoredOrganization
from dirsync.state.rows import chunked, plain_rows
from dirsync.state.schema import (
    CursorRow,
    EventRow,
    GroupMemberRow,
    GroupRow,
    MemberRow,
    OrganizationRow,
    RunRow,
    UTCDateTime,
)

T = TypeVar("T")


def empty_organization(name: str) -> StoredOrganization:
    return StoredOrganization(
        state=OrganizationState(name=name), mirror=Mirror(), cursor=None, version=0
    )


def organization_id(session: Session, name: str) -> int | None:
    return session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))


def organization_version(session: Session, name: str) -> tuple[int | None, int]:
    row = session.execute(
        select(OrganizationRow.id, OrganizationRow.version).where(OrganizationRow.name == name)
    ).one_or_none()
    return (None, 0) if row is None else (row[0], row[1])


def cursor_and_version(session: Session, name: str) -> tuple[Cursor | None, int]:
    org_id, version = organization_version(session, name)
    if org_id is None:
        return None, 0
    cursor = session.execute(
        select(CursorRow.kind, CursorRow.value).where(CursorRow.organization_id == org_id)
    ).one_or_none()
    return (Cursor(kind=cursor.kind, value=cursor.value) if cursor else None), version


def load_organization(session: Session, name: str) -> StoredOrganization:
    org = session.execute(
        select(OrganizationRow.id, OrganizationRow.version, OrganizationRow.last_user_count).where(
            OrganizationRow.name == name
        )
    ).one_or_none()
    if org is None:
        return empty_organization(name)
    org_id, version, last_user_count = org
    mirror = load_mirror(session, org_id)
    members = load_members(session, org_id, share=mirror)
    # member ids → external ids from the members just loaded: no join over 100,000 members
    external_ids = {m.id: m.external_id for m in members if m.external_id is not None}
    linked: defaultdict[int, set[str]] = defaultdict(set)
    edges = (
        select(GroupMemberRow.group_id, GroupMemberRow.member_id)
        .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
        .where(GroupRow.organization_id == org_id)
    )
    for group_id, member_id in plain_rows(session, edges):
        if (external_id := external_ids.get(member_id)) is not None:
            linked[group_id].add(external_id)
    groups = tuple(
        OrgGroup(id=g_id, external_id=ext, name=g_name, member_external_ids=frozenset(linked[g_id]))
        for g_id, ext, g_name in plain_rows(
            session,
            select(GroupRow.id, GroupRow.external_id, GroupRow.name)
            .where(GroupRow.organization_id == org_id)
            .order_by(GroupRow.id),
        )
    )
    cursor = session.execute(
        select(CursorRow.kind, CursorRow.value).where(CursorRow.organization_id == org_id)
    ).one_or_none()
    return StoredOrganization(
        state=OrganizationState(
            name=name,
            members=members,
            groups=groups,
            collections=load_collections(session, org_id),
        ),
        mirror=mirror,
        cursor=Cursor(kind=cursor.kind, value=cursor.value) if cursor else None,
        version=version,
        last_user_count=last_user_count,
    )


def load_members(
    session: Session,
    org_id: int,
    *,
    share: Mirror | None = None,
    only: Collection[int] | None = None,
) -> tuple[Member, ...]:
    """The organization's members (``only``: those with these ids), in id order; with
    ``share``, a linked member's external id, email and name are the very string objects of
    its mirror user when equal (100,000 members: ~20 MB less at a run's peak of memory;
    equal strings are interchangeable)."""
    statuses = {str(s): s for s in MemberStatus}  # enum lookups once, not per row
    roles = {str(r): r for r in Role}
    reasons = {str(r): r for r in RevokeReason}
    # the last invitation's time, converted here once per distinct value (one "now" per run
    # invites thousands at once) rather than by SQLAlchemy once per row and column
    invited = type_coerce(func.coalesce(MemberRow.last_invited_at, MemberRow.invited_at), String)
    columns = (
        MemberRow.id,
        MemberRow.email,
        MemberRow.external_id,
        MemberRow.name,
        MemberRow.status,
        MemberRow.role,
        MemberRow.restore_status,
        MemberRow.revoked_reason,
        invited,
    )
    if only is None:
        query = select(*columns).where(MemberRow.organization_id == org_id)
        rows: Iterable[Sequence[Any]] = plain_rows(session, query.order_by(MemberRow.id))
    else:
        # by primary key alone, the organization checked here: with both in SQL, SQLite
        # walks the organization's index (every member) rather than look the ids up
        by_id = select(*columns, MemberRow.organization_id)
        found = [
            row[:-1]
            for chunk in chunked(sorted(only))
            for row in plain_rows(session, by_id.where(MemberRow.id.in_(chunk)))
            if row[-1] == org_id
        ]
        rows = sorted(found, key=itemgetter(0))
    to_datetime = _datetime_converter(session)
    users = share.users if share is not None else {}
    return tuple(
        Member(
            id=member_id,
            email=_same(email, user.email) if user else email,
            external_id=_same(external_id, user.external_id) if user else external_id,
            name=_same(member_name, user.name) if user else member_name,
            status=statuses.get(status) or MemberStatus(status),
            role=roles.get(role) or Role(role),
            restore_status=(statuses.get(restore) or MemberStatus(restore)) if restore else None,
            revoked_reason=(reasons.get(reason) or RevokeReason(reason)) if reason else None,
            invited_at=to_datetime(when),
        )
        for (
            member_id,
            email,
            external_id,
            member_name,
            status,
            role,
            restore,
            reason,
            when,
        ) in rows
        for user in (users.get(external_id) if external_id is not None else None,)
    )


def _same(value: T, shared: T) -> T:
    return shared if value == shared else value


def _datetime_converter(session: Session) -> Callable[[Any], datetime | None]:
    """The store's own conversion of a raw datetime value, memoized per distinct value."""
    process = UTCDateTime().result_processor(session.get_bind().dialect, None)
    memo: dict[Any, datetime | None] = {None: None}

    def convert(value: Any) -> datetime | None:
        try:
            return memo[value]
        except KeyError:
            memo[value] = result = process(value) if process is not None else value
            return result

    return convert


def member_views(session: Session, name: str) -> list[MemberView]:
    org_id = organization_id(session, name)
    if org_id is None:
        return []
    names: defaultdict[int, list[str]] = defaultdict(list)
    stmt = (
        select(GroupMemberRow.member_id, GroupRow.name)
        .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
        .where(GroupRow.organization_id == org_id)
    )
    for member_id, group_name in session.execute(stmt):
        names[member_id].append(group_name)
    rows = session.execute(
        select(
            MemberRow.id,
            MemberRow.email,
            MemberRow.external_id,
            MemberRow.name,
            MemberRow.status,
            MemberRow.role,
            MemberRow.invited_at,
            MemberRow.last_invited_at,
        )
        .where(MemberRow.organization_id == org_id)
        .order_by(MemberRow.email)
    )
    return [
        MemberView(
            email=r.email,
            external_id=r.external_id,
            name=r.name,
            status=r.status,
            role=r.role,
            groups=tuple(sorted(names[r.id])),
            invited_at=r.last_invited_at or r.invited_at,
        )
        for r in rows
    ]


def group_views(session: Session, name: str) -> list[GroupView]:
    org_id = organization_id(session, name)
    if org_id is None:
        return []
    emails: defaultdict[int, list[str]] = defaultdict(list)
    stmt = (
        select(GroupMemberRow.group_id, MemberRow.email)
        .join(MemberRow, MemberRow.id == GroupMemberRow.member_id)
        .where(MemberRow.organization_id == org_id)
    )
    for group_id, email in session.execute(stmt):
        emails[group_id].append(email)
    rows = session.execute(
        select(GroupRow.id, GroupRow.name, GroupRow.external_id)
        .where(GroupRow.organization_id == org_id)
        .order_by(GroupRow.name, GroupRow.id)
    )
    return [
        GroupView(name=r.name, external_id=r.external_id, members=tuple(sorted(emails[r.id])))
        for r in rows
    ]


def event_views(session: Session, name: str, since: datetime | None) -> list[EventView]:
    stmt = (
        select(EventRow)
        .join(OrganizationRow, OrganizationRow.id == EventRow.organization_id)
        .where(OrganizationRow.name == name)
        .order_by(EventRow.at, EventRow.id)
    )
    if since is not None:
        stmt = stmt.where(EventRow.at >= since)
    return [
        EventView(
            at=e.at,
            organization=name,
            actor=e.actor,
            action=e.action,
            target=e.target,
            before=e.before,
            after=e.after,
        )
        for e in session.scalars(stmt)
    ]


def last_successes(session: Session) -> dict[str, datetime]:
    """When each organization's latest applied or unchanged run finished (for status --check)."""
    finished = func.max(func.coalesce(RunRow.finished_at, RunRow.started_at))
    stmt = (
        select(OrganizationRow.name, finished)
        .join(RunRow, RunRow.organization_id == OrganizationRow.id)
        .where(RunRow.outcome.in_([str(Outcome.APPLIED), str(Outcome.UNCHANGED)]))
        .group_by(OrganizationRow.name)
    )
    return {name: when for name, when in session.execute(stmt) if when is not None}


def last_runs(session: Session) -> dict[str, RunRecord]:
    """The latest run (by start time) of every organization that has one."""
    rank = (
        func.row_number()
        .over(
            partition_by=RunRow.organization_id,
            order_by=(RunRow.started_at.desc(), RunRow.id.desc()),
        )
        .label("rank")
    )
    ranked = select(RunRow.id.label("run_id"), rank).subquery()
    stmt = (
        select(OrganizationRow.name, RunRow)
        .join(RunRow, RunRow.organization_id == OrganizationRow.id)
        .join(ranked, ranked.c.run_id == RunRow.id)
        .where(ranked.c.rank == 1)
    )
    return {org: _run_record(run) for org, run in session.execute(stmt)}


def _run_record(run: RunRow) -> RunRecord:
    return RunRecord(
        run_id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=Outcome(run.outcome),
        full=run.full,
        counts=dict(run.counts or {}),
        entries_read=run.entries_read,
        error=run.error,
        warnings=tuple(run.warnings or ()),
        plan_digest=run.plan_digest,
        node=run.node,
    )


def run_history(
    session: Session, names: Sequence[str] | None, since: datetime | None
) -> list[RunRecord]:
    """Runs (of ``names``, or of every organization), oldest first, started at or after
    ``since``."""
    stmt = select(OrganizationRow.name, RunRow).join(
        RunRow, RunRow.organization_id == OrganizationRow.id
    )
    if names is not None:
        stmt = stmt.where(OrganizationRow.name.in_(list(names)))
    if since is not None:
        stmt = stmt.where(RunRow.started_at >= since)
    stmt = stmt.order_by(RunRow.started_at, RunRow.id)
    return [
        dataclasses.replace(_run_record(run), organization=org)
        for org, run in session.execute(stmt)
    ]


def organization_names(session: Session) -> list[str]:
    return list(session.scalars(select(OrganizationRow.name).order_by(OrganizationRow.name)))
