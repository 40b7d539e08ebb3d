"""The mirror of the directory as rows: loaded whole, written by difference.

A run usually changes a handful of the directory's entries, so ``write_mirror`` compares the
mirror before and after and touches only the rows that changed: deletes, inserts and updates
of users and groups, and inserts and deletes of single member edges, each one executemany.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Integer,
    bindparam,
    delete,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from dirsync.mapping.desired import normalize_email
from dirsync.model import DirectoryGroup, DirectoryUser, Mirror
from dirsync.state.bulk import REBUILD_AT, BulkInsert, indexes_rebuilt_after, table_of
from dirsync.state.rows import plain_rows
from dirsync.state.schema import MirrorGroupMemberRow, MirrorGroupRow, MirrorUserRow

if TYPE_CHECKING:
    from dirsync.state.rows import AnySelect

T = TypeVar("T")
#: rows built and inserted at a time
_SLICE = 20_000


def mirror_users_query(org_id: int) -> AnySelect:
    """Mirror users as plain driver tuples (see ``rows``), for ``directory_user``: the
    boolean read as an integer so that no column needs a result processor on SQLite."""
    return select(
        MirrorUserRow.external_id,
        MirrorUserRow.ref,
        MirrorUserRow.username,
        MirrorUserRow.email,
        MirrorUserRow.name,
        type_coerce(MirrorUserRow.disabled, Integer),
        MirrorUserRow.idp_id,
    ).where(MirrorUserRow.organization_id == org_id)


def directory_user(row: Sequence[Any]) -> DirectoryUser:
    """A row of ``mirror_users_query``."""
    external_id, ref, username, email, name, is_disabled, idp_id = row
    return DirectoryUser(
        external_id=external_id,
        ref=ref,
        username=username,
        email=email,
        name=name,
        disabled=bool(is_disabled),
        idp_id=idp_id,
    )


def mirror_groups_query(org_id: int) -> AnySelect:
    """Mirror groups without their members, for ``directory_group``."""
    return select(
        MirrorGroupRow.external_id, MirrorGroupRow.ref, MirrorGroupRow.name, MirrorGroupRow.idp_id
    ).where(MirrorGroupRow.organization_id == org_id)


def directory_group(row: Sequence[Any], member_refs: frozenset[str]) -> DirectoryGroup:
    """A row of ``mirror_groups_query`` with its members."""
    external_id, ref, name, idp_id = row
    return DirectoryGroup(
        external_id=external_id, ref=ref, name=name, member_refs=member_refs, idp_id=idp_id
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
        row[0]: directory_group(row, frozenset(refs[row[0]]))
        for row in plain_rows(session, mirror_groups_query(org_id))
    }
    return Mirror(users=users, groups=groups)


#: the mirror's columns besides (organization, external id), in the order ``_values`` gives
_USER_COLUMNS = (
    "ref",
    "username",
    "email",
    "name",
    "disabled",
    "email_key",
    "idp_id",
    "username_key",
)
_GROUP_COLUMNS = ("ref", "name", "idp_id", "name_key")


def name_key(name: str | None) -> str | None:
    """A user or group name as looked up in any case (``mirror_queries``)."""
    return name.lower() if name is not None else None


def _user_values(user: DirectoryUser) -> tuple[Any, ...]:
    email_key = normalize_email(user.email)
    return (
        user.ref,
        user.username,
        user.email,
        user.name,
        user.disabled,
        email_key,
        user.idp_id,
        name_key(user.username),
    )


def _group_values(group: DirectoryGroup) -> tuple[Any, ...]:
    return (group.ref, group.name, group.idp_id, name_key(group.name))


def _sync_rows(
    session: Session,
    org_id: int,
    model: type[Any],
    before: Mapping[str, T],
    after: Mapping[str, T],
    columns: tuple[str, ...],
    values: Callable[[T], tuple[Any, ...]],
) -> None:
    """Make the rows keyed by (organization, external id) go from ``before`` to ``after``.

    Entries a delta left alone are the very same objects in both: only the others are
    compared, and rows are built only for what is written, a slice at a time.
    """
    table = table_of(model)
    key = (table.c.organization_id == org_id, table.c.external_id == bindparam("b_key"))
    gone = [{"b_key": k} for k in sorted(before.keys() - after.keys())]
    if gone:
        session.execute(delete(table).where(*key), gone)
    new = sorted(after.keys() - before.keys())
    if new:
        insert = BulkInsert(
            session, table, ("external_id", *columns), constants={"organization_id": org_id}
        )
        for start in range(0, len(new), _SLICE):
            insert.write([(k, *values(after[k])) for k in new[start : start + _SLICE]])
    changed = []
    # kept entries that are not the very same object (none in a first sync, a few in a delta)
    kept = [k for k in after.keys() & before.keys() if after[k] is not before[k]]
    for k in sorted(kept):
        item, old = after[k], before[k]
        row = values(item)
        if values(old) != row:
            changed.append({"b_key": k, **dict(zip(columns, row, strict=True))})
    if changed:
        session.execute(update(table).where(*key), changed)


def _edges(before: Mirror, after: Mirror) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The member edges to delete and to insert, (group, member ref), in key order.

    Only groups whose members changed are compared. Each list is sorted by group, then by
    member ref within the group: the primary key's order, so the index grows at its end
    (inserts ~2x faster), at a fraction of the cost of sorting all pairs as tuples.
    """
    gone: list[tuple[str, str]] = []
    added: list[tuple[str, str]] = []
    for group_id in sorted(before.groups.keys() | after.groups.keys()):
        was, now = before.groups.get(group_id), after.groups.get(group_id)
        if was is now or (was and now and was.member_refs == now.member_refs):
            continue
        old = was.member_refs if was is not None else frozenset()
        new = now.member_refs if now is not None else frozenset()
        gone.extend((group_id, ref) for ref in sorted(old - new))
        added.extend((group_id, ref) for ref in sorted(new - old))
    return gone, added


#: at least this many new mirror users, more than the table holds, rebuild its lookup
#: indexes after inserting rather than maintaining them row by row
_REBUILD_AT = REBUILD_AT


def write_mirror(session: Session, org_id: int, before: Mirror, after: Mirror) -> None:
    adding = len(after.users) - len(before.users)
    with indexes_rebuilt_after(session, table_of(MirrorUserRow), adding, at=_REBUILD_AT):
        _sync_rows(
            session, org_id, MirrorUserRow, before.users, after.users, _USER_COLUMNS, _user_values
        )
    _sync_rows(
        session, org_id, MirrorGroupRow, before.groups, after.groups, _GROUP_COLUMNS, _group_values
    )
    gone, added = _edges(before, after)
    table = table_of(MirrorGroupMemberRow)
    if gone:
        stmt = delete(table).where(
            table.c.organization_id == org_id,
            table.c.group_external_id == bindparam("b_group"),
            table.c.member_ref == bindparam("b_ref"),
        )
        session.execute(stmt, [{"b_group": g, "b_ref": r} for g, r in gone])
    if added:
        insert = BulkInsert(
            session,
            table,
            ("group_external_id", "member_ref"),
            constants={"organization_id": org_id},
        )
        insert.write(added)
