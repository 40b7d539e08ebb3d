"""One schedule per organization in the store: ``schedules``, shared by every node.

Revision ID: 0007_schedules
Revises: 0006_store_writers
Create Date: 2026-12-05

Several nodes on one PostgreSQL claim an organization's run here (``state/schedules.py``), so
that it runs once per interval whichever node runs it. Empty after the upgrade: an
organization gets its row at its first claim.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_schedules"
down_revision: str | None = "0006_store_writers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=512), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_full", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_schedules_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_schedules")),
    )


def downgrade() -> None:
    op.drop_table("schedules")
