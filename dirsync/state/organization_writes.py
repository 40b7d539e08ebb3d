"""Writes the organization side of a plan: collections, their group access, re-invitations.

Runs inside the apply's transaction, after the groups (access names groups by external id,
and a group created in the same plan has its row only then). Every statement is limited to
the organization's own rows, and only collections the config created (``managed``) change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from dirsync.plan import CollectionCreate, CollectionUpdate, GroupAccess, Plan
from dirsync.state.bulk import table_of
from dirsync.state.events import EventLog
from dirsync.state.rows import chunked
from dirsync.state.schema import CollectionAccessRow, CollectionRow, GroupRow, MemberRow


def apply_organization_side(
    session: Session, org_id: int, plan: Plan, now: datetime, log: EventLog
) -> None:
    _reinvite(session, org_id, plan, now, log)
    if plan.create_collections or plan.update_collections:
        stmt = select(GroupRow.external_id, GroupRow.id).where(
            GroupRow.organization_id == org_id, GroupRow.external_id.is_not(None)
        )
        groups = {external_id: group_id for external_id, group_id in session.execute(stmt)}
        _create(session, org_id, plan.create_collections, groups, now, log)
        _update(session, org_id, plan.update_collections, groups, log)


def _reinvite(session: Session, org_id: int, plan: Plan, now: datetime, log: EventLog) -> None:
    if not plan.reinvite:
        return
    table = table_of(MemberRow)
    stmt = update(table).where(table.c.id == bindparam("b_id"), table.c.organization_id == org_id)
    rows = [{"b_id": r.member_id, "last_invited_at": now, "updated_at": now} for r in plan.reinvite]
    session.execute(stmt, rows)
    for r in plan.reinvite:
        before = {"invited_at": _iso(r.invited_at)}
        log.add("member.reinvite", r.email, before, {"invited_at": _iso(now)})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _access_rows(
    collection_id: int, access: Iterable[GroupAccess], groups: dict[str | None, int]
) -> list[dict[str, Any]]:
    """Rows for the groups that exist; access to a group without a row is dropped."""
    return [
        {
            "collection_id": collection_id,
            "group_id": groups[a.group_external_id],
            "permission": str(a.permission),
        }
        for a in access
        if a.group_external_id in groups
    ]


def _access_json(access: Iterable[GroupAccess]) -> list[dict[str, str]]:
    return [
        {"group": a.group_name, "permission": str(a.permission)}
        for a in sorted(access, key=lambda a: (a.group_name, a.group_external_id))
    ]


def _create(
    session: Session,
    org_id: int,
    creates: tuple[CollectionCreate, ...],
    groups: dict[str | None, int],
    now: datetime,
    log: EventLog,
) -> None:
    if not creates:
        return
    session.execute(
        insert(table_of(CollectionRow)),
        [
            {
                "organization_id": org_id,
                "external_id": c.external_id,
                "name": c.name,
                "managed": True,
                "created_at": now,
            }
            for c in creates
        ],
    )
    stmt = select(CollectionRow.external_id, CollectionRow.id).where(
        CollectionRow.organization_id == org_id
    )
    ids = {external_id: collection_id for external_id, collection_id in session.execute(stmt)}
    rows = [row for c in creates for row in _access_rows(ids[c.external_id], c.access, groups)]
    if rows:
        session.execute(insert(table_of(CollectionAccessRow)), rows)
    for c in creates:
        after = {"name": c.name, "external_id": c.external_id, "access": _access_json(c.access)}
        log.add("collection.create", c.name, None, after)


def _update(
    session: Session,
    org_id: int,
    updates: tuple[CollectionUpdate, ...],
    groups: dict[str | None, int],
    log: EventLog,
) -> None:
    if not updates:
        return
    ours = set(
        session.scalars(
            select(CollectionRow.id).where(
                CollectionRow.organization_id == org_id, CollectionRow.managed.is_(True)
            )
        )
    )  # a stale or foreign id in a plan never touches another organization's collection
    changes = [u for u in updates if u.collection_id in ours]
    renames = [
        {"b_id": u.collection_id, "name": u.name} for u in changes if u.name != u.previous_name
    ]
    if renames:
        table = table_of(CollectionRow)
        session.execute(update(table).where(table.c.id == bindparam("b_id")), renames)
    for ids in chunked([u.collection_id for u in changes]):
        session.execute(
            delete(CollectionAccessRow).where(CollectionAccessRow.collection_id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
    rows = [row for u in changes for row in _access_rows(u.collection_id, u.access, groups)]
    if rows:
        session.execute(insert(table_of(CollectionAccessRow)), rows)
    for u in changes:
        before: dict[str, Any] = {"access": _access_json(u.previous_access)}
        after: dict[str, Any] = {"access": _access_json(u.access)}
        if u.name != u.previous_name:
            before["name"], after["name"] = u.previous_name, u.name
        log.add("collection.update", u.name, before, after)
