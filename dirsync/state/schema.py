"""The store's tables as SQLAlchemy 2.0 declarative models.

Portable types only (SQLite by default, PostgreSQL for several nodes). Every datetime is stored
as UTC and comes back timezone-aware, whatever the backend (``UTCDateTime``). The schema itself
is changed by Alembic (``state/migrations``); an empty database gets it whole from these models
(``state/fresh_schema``), which a test proves equal to what the migrations make.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: constraint names are fixed so migrations can refer to them on every backend
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EMAIL = 320  # RFC 5321 path limit
ID = 255  # external ids: GUIDs, entryUUIDs, Graph object ids
REF = 1024  # DNs can be long
NAME = 512


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC datetimes")
        value = value.astimezone(UTC)
        # SQLite has no time zones: the UTC wall clock (SQLite normally takes the faster
        # bind_processor below; this path serves literal rendering)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # SQLite: one function per value instead of two layers (ours, then SQLAlchemy's DATETIME
    # string format, which this reproduces exactly: "YYYY-MM-DD HH:MM:SS.ffffff", sortable).
    # It halves the cost of the datetimes in a 100,000-invite apply.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC datetimes")
            naive = value.astimezone(UTC).replace(tzinfo=None)
            return naive.isoformat(sep=" ", timespec="microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy API


def _org_fk() -> Any:
    return ForeignKey("organizations.id", ondelete="CASCADE")


class OrganizationRow(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    #: users in the mirror after the last applied complete read (shrink guards); None: never
    last_user_count: Mapped[int | None] = mapped_column(Integer)
    #: the counts the guards take (``state.counts``), as of this version: valid while it is
    #: ``version`` (every write bumps the version; a run's apply keeps them in step)
    counted_version: Mapped[int | None] = mapped_column(Integer)
    member_count: Mapped[int | None] = mapped_column(Integer)
    seated_count: Mapped[int | None] = mapped_column(Integer)
    mirror_user_count: Mapped[int | None] = mapped_column(Integer)
    mirror_group_count: Mapped[int | None] = mapped_column(Integer)


class MemberRow(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("organization_id", "email", name="uq_members_org_email"),
        UniqueConstraint("organization_id", "external_id", name="uq_members_org_external_id"),
        # pending invitations by age, for re-invitations due (``reinvite_after``)
        Index("ix_members_org_status_invited_at", "organization_id", "status", "invited_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(_org_fk())
    email: Mapped[str] = mapped_column(String(EMAIL))
    external_id: Mapped[str | None] = mapped_column(String(ID))
    name: Mapped[str | None] = mapped_column(String(NAME))
    status: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    restore_status: Mapped[str | None] = mapped_column(String(16))
    revoked_reason: Mapped[str | None] = mapped_column(String(16))
    invited_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: when the invitation was last sent again (``reinvite_after``); None: never
    last_invited_at: Mapped[datetime | None]


class GroupRow(Base):
    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id", name="uq_groups_org_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(_org_fk())
    external_id: Mapped[str | None] = mapped_column(String(ID))
    name: Mapped[str] = mapped_column(String(NAME))


#: SQLite: a table that is its primary key's b-tree (no rowid, no second copy of each row in
#: a primary-key index); for tables whose rows are little more than their key. Other
#: databases ignore it.
WITHOUT_ROWID = {"sqlite_with_rowid": False}


class GroupMemberRow(Base):
    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_member_id", "member_id"), WITHOUT_ROWID)

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )


class CollectionRow(Base):
    __tablename__ = "collections"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id", name="uq_collections_org_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(_org_fk())
    external_id: Mapped[str | None] = mapped_column(String(ID))
    name: Mapped[str] = mapped_column(String(NAME))
    #: created from the config; the sync never touches any other collection
    managed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class CollectionAccessRow(Base):
    __tablename__ = "collection_access"
    __table_args__ = (Index("ix_collection_access_group_id", "group_id"),)

    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(32))


#: an index of the rows that have an identity provider id (pushed entries): a directory's
#: rows have none, and its first sync of 100,000 users adds nothing to the index
_PUSHED_ONLY: dict[str, Any] = {
    "sqlite_where": text("idp_id IS NOT NULL"),
    "postgresql_where": text("idp_id IS NOT NULL"),
}


class MirrorUserRow(Base):
    __tablename__ = "mirror_users"
    __table_args__ = (
        Index("ix_mirror_users_org_ref", "organization_id", "ref"),
        Index("ix_mirror_users_org_email_key", "organization_id", "email_key"),
        Index("ix_mirror_users_org_idp_id", "organization_id", "idp_id", **_PUSHED_ONLY),
        Index("ix_mirror_users_org_username_key", "organization_id", "username_key"),
    )

    organization_id: Mapped[int] = mapped_column(_org_fk(), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    ref: Mapped[str] = mapped_column(String(REF))
    username: Mapped[str | None] = mapped_column(String(NAME))
    email: Mapped[str | None] = mapped_column(String(EMAIL))
    name: Mapped[str | None] = mapped_column(String(NAME))
    disabled: Mapped[bool] = mapped_column(Boolean)
    #: the address as the planner normalizes it, for lookups by address (``mapping.scope``)
    email_key: Mapped[str | None] = mapped_column(String(EMAIL))
    #: the identity provider's id for a pushed user (SCIM ``externalId``), for its filter
    idp_id: Mapped[str | None] = mapped_column(String(ID))
    #: the user name in lower case, for look-ups in any case (SCIM's ``userName eq``, sent
    #: before every create)
    username_key: Mapped[str | None] = mapped_column(String(NAME))


class MirrorGroupRow(Base):
    __tablename__ = "mirror_groups"
    __table_args__ = (
        Index("ix_mirror_groups_org_idp_id", "organization_id", "idp_id", **_PUSHED_ONLY),
        Index("ix_mirror_groups_org_name_key", "organization_id", "name_key"),
        # the group a member ref names (nesting, in a delta's or a push's scope)
        Index("ix_mirror_groups_org_ref", "organization_id", "ref"),
    )

    organization_id: Mapped[int] = mapped_column(_org_fk(), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    ref: Mapped[str] = mapped_column(String(REF))
    name: Mapped[str] = mapped_column(String(NAME))
    #: the identity provider's id for a pushed group (SCIM ``externalId``)
    idp_id: Mapped[str | None] = mapped_column(String(ID))
    #: the name in lower case, for look-ups in any case (SCIM's ``displayName eq``)
    name_key: Mapped[str | None] = mapped_column(String(NAME))


class MirrorGroupMemberRow(Base):
    __tablename__ = "mirror_group_members"
    __table_args__ = (
        # the groups naming an entry (a delta's scope, a push's): not a scan of every edge
        Index("ix_mirror_group_members_org_member_ref", "organization_id", "member_ref"),
        WITHOUT_ROWID,
    )

    organization_id: Mapped[int] = mapped_column(_org_fk(), primary_key=True)
    group_external_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    member_ref: Mapped[str] = mapped_column(String(REF), primary_key=True)


class CursorRow(Base):
    __tablename__ = "cursors"

    organization_id: Mapped[int] = mapped_column(_org_fk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_org_started", "organization_id", "started_at"),
        # the running runs a new run closes (each push is a run: thousands a day)
        Index("ix_runs_org_outcome", "organization_id", "outcome"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(_org_fk())
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16))
    full: Mapped[bool] = mapped_column(Boolean)
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    entries_read: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    plan_digest: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(NAME))


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_org_at", "organization_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_id: Mapped[int] = mapped_column(_org_fk())
    run_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(NAME))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(NAME))
    # none_as_null: no "before" is SQL NULL, not the JSON text 'null'
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class StoreWriterRow(Base):
    """Which dirsync brought the store to each schema revision, recorded in the upgrade's own
    transaction: an older dirsync that finds a revision it does not know can name the
    version the store needs (``engine.check_known``)."""

    __tablename__ = "store_writers"

    revision: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(NAME))
    written_at: Mapped[datetime]


class ScheduleRow(Base):
    """When an organization is due next, kept in the store so that every node that shares it
    follows one schedule (``state/schedules.py``). ``claim`` counts the claims: a node's
    update after its run applies only while no other node has claimed since."""

    __tablename__ = "schedules"

    organization_id: Mapped[int] = mapped_column(_org_fk(), primary_key=True)
    next_due: Mapped[datetime]
    claim: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[str | None] = mapped_column(String(NAME))
    claimed_at: Mapped[datetime | None]
    #: failed runs in a row (the retry backoff), and when the last full read started
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_full: Mapped[datetime | None]
