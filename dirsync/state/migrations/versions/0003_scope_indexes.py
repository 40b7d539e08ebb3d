"""Indexes for planning by difference: mirror users by ref and by normalized address.

Revision ID: 0003_scope_indexes
Revises: 0002_organization_side
Create Date: 2026-11-25

A delta run looks up the directory users a change reaches by ref (a group's member) and by
address (``mapping.scope``): ``mirror_users.email_key`` holds the address as the planner
normalizes it (``normalize_email``, which SQL's ``lower`` cannot reproduce for every
script), filled here for existing rows, and both lookups get an index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_scope_indexes"
down_revision: str | None = "0002_organization_side"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _normalize(raw: str | None) -> str | None:
    # a copy of mapping.desired.normalize_email as of this revision: a migration must not
    # change meaning when the code it would import changes later
    if raw is None:
        return None
    return raw.strip().lower() or None


def upgrade() -> None:
    with op.batch_alter_table("mirror_users") as batch:
        batch.add_column(sa.Column("email_key", sa.String(320), nullable=True))
    users = sa.table(
        "mirror_users",
        sa.column("organization_id", sa.Integer()),
        sa.column("external_id", sa.String()),
        sa.column("email", sa.String()),
        sa.column("email_key", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.organization_id, users.c.external_id, users.c.email))
    keys = [
        {"b_org": org, "b_id": uid, "email_key": _normalize(email)}
        for org, uid, email in rows
        if email is not None
    ]
    if keys:
        bind.execute(
            users.update()
            .where(
                users.c.organization_id == sa.bindparam("b_org"),
                users.c.external_id == sa.bindparam("b_id"),
            )
            .values(email_key=sa.bindparam("email_key")),
            keys,
        )
    op.create_index("ix_mirror_users_org_ref", "mirror_users", ["organization_id", "ref"])
    op.create_index(
        "ix_mirror_users_org_email_key", "mirror_users", ["organization_id", "email_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_mirror_users_org_email_key", table_name="mirror_users")
    op.drop_index("ix_mirror_users_org_ref", table_name="mirror_users")
    with op.batch_alter_table("mirror_users") as batch:
        batch.drop_column("email_key")
