"""Writes one plan into the member and group tables, plus one event per plan entry
(``events.EventLog``).

Everything is a bulk statement on the Core table (an executemany; inserts go straight to the
driver as tuples, ``bulk.BulkInsert``): no ORM flush and no ORM bulk bookkeeping per row, so
100,000 invites take seconds. Every statement is limited to the organization's rows, so a stale or
foreign id in a plan can never touch another one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from dirsync.organization import MemberStatus, Role
from dirsync.plan import GroupUpdate, Invite, MemberUpdate, Plan
from dirsync.state.bulk import (
    REBUILD_AT,
    SLICE,
    BulkInsert,
    indexes_rebuilt_after,
    json_string,
    table_of,
)
from dirsync.state.events import EventLog
from dirsync.state.rows import chunked, plain_rows
from dirsync.state.schema import GroupMemberRow, GroupRow, MemberRow


def _update_by_id(
    session: Session, org_id: int, model: type[Any], rows: list[dict[str, Any]]
) -> None:
    """``UPDATE t SET <keys> WHERE id = :b_id AND organization_id = :org``, one executemany."""
    if rows:
        table = table_of(model)
        stmt = update(table).where(
            table.c.id == bindparam("b_id"), table.c.organization_id == org_id
        )
        session.execute(stmt, rows)


def apply_members(session: Session, org_id: int, plan: Plan, now: datetime, log: EventLog) -> None:
    # Removes go first and updates before invites: a member removed, or one whose address
    # changes, frees its email for an update or an invite of the same plan (a user deleted and
    # re-created in the directory). Updates keep the plan's order, in which chains of address
    # changes resolve. Events are still logged in the contract's order.
    for ids in chunked([r.member_id for r in plan.remove]):
        session.execute(
            delete(MemberRow).where(MemberRow.organization_id == org_id, MemberRow.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
    for links in (False, True):  # an executemany needs the same keys in every row
        rows = [_update_row(u, now) for u in plan.update if u.links is links]
        _update_by_id(session, org_id, MemberRow, rows)
    if plan.invite:
        invite = BulkInsert(
            session,
            table_of(MemberRow),
            ("email", "external_id", "name"),
            constants={
                "organization_id": org_id,
                "status": str(MemberStatus.INVITED),
                "role": str(Role.USER),
                "invited_at": now,
                "updated_at": now,
            },
        )
        # a first sync: the invitations' index is built once after the members, not row by row
        with indexes_rebuilt_after(session, table_of(MemberRow), len(plan.invite)):
            for invites in chunked(plan.invite, SLICE):
                invite.write([(i.email, i.external_id, i.name) for i in invites])
    revoked = str(MemberStatus.REVOKED)
    _update_by_id(
        session,
        org_id,
        MemberRow,
        [
            {
                "b_id": r.member_id,
                "status": revoked,
                "restore_status": str(r.previous_status),
                "revoked_reason": str(r.reason),
                "updated_at": now,
            }
            for r in plan.revoke
        ],
    )
    _update_by_id(
        session,
        org_id,
        MemberRow,
        [
            {
                "b_id": r.member_id,
                "status": str(r.to_status),
                "restore_status": None,
                "revoked_reason": None,
                "updated_at": now,
            }
            for r in plan.restore
        ],
    )
    _log_members(plan, log)


def _update_row(u: MemberUpdate, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"b_id": u.member_id, "email": u.email, "name": u.name, "updated_at": now}
    if u.links:
        row["external_id"] = u.external_id
    return row


def invite_after(i: Invite) -> str:
    """An invite event's "after", as ``encode_json`` writes the dict ``{"email", "external_id",
    "name", "status": "invited"}``: a first sync logs one per user, and filling in the
    escaped strings costs a fifth of encoding a dict (a property test compares the two)."""
    return (
        f'{{"email": {json_string(i.email)}, "external_id": {json_string(i.external_id)}, '
        f'"name": {json_string(i.name)}, "status": "invited"}}'
    )


def _log_members(plan: Plan, log: EventLog) -> None:
    for invites in chunked(plan.invite, SLICE):
        log.extend([("member.invite", i.email, None, invite_after(i)) for i in invites])
    for u in plan.update:
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if u.email != u.previous_email:
            before["email"], after["email"] = u.previous_email, u.email
        if u.name != u.previous_name:
            before["name"], after["name"] = u.previous_name, u.name
        if u.links:
            before["external_id"], after["external_id"] = u.previous_external_id, u.external_id
        log.add("member.update", u.email, before, after)
    for r in plan.revoke:
        after = {"status": "revoked", "reason": str(r.reason)}
        log.add("member.revoke", r.email, {"status": str(r.previous_status)}, after)
    for s in plan.restore:
        log.add("member.restore", s.email, {"status": "revoked"}, {"status": str(s.to_status)})
    for m in plan.remove:
        before = {"status": str(m.previous_status), "external_id": m.external_id}
        log.add("member.remove", m.email, before, None)


def apply_groups(session: Session, org_id: int, plan: Plan, log: EventLog) -> None:
    if not (plan.create_groups or plan.update_groups or plan.delete_groups):
        return
    members = _member_ids(session, org_id, _named_members(plan))
    if plan.create_groups:
        create = BulkInsert(
            session,
            table_of(GroupRow),
            ("external_id", "name"),
            constants={"organization_id": org_id},
        )
        create.write([(g.external_id, g.name) for g in plan.create_groups])
        stmt = select(GroupRow.external_id, GroupRow.id).where(GroupRow.organization_id == org_id)
        by_external_id = {ext: group_id for ext, group_id in session.execute(stmt) if ext}
        # one group's member ids at a time, in group id order (external ids are unique in an
        # organization: the groups' insert above enforces it)
        created = sorted(
            ((by_external_id[g.external_id], g) for g in plan.create_groups), key=itemgetter(0)
        )
        # a first sync: the member index is built once after the edges, not edge by edge
        adding = sum(len(g.member_external_ids) for g in plan.create_groups)
        with indexes_rebuilt_after(session, table_of(GroupMemberRow), adding, at=_REBUILD_AT):
            _insert_edges(
                session, ((gid, _resolve(g.member_external_ids, members)) for gid, g in created)
            )
    _update_groups(session, org_id, plan.update_groups, members)
    for ids in chunked([g.group_id for g in plan.delete_groups]):
        session.execute(
            delete(GroupRow).where(GroupRow.organization_id == org_id, GroupRow.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
    _log_groups(plan, log)


def _named_members(plan: Plan) -> set[str]:
    """The external ids the plan's group changes name."""
    named: set[str] = set()
    for create in plan.create_groups:
        named |= create.member_external_ids
    for change in plan.update_groups:
        named |= change.add_member_ids | change.remove_member_ids
    return named


