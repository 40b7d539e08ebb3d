"""Which node ran each run: ``runs.node``, for a store shared by several hosts.

Revision ID: 0005_run_nodes
Revises: 0004_edges_without_rowid
Create Date: 2026-12-05

Nullable: runs recorded before this revision have no node.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_run_nodes"
down_revision: str | None = "0004_edges_without_rowid"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("node", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("node")
