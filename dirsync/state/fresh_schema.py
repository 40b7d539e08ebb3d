"""A fresh store's schema, created from the models without Alembic.

Running the migrations one by one on an empty database costs a first sync ~0.25 s (importing
Alembic and replaying each revision, SQLite's batch mode included) for a result known in
advance: the models' schema at the newest revision. So an empty database gets
``metadata.create_all`` and an ``alembic_version`` row naming the head revisions, exactly what
Alembic would leave; a database that already has tables still goes through the migrations.
``tests/unit/test_fresh_schema.py`` compares the two schemas table by table and shows that
``alembic upgrade head`` on a created store changes nothing.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table, inspect

from dirsync.state.schema import Base

#: Alembic's own version table, as ``alembic.runtime.migration`` defines it (32 characters,
#: primary key named ``alembic_version_pkc``), kept apart from the models' metadata
_VERSIONS = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def is_empty(connection: Connection) -> bool:
    """Neither a table of the store nor Alembic's version table exists (other tables may:
    a PostgreSQL database can be shared)."""
    existing = set(inspect(connection).get_table_names())
    return not existing & {_VERSIONS.name, *Base.metadata.tables}


def create_schema(connection: Connection, heads: set[str]) -> None:
    """Create every table at the newest revision, inside the caller's transaction."""
    Base.metadata.create_all(connection, checkfirst=False)
    _VERSIONS.create(connection, checkfirst=False)
    connection.execute(_VERSIONS.insert(), [{"version_num": head} for head in sorted(heads)])
