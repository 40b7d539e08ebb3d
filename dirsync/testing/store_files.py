"""SQLite store files at a chosen Alembic revision, for upgrade tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine

from dirsync.state.engine import WRITE_OPTION, alembic_config


def store_at_revision(path: Path, revision: str = "head") -> Engine:
    """An SQLite database at ``path`` brought to ``revision`` by Alembic, revision by
    revision (not through the fresh-store path), and its engine."""
    from alembic import command  # only tests that build old stores need it

    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            command.upgrade(alembic_config(connection), revision)
    return engine
