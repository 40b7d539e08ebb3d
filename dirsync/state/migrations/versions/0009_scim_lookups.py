"""What a SCIM endpoint looks mirror entries up by, without reading a whole organization.

Revision ID: 0009_scim_lookups
Revises: 0008_invitation_index
Create Date: 2026-12-05

- ``mirror_users.idp_id`` and ``mirror_groups.idp_id``: the identity provider's id of a pushed
  user or group (SCIM ``externalId``), each with an index of the rows that have one (for
  ``filter=externalId eq``; directories' rows have none). Nullable: entries pushed before this
  revision have none until the identity provider sends one again.
- ``mirror_users.username_key`` and ``mirror_groups.name_key``: the name in lower case, filled
  here for existing rows, each with an index: ``filter=userName eq`` (sent before every
  create) and ``filter=displayName eq`` are case-insensitive, and without them each was a scan
  of the organization's mirror.

- ``mirror_group_members`` by (organization, member ref): the groups naming an entry, which
  every delta and push looks up, were a scan of all the organization's edges;
- ``runs`` by (organization, outcome): the running runs each run closes first were a scan of
  the organization's runs, and each push is a run.

Idempotent: a column or index already there (a store upgraded by hand, or an upgrade that was
interrupted on a database without transactional DDL) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009_scim_lookups"
down_revision: str | None = "0008_invitation_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUSHED_ONLY: dict[str, Any] = {
    "sqlite_where": sa.text("idp_id IS NOT NULL"),
    "postgresql_where": sa.text("idp_id IS NOT NULL"),
}
#: table -> (its index on (organization_id, idp_id), the name column, its key, that key's index)
_TABLES = {
    "mirror_users": (
        "ix_mirror_users_org_idp_id",
        "username",
        "username_key",
        "ix_mirror_users_org_username_key",
    ),
    "mirror_groups": (
        "ix_mirror_groups_org_idp_id",
        "name",
        "name_key",
        "ix_mirror_groups_org_name_key",
    ),
}


def _key(name: str | None) -> str | None:
    # a copy of state.mirror_rows.name_key as of this revision: a migration must not change
    # meaning when the code it would import changes later
    return name.lower() if name is not None else None


def _fill(table: str, name: str, key: str) -> None:
    rows = sa.table(
        table,
        sa.column("organization_id", sa.Integer()),
        sa.column("external_id", sa.String()),
        sa.column(name, sa.String()),
        sa.column(key, sa.String()),
    )
    bind = op.get_bind()
    found = bind.execute(
        sa.select(rows.c.organization_id, rows.c.external_id, rows.c[name]).where(
            rows.c[name].is_not(None), rows.c[key].is_(None)
        )
    )
    keys = [{"b_org": org, "b_id": eid, key: _key(value)} for org, eid, value in found]
    if keys:
        bind.execute(
            rows.update()
            .where(
                rows.c.organization_id == sa.bindparam("b_org"),
                rows.c.external_id == sa.bindparam("b_id"),
            )
            .values({key: sa.bindparam(key)}),
            keys,
        )


def upgrade() -> None:
    for table, (by_id, name, key, by_key) in _TABLES.items():
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
        added = [
            sa.Column(column, sa.String(length), nullable=True)
            for column, length in (("idp_id", 255), (key, 512))
            if column not in columns
        ]
        if added:
            with op.batch_alter_table(table) as batch:
                for column in added:
                    batch.add_column(column)
        _fill(table, name, key)
        indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}
        if by_id not in indexes:
            op.create_index(by_id, table, ["organization_id", "idp_id"], **_PUSHED_ONLY)
        if by_key not in indexes:
            op.create_index(by_key, table, ["organization_id", key])
    _more_indexes()


#: more indexes: (table, name, columns)
_INDEXES = (
    (
        "mirror_group_members",
        "ix_mirror_group_members_org_member_ref",
        ["organization_id", "member_ref"],
    ),
    ("runs", "ix_runs_org_outcome", ["organization_id", "outcome"]),
)


def _more_indexes() -> None:
    for table, name, columns in _INDEXES:
        if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for table, name, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    for table, (by_id, _, key, by_key) in _TABLES.items():
        op.drop_index(by_key, table_name=table)
        op.drop_index(by_id, table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column(key)
            batch.drop_column("idp_id")
