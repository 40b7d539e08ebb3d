"""The counts the guards take, kept on the organization: a push does not count it each time.

Revision ID: 0011_organization_counts
Revises: 0010_mirror_group_refs
Create Date: 2026-12-05

``organizations.member_count``, ``seated_count``, ``mirror_user_count`` and
``mirror_group_count`` as of ``counted_version`` (``state.counts``). Every run counted them
(a ``COUNT`` off an index of the organization's rows: ~4 ms each at 100,000 members); a run
now takes them from here when ``counted_version`` is the organization's version, and its apply
brings them up to date. Empty here (NULL): the next run of each organization counts once.
Idempotent: a column already there is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_organization_counts"
down_revision: str | None = "0010_mirror_group_refs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "counted_version",
    "member_count",
    "seated_count",
    "mirror_user_count",
    "mirror_group_count",
)


def _present() -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns("organizations")}


def upgrade() -> None:
    present = _present()
    for name in COLUMNS:
        if name not in present:
            op.add_column("organizations", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    present = _present()
    with op.batch_alter_table("organizations") as batch:
        for name in reversed(COLUMNS):
            if name in present:
                batch.drop_column(name)
