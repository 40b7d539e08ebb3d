"""Edge tables without rowid on SQLite: one b-tree per table instead of two.

Revision ID: 0004_edges_without_rowid
Revises: 0003_scope_indexes
Create Date: 2026-11-25

``mirror_group_members`` and ``group_members`` hold nothing but their primary key. As rowid
tables, SQLite keeps every row twice: in the table (by rowid) and in the primary key's index.
A ``WITHOUT ROWID`` table is its primary key's b-tree, so each edge is written once (a first
sync of 100,000 users writes ~290,000 edges). SQLite cannot alter this: each table is rebuilt
(copied into a new table, the old one dropped, the new one renamed, its index created again),
inside the migration's transaction, rows kept. Other databases have no rowid: nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_edges_without_rowid"
down_revision: str | None = "0003_scope_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("group_members", "mirror_group_members")


def _rebuild(*, with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # recreate="always": batch mode copies the table into one created with these
        # options, constraints, indexes and rows kept, in the migration's transaction
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
        ):
            pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
