"""An index on pending invitations by age: re-invitations due are found without a scan.

Revision ID: 0008_invitation_index
Revises: 0007_schedules
Create Date: 2026-12-05

With ``reinvite_after`` a run that finds no change asks whether any invitation has come due
(``SqlStore.reinvites_due``); the index makes that a range look-up of one organization's
invited members. Created only if missing (a store an earlier build of this revision touched
may have it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_invitation_index"
down_revision: str | None = "0007_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_members_org_status_invited_at"


def _present() -> bool:
    indexes = sa.inspect(op.get_bind()).get_indexes("members")
    return any(index["name"] == NAME for index in indexes)


def upgrade() -> None:
    if not _present():
        op.create_index(NAME, "members", ["organization_id", "status", "invited_at"])


def downgrade() -> None:
    if _present():
        op.drop_index(NAME, table_name="members")
