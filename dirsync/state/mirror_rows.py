"""The mirror of the directory as rows: loaded whole, written by difference.

A run usually changes a handful of the directory's entries, so ``write_mirror`` compares the
mirror before and after and touches only the rows that changed: deletes, inserts and updates
of users and groups, and inserts and deletes of single member edges, each one executemany.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, Table, bindparam, delete, select, type_coerce, update
from sqlalchemy.orm import Session

from dirsync.mapping.desired import normalize_email
from dirsync.model import DirectoryGroup, DirectoryUser, Mirror
from dirsync.state.bulk import insert_rows
from dirsync.state.rows import plain_rows
from dirsync.state.schema import MirrorGroupMemberRow, MirrorGroupRow, MirrorUserRow

T = TypeVar("T")
#: rows built and inserted at a time
_SLICE = 20_000


def mirror_users_query(org_id: int) -> Select[Any]:
    """Mirror users as plain driver tuples (see ``rows``), for ``directory_user``: the
    boolean read as an integer so that no column needs a result processor on SQLite."""
    return select(
        MirrorUserRow.external_id,
        MirrorUserRow.ref,
        MirrorUserRow.username,
        MirrorUserRow.email,
        MirrorUserRow.name,
        type_coerce(MirrorUserRow.disabled, Integer),
    ).where(MirrorUserRow.organization_id == org_id)


def directory_user(row: Sequence[Any]) -> DirectoryUser:
    """A row of ``mirror_users_query``."""
    external_id, ref, username, email, name, is_disabled = row
    return DirectoryUser(
        external_id=external_id,
        ref=ref,
        username=username,
        email=email,
        name=name,
        disabled=bool(is_disabled),
    )


def load_mirror(session: Session, org_id: int) -> Mirror:
    users = {row[0]: directory_user(row) for row in plain_rows(session, mirror_users_query(org_id))}
    refs: defaultdict[str, list[str]] = defaultdict(list)
    edges = select(MirrorGroupMemberRow.group_external_id, MirrorGroupMemberRow.member_ref).where(
        MirrorGroupMemberRow.organization_id == org_id
    )
    # a member ref is most often a user's ref: share that string object (~15 MB at 100k)
    known = {user.ref: user.ref for user in users.values()}
    for group_external_id, member_ref in plain_rows(session, edges):
        refs[group_external_id].append(known.get(member_ref, member_ref))
    del known
    groups = {
        external_id: DirectoryGroup(
            external_id=external_id, ref=ref, name=name, member_refs=frozenset(refs[external_id])
        )
        for external_id, ref, name in plain_rows(
            session,
            select(MirrorGroupRow.external_id, MirrorGroupRow.ref, MirrorGroupRow.name).where(
                MirrorGroupRow.organization_id == org_id
            ),
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
        "email_key": normalize_email(user.email),
    }


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _sync_rows(
    session: Session,
    org_id: int,
    model: type[Any],
    before: Mapping[str, T],
    after: Mapping[str, T],
    values: Callable[[T], dict[str, Any]],
) -> None:
    """Make the rows keyed by (organization, external id) go from ``before`` to ``after``.

    Entries a delta left alone are the very same objects in both: only the others are
    compared, and row dicts are built only for what is written, a slice at a time.
    """
    table = _table(model)
    key = (table.c.organization_id == org_id, table.c.external_id == bindparam("b_key"))
    gone = [{"b_key": k} for k in sorted(before.keys() - after.keys())]
    if gone:
        session.execute(delete(table).where(*key), gone)
    new = sorted(after.keys() - before.keys())
    for start in range(0, len(new), _SLICE):
        rows = [
            {"organization_id": org_id, "external_id": k, **values(after[k])}
            for k in new[start : start + _SLICE]
        ]
        insert_rows(session, table, rows)
    changed = []
    for k, item in sorted(after.items()):
        old = before.get(k)
        if old is None or old is item:
            continue
        row = values(item)
        if values(old) != row:
            changed.append({"b_key": k, **row})
    if changed:
        session.execute(update(table).where(*key), changed)


def _edges(before: Mirror, after: Mirror) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The member edges of the groups whose members changed: (before, after)."""
    old: set[tuple[str, str]] = set()
    new: set[tuple[str, str]] = set()
    for group_id in before.groups.keys() | after.groups.keys():
        was, now = before.groups.get(group_id), after.groups.get(group_id)
        if was is now or (was and now and was.member_refs == now.member_refs):
            continue
        if was is not None:
            old.update((group_id, r) for r in was.member_refs)
        if now is not None:
            new.update((group_id, r) for r in now.member_refs)
    return old, new


def write_mirror(session: Session, org_id: int, before: Mirror, after: Mirror) -> None:
    _sync_rows(session, org_id, MirrorUserRow, before.users, after.users, _user_values)
    _sync_rows(
        session,
        org_id,
        MirrorGroupRow,
        before.groups,
        after.groups,
        lambda g: {"ref": g.ref, "name": g.name},
    )
    old, new = _edges(before, after)
    table = _table(MirrorGroupMemberRow)
    gone = [{"b_group": g, "b_ref": r} for g, r in sorted(old - new)]
    if gone:
        stmt = delete(table).where(
            table.c.organization_id == org_id,
            table.c.group_external_id == bindparam("b_group"),
            table.c.member_ref == bindparam("b_ref"),
        )
        session.execute(stmt, gone)
    added = sorted(new - old)
    for start in range(0, len(added), _SLICE):
        rows = [
            {"organization_id": org_id, "group_external_id": g, "member_ref": r}
            for g, r in added[start : start + _SLICE]
        ]
        insert_rows(session, table, rows)