#: at least this many new group edges, more than the table holds, rebuild its member index
#: afterwards (``bulk.indexes_rebuilt_after``)
_REBUILD_AT = REBUILD_AT

#: up to this many named members are looked up one chunk at a time; more (a first sync),
#: and reading every linked member at once is cheaper
_LOOKUP_LIMIT = 20_000


def _member_ids(session: Session, org_id: int, named: set[str]) -> dict[str, int]:
    """Linked members by external id, invites of this apply included: those ``named``, or
    all of them when that is cheaper (a delta run names a few of 100,000 members)."""
    linked = (MemberRow.organization_id == org_id, MemberRow.external_id.is_not(None))
    select_ids = select(MemberRow.external_id, MemberRow.id)
    if len(named) > _LOOKUP_LIMIT:
        return {ext: mid for ext, mid in plain_rows(session, select_ids.where(*linked))}
    found: dict[str, int] = {}
    for chunk in chunked(sorted(named)):
        query = select_ids.where(*linked, MemberRow.external_id.in_(chunk))
        found.update((ext, mid) for ext, mid in plain_rows(session, query))
    return found


def _resolve(external_ids: Iterable[str], members: dict[str, int]) -> set[int]:
    """Member row ids; an external id that is no member (e.g. not invited) is ignored."""
    return {members[e] for e in external_ids if e in members}


