"""SQLite store files at a chosen Alembic revision, for upgrade tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine

from dirsync.state.engine import WRITE_OPTION, alembic_config


def store_at_revision(path: Path, revision: str = "head") -> Engine:
    """An SQLite database at ``path`` brought to ``revision`` by Alembic, revision by
    revision (not through the fresh-store path), and its engine."""
    return database_at_revision(f"sqlite:///{path}", revision)


def database_at_revision(url: str, revision: str = "head") -> Engine:
    """The database at ``url`` (SQLite or PostgreSQL) brought to ``revision`` by Alembic,
    revision by revision, and its engine."""
    from alembic import command  # only tests that build old stores need it

    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            command.upgrade(alembic_config(connection), revision)
    return engine


def stamp_revision(engine: Engine, revision: str) -> None:
    """Record ``revision`` as the database's without running anything (an upgrade then runs
    the migrations after it again)."""
    from alembic import command

    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            command.stamp(alembic_config(connection), revision, purge=True)


@contextmanager
def sqlite_connection(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to look at or prepare a store file: committed when the block
    succeeds (rolled back otherwise) and closed either way. sqlite3's own ``with`` only
    commits, leaving the close to the collector, which Python 3.13 warns about."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()
