"""Alembic environment for the store.

Run from code (``dirsync.state.engine.upgrade``), which hands over an open connection in
``config.attributes["connection"]`` so the engine's pragmas and transaction apply. For a
developer running ``alembic`` by hand, ``sqlalchemy.url`` in the config is used instead.
``render_as_batch`` lets SQLite alter tables (it copies them).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dirsync.state.engine import create_store_engine
from dirsync.state.schema import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run through dirsync.state.engine.upgrade")
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
