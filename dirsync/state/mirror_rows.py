"""The mirror of the directory as rows: loaded whole, written by difference.

A run usually changes a handful of the directory's entries, so ``write_mirror`` compares the
mirror before and after and touches only the rows that changed: deletes, inserts and updates
of users and groups, and inserts and deletes of single member edges, each one executemany.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from dirsync.model import DirectoryGroup, DirectoryUser, Mirror
from dirsync.state.bulk import insert_rows
from dirsync.state.schema import MirrorGroupMemberRow, MirrorGroupRow, MirrorUserRow


def load_mirror(session: Session, org_id: int) -> Mirror:
    users = {
        external_id: DirectoryUser(
            external_id=external_id,
            ref=ref,
            username=username,
            email=email,
            name=name,
            disabled=bool(disabled),
        )
        for external_id, ref, username, email, name, disabled in session.execute(
            select(
                MirrorUserRow.external_id,
                MirrorUserRow.ref,
                MirrorUserRow.username,
                MirrorUserRow.email,
                MirrorUserRow.name,
                MirrorUserRow.disabled,
            ).where(MirrorUserRow.organization_id == org_id)
        ).tuples()
    }
    refs: defaultdict[str, set[str]] = defaultdict(set)
    edges = select(MirrorGroupMemberRow.group_external_id, MirrorGroupMemberRow.member_ref).where(
        MirrorGroupMemberRow.organization_id == org_id
    )
    for group_external_id, member_ref in session.execute(edges):
        refs[group_external_id].add(member_ref)
    groups = {
        external_id: DirectoryGroup(
            external_id=external_id, ref=ref, name=name, member_refs=frozenset(refs[external_id])
        )
        for external_id, ref, name in session.execute(
            select(MirrorGroupRow.external_id, MirrorGroupRow.ref, MirrorGroupRow.name).where(
                MirrorGroupRow.organization_id == org_id
            )
        )
    }
    return Mirror(users=users, groups=groups)


def _user_values(user: DirectoryUser) -> dict[str, Any]:
    return {
        "ref": user.ref,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "disabled": user.disabled,
    }


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _sync_rows(
    session: Session,
    org_id: int,
    model: type[Any],
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
) -> None:
    """Make the rows keyed by (organization, external id) go from ``before`` to ``after``."""
    table = _table(model)
    key = (table.c.organization_id == org_id, table.c.external_id == bindparam("b_key"))
    gone = [{"b_key": k} for k in sorted(before.keys() - after.keys())]
    if gone:
        session.execute(delete(table).where(*key), gone)
    new = [
        {"organization_id": org_id, "external_id": k, **after[k]}
        for k in sorted(after.keys() - before.keys())
    ]
    insert_rows(session, table, new)
    changed = [
        {"b_key": k, **values}
        for k, values in sorted(after.items())
        if k in before and before[k] != values
    ]
    if changed:
        session.execute(update(table).where(*key), changed)


def write_mirror(session: Session, org_id: int, before: Mirror, after: Mirror) -> None:
    _sync_rows(
        session,
        org_id,
        MirrorUserRow,
        {k: _user_values(u) for k, u in before.users.items()},
        {k: _user_values(u) for k, u in after.users.items()},
    )
    _sync_rows(
        session,
        org_id,
        MirrorGroupRow,
        {k: {"ref": g.ref, "name": g.name} for k, g in before.groups.items()},
        {k: {"ref": g.ref, "name": g.name} for k, g in after.groups.items()},
    )
    old = {(g.external_id, r) for g in before.groups.values() for r in g.member_refs}
    new = {(g.external_id, r) for g in after.groups.values() for r in g.member_refs}
    table = _table(MirrorGroupMemberRow)
    gone = [{"b_group": g, "b_ref": r} for g, r in sorted(old - new)]
    if gone:
        stmt = delete(table).where(
            table.c.organization_id == org_id,
            table.c.group_external_id == bindparam("b_group"),
            table.c.member_ref == bindparam("b_ref"),
        )
        session.execute(stmt, gone)
    added = [
        {"organization_id": org_id, "group_external_id": g, "member_ref": r}
        for g, r in sorted(new - old)
    ]
    insert_rows(session, table, added)
