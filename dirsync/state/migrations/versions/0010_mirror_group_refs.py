"""An index on mirror groups by ref: a push finds the groups a ref names without a scan.

Revision ID: 0010_mirror_group_refs
Revises: 0009_scim_lookups
Create Date: 2026-12-05

Planning by difference (``mapping.scope``) looks stored groups up by the refs a delta reaches
(a member ref that names a nested group), as it looks users up by ref; it used to read every
group of the organization on each delta and push instead. The SCIM endpoint's ``$ref`` of a
group's members (``mirror_kinds``) is the same look-up. Created only if missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_mirror_group_refs"
down_revision: str | None = "0009_scim_lookups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_mirror_groups_org_ref"


def _present() -> bool:
    indexes = sa.inspect(op.get_bind()).get_indexes("mirror_groups")
    return any(index["name"] == NAME for index in indexes)


def upgrade() -> None:
    if not _present():
        op.create_index(NAME, "mirror_groups", ["organization_id", "ref"])


def downgrade() -> None:
    if _present():
        op.drop_index(NAME, table_name="mirror_groups")