def _edge_rows(groups: Iterable[tuple[int, Collection[int]]]) -> Iterator[tuple[int, int]]:
    """(group, member) pairs of groups given in id order, each group's members sorted: the
    primary key's order, so that its b-tree grows at its end (~2x faster inserts), at far
    less cost than sorting all pairs as tuples (a first sync has ~150,000)."""
    for group_id, member_ids in groups:
        for member_id in sorted(member_ids):
            yield group_id, member_id


def _insert_edges(session: Session, groups: Iterable[tuple[int, Collection[int]]]) -> None:
    """Insert (group, member) rows, given each group's members in group id order, a slice at
    a time: a first sync's every edge at once, and every group's member set, were the
    apply's biggest transient (~15 MB at 100,000 users)."""
    pairs = _edge_rows(groups)
    insert: BulkInsert | None = None
    while rows := list(islice(pairs, SLICE)):
        if insert is None:
            insert = BulkInsert(session, table_of(GroupMemberRow), ("group_id", "member_id"))
        insert.write(rows)


def _by_group(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    groups: dict[int, set[int]] = defaultdict(set)
    for group_id, member_id in pairs:
        groups[group_id].add(member_id)
    return groups


def _update_groups(
    session: Session, org_id: int, updates: Sequence[GroupUpdate], members: dict[str, int]
) -> None:
    if not updates:
        return
    renames = [{"b_id": g.group_id, "name": g.name} for g in updates if g.name != g.previous_name]
    _update_by_id(session, org_id, GroupRow, renames)
    # edges are only ever written for the organization's own groups
    ours: set[int] = set()
    for ids in chunked(sorted({g.group_id for g in updates})):
        ours.update(
            session.scalars(
                select(GroupRow.id).where(GroupRow.organization_id == org_id, GroupRow.id.in_(ids))
            )
        )
    add: set[tuple[int, int]] = set()
    remove: set[tuple[int, int]] = set()
    for g in updates:
        if g.group_id in ours:
            add.update((g.group_id, m) for m in _resolve(g.add_member_ids, members))
            remove.update((g.group_id, m) for m in _resolve(g.remove_member_ids, members))
    existing = _existing_edges(session, add | remove)
    _insert_edges(session, sorted(_by_group(add - existing).items()))
    gone = remove & existing
    if gone:
        table = table_of(GroupMemberRow)
        unlink = delete(table).where(
            table.c.group_id == bindparam("b_group"), table.c.member_id == bindparam("b_member")
        )
        session.execute(unlink, [{"b_group": g, "b_member": m} for g, m in sorted(gone)])


#: up to this many groups updated, their edges are probed by the pairs the plan names (a push
#: adding a few members to a large group); more (a sync changing many groups), and each
#: group's edges are read whole, a chunk of groups per query
_PROBED_GROUPS = 100


def _existing_edges(session: Session, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of these (group, member) edges exist."""
    by_group = _by_group(pairs)
    existing: set[tuple[int, int]] = set()
    if len(by_group) > _PROBED_GROUPS:
        for ids in chunked(sorted(by_group)):
            stmt = select(GroupMemberRow.group_id, GroupMemberRow.member_id).where(
                GroupMemberRow.group_id.in_(ids)
            )
            existing.update((group, member) for group, member in session.execute(stmt))
        return existing & pairs
    for group_id, member_ids in sorted(by_group.items()):
        for chunk in chunked(sorted(member_ids)):
            probe = select(GroupMemberRow.member_id).where(
                GroupMemberRow.group_id == group_id, GroupMemberRow.member_id.in_(chunk)
            )
            existing.update((group_id, member) for member in session.scalars(probe))
    return existing


def _log_groups(plan: Plan, log: EventLog) -> None:
    for c in plan.create_groups:
        created = {
            "name": c.name,
            "external_id": c.external_id,
            "members": sorted(c.member_external_ids),
        }
        log.add("group.create", c.name, None, created)
    for u in plan.update_groups:
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if u.name != u.previous_name:
            before["name"], after["name"] = u.previous_name, u.name
        if u.add_member_ids:
            after["add_members"] = sorted(u.add_member_ids)
        if u.remove_member_ids:
            after["remove_members"] = sorted(u.remove_member_ids)
        log.add("group.update", u.name, before or None, after)
    for d in plan.delete_groups:
        log.add("group.delete", d.name, {"name": d.name, "external_id": d.external_id}, None)
