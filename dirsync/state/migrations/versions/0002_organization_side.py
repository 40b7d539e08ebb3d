"""The organization side: collections, their group access, and re-sent invitations.

Revision ID: 0002_organization_side
Revises: 0001
Create Date: 2026-11-25

Adds ``collections`` (created from ``[[organization.collection]]``; ``managed`` marks them),
``collection_access`` (group → collection with a permission; both sides cascade) and
``members.last_invited_at`` (when ``reinvite_after`` last sent the invitation again).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_organization_side"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey(
                "organizations.id",
                name=op.f("fk_collections_organization_id_organizations"),
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint(
            "organization_id", "external_id", name="uq_collections_org_external_id"
        ),
    )
    op.create_table(
        "collection_access",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_access_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_collection_access_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "group_id", name=op.f("pk_collection_access")),
    )
    op.create_index("ix_collection_access_group_id", "collection_access", ["group_id"])
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("last_invited_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("last_invited_at")
    op.drop_index("ix_collection_access_group_id", table_name="collection_access")
    op.drop_table("collection_access")
    op.drop_table("collections")
