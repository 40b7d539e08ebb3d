"""Initial schema: organizations, members, groups, mirror, cursors, runs, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Datetimes are ``DateTime(timezone=True)``; the models read and write them through
``dirsync.state.schema.UTCDateTime`` (aware UTC on every backend). Migrations spell out their
types instead of importing the models, so they stay valid when the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def _org_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "organization_id",
        sa.Integer(),
        sa.ForeignKey(
            "organizations.id",
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_user_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _org_id("members"),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("restore_status", sa.String(length=16), nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        sa.Column("invited_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("organization_id", "email", name="uq_members_org_email"),
        sa.UniqueConstraint("organization_id", "external_id", name="uq_members_org_external_id"),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _org_id("groups"),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("organization_id", "external_id", name="uq_groups_org_external_id"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_members_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_group_members_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_members")),
    )
    op.create_index("ix_group_members_member_id", "group_members", ["member_id"])
    op.create_table(
        "mirror_users",
        _org_id("mirror_users"),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("ref", sa.String(length=1024), nullable=False),
        sa.Column("username", sa.String(length=512), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "external_id", name=op.f("pk_mirror_users")),
    )
    op.create_table(
        "mirror_groups",
        _org_id("mirror_groups"),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("ref", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "external_id", name=op.f("pk_mirror_groups")),
    )
    op.create_table(
        "mirror_group_members",
        _org_id("mirror_group_members"),
        sa.Column("group_external_id", sa.String(length=255), nullable=False),
        sa.Column("member_ref", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id",
            "group_external_id",
            "member_ref",
            name=op.f("pk_mirror_group_members"),
        ),
    )
    op.create_table(
        "cursors",
        _org_id("cursors"),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_cursors")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        _org_id("runs"),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("entries_read", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("plan_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_org_started", "runs", ["organization_id", "started_at"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _org_id("events"),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_org_at", "events", ["organization_id", "at"])


def downgrade() -> None:
    for index, table in (
        ("ix_events_org_at", "events"),
        ("ix_runs_org_started", "runs"),
        ("ix_group_members_member_id", "group_members"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "events",
        "runs",
        "cursors",
        "mirror_group_members",
        "mirror_groups",
        "mirror_users",
        "group_members",
        "groups",
        "members",
        "organizations",
    ):
        op.drop_table(table)
