"""What an organization holds of some external ids, asked before a delta is planned.

A delta read names entries changed anywhere below the naming context it reads (an MSP's
client organizations share one): ``known_ids`` tells which deletions concern the
organization (its mirror or its own members and groups hold the id), and ``held_refs`` which
changed entries its mirror holds already, and under which ref (a delta read's ``held``). Both
are asked of every organization of a cycle, so their statements are built once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import BindParameter, CompoundSelect, Integer, bindparam, select, union_all
from sqlalchemy.orm import Session

from dirsync.state.rows import CHUNK, chunked, plain_rows
from dirsync.state.schema import GroupRow, MemberRow, MirrorGroupRow, MirrorUserRow, OrganizationRow

#: up to this many ids are looked up one by one; more (a change list of a whole server, most
#: of it other organizations'), and reading the organization's own ids is cheaper
_PROBED_UP_TO = 100

#: the ids an organization's mirror or its own rows hold, users and groups, each read off the
#: (organization, id) indexes in one statement built once (the cycle of an MSP asks this of
#: every organization, with the same few hundred ids)
_ORG: BindParameter[int] = bindparam("org_id", type_=Integer)
_HELD_USERS: CompoundSelect[str] = union_all(
    select(MirrorUserRow.external_id).where(MirrorUserRow.organization_id == _ORG),
    select(MemberRow.external_id).where(MemberRow.organization_id == _ORG),
)
_HELD_GROUPS: CompoundSelect[str] = union_all(
    select(MirrorGroupRow.external_id).where(MirrorGroupRow.organization_id == _ORG),
    select(GroupRow.external_id).where(GroupRow.organization_id == _ORG),
)


def known_ids(
    session: Session, name: str, user_ids: Collection[str], group_ids: Collection[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """Which of these user and group ids the organization's mirror or its own members and
    groups hold (each an indexed look-up of the ids)."""
    org_id = session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))
    if org_id is None:
        return frozenset(), frozenset()

    def held(
        every: CompoundSelect[str],
        columns: Sequence[tuple[Any, Any]],
        ids: Collection[str],
    ) -> frozenset[str]:
        if len(ids) > _PROBED_UP_TO:  # the organization's ids, read off the indexes
            rows = session.connection().execute(every, {"org_id": org_id})
            return frozenset(ids).intersection([external_id for (external_id,) in rows])
        found: set[str] = set()
        for org_column, id_column in columns:
            for chunk in chunked(sorted(ids)):
                query = select(id_column).where(org_column == org_id, id_column.in_(chunk))
                found.update(external_id for (external_id,) in plain_rows(session, query))
        return frozenset(found)

    users = held(
        _HELD_USERS,
        [
            (MirrorUserRow.organization_id, MirrorUserRow.external_id),
            (MemberRow.organization_id, MemberRow.external_id),
        ],
        user_ids,
    )
    groups = held(
        _HELD_GROUPS,
        [
            (MirrorGroupRow.organization_id, MirrorGroupRow.external_id),
            (GroupRow.organization_id, GroupRow.external_id),
        ],
        group_ids,
    )
    return users, groups


#: the mirror's users and groups with some ids, and their refs: one statement built once (a
#: delta read asks it of every organization with changes)
_HELD_REFS: CompoundSelect[str, str] = union_all(
    *(
        select(table.external_id, table.ref)
        .join(OrganizationRow, OrganizationRow.id == table.organization_id)
        .where(
            OrganizationRow.name == bindparam("organization"),
            table.external_id.in_(bindparam("ids", expanding=True)),
        )
        for table in (MirrorUserRow, MirrorGroupRow)
    )
)


def held_refs(session: Session, organization: str, ids: Collection[str]) -> dict[str, str]:
    """The refs of the mirror's users and groups with these external ids: id → ref (an id
    the mirror does not hold is absent); indexed look-ups of the ids."""
    found: dict[str, str] = {}
    for chunk in chunked(sorted(ids), CHUNK // 2):  # the ids are bound twice
        rows = session.connection().execute(
            _HELD_REFS, {"organization": organization, "ids": list(chunk)}
        )
        found.update((external_id, ref) for external_id, ref in rows)
    return found
