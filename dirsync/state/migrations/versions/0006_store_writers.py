"""Which dirsync wrote the store: one row per schema revision, the version that brought it there.

Revision ID: 0006_store_writers
Revises: 0005_run_nodes
Create Date: 2026-12-05

A dirsync older than the store finds a revision it has no migration for. Alembic would only
say "Can't locate revision"; with ``store_writers`` the older dirsync names the version the
store was written by. ``engine.upgrade`` writes the row after every migration (and when it
creates a fresh store), so the table is filled from the first upgrade on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_store_writers"
down_revision: str | None = "0005_run_nodes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_writers",
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=512), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_store_writers")),
    )


def downgrade() -> None:
    op.drop_table("store_writers")
