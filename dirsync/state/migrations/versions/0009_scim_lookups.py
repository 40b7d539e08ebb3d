"""The identity provider's id of a pushed user or group: ``mirror_users.idp_id`` and
``mirror_groups.idp_id``, each with an index for SCIM's ``filter=externalId eq "..."`` (of the
rows that have one: directories' rows have none).

Revision ID: 0009_scim_lookups
Revises: 0008_invitation_index
Create Date: 2026-12-05

Nullable: directories have no such id, and entries pushed before this revision have none
until the identity provider sends one again. Idempotent: a column or index that is already
there (a store upgraded by hand, or an upgrade that was interrupted on a database without
transactional DDL) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_scim_lookups"
down_revision: str | None = "0008_invitation_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> its index on (organization_id, idp_id)
_TABLES = {
    "mirror_users": "ix_mirror_users_org_idp_id",
    "mirror_groups": "ix_mirror_groups_org_idp_id",
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, index in _TABLES.items():
        if "idp_id" not in {c["name"] for c in inspector.get_columns(table)}:
            with op.batch_alter_table(table) as batch:
                batch.add_column(sa.Column("idp_id", sa.String(255), nullable=True))
        if index not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(
                index,
                table,
                ["organization_id", "idp_id"],
                sqlite_where=sa.text("idp_id IS NOT NULL"),
                postgresql_where=sa.text("idp_id IS NOT NULL"),
            )


def downgrade() -> None:
    for table, index in _TABLES.items():
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("idp_id")
