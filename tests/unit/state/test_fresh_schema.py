"""A fresh store's schema, created from the models, is the schema Alembic's migrations make."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect

from dirsync.state.engine import alembic_config, head_revisions
from dirsync.state.run_rows import CLOSE_STALE
from dirsync.state.schema import Base
from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection, store_at_revision


def _created(path: Path) -> Engine:
    SqlStore.open(f"sqlite:///{path}").close()
    return create_engine(f"sqlite:///{path}")


def _without_rowid(engine: Engine) -> set[str]:
    """Tables created ``WITHOUT ROWID`` (SQLAlchemy's inspector does not report it)."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'")
        return {name for name, sql in rows if sql.rstrip().upper().endswith("WITHOUT ROWID")}


def _schema(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every table's columns (name, type, nullability, default), keys, indexes, rowid or
    not; order-free where the database does not care about order."""
    found: dict[str, dict[str, Any]] = {}
    without_rowid = _without_rowid(engine)
    with engine.connect() as connection:
        inspector = inspect(connection)
        for table in inspector.get_table_names():
            found[table] = {
                "without_rowid": table in without_rowid,
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table),
                "foreign_keys": sorted(
                    (
                        fk["name"],
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        tuple(sorted(fk["options"].items())),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
            }
    return found


def _versions(path: Path) -> list[tuple[str]]:
    with sqlite_connection(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_fresh_store_has_the_schema_the_migrations_make(tmp_path: Path) -> None:
    migrated = store_at_revision(tmp_path / "migrated.db")
    created = _created(tmp_path / "created.db")
    try:
        expected, actual = _schema(migrated), _schema(created)
        assert set(actual) == set(expected) == {*Base.metadata.tables, "alembic_version"}
        for table in expected:
            assert actual[table] == expected[table], table
    finally:
        migrated.dispose()
        created.dispose()
    assert _versions(tmp_path / "created.db") == _versions(tmp_path / "migrated.db")


def test_the_edge_tables_have_no_rowid_in_fresh_and_migrated_stores(tmp_path: Path) -> None:
    migrated = store_at_revision(tmp_path / "migrated.db")
    created = _created(tmp_path / "created.db")
    try:
        edges = {"group_members", "mirror_group_members"}
        assert _without_rowid(migrated) == _without_rowid(created) == edges
    finally:
        migrated.dispose()
        created.dispose()


def test_a_fresh_store_is_at_the_alembic_head_and_matches_the_models(tmp_path: Path) -> None:
    db = tmp_path / "created.db"
    engine = _created(db)
    try:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert head is not None and {head} == head_revisions()
        assert _versions(db) == [(head,)]
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_alembic_upgrade_on_a_fresh_store_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "created.db"
    _created(db).dispose()
    with sqlite_connection(db) as conn:
        before = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    store_at_revision(db).dispose()  # what `dirsync db upgrade` runs when the store is not at head
    with sqlite_connection(db) as conn:
        after = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    assert sorted(after) == sorted(before)
    assert len(_versions(db)) == 1


def test_a_database_with_tables_is_migrated_not_recreated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store_at_revision(db, "0001").dispose()
    with sqlite_connection(db) as conn:
        conn.execute(
            "INSERT INTO organizations (id, name, version, created_at, last_user_count) "
            "VALUES (1, 'acme', 3, '2026-01-01 00:00:00', 1)"
        )
    SqlStore.open(f"sqlite:///{db}").close()
    with sqlite_connection(db) as conn:
        assert conn.execute("SELECT name, version FROM organizations").fetchall() == [("acme", 3)]
    upgraded = create_engine(f"sqlite:///{db}")
    migrated = store_at_revision(tmp_path / "migrated.db")
    try:
        assert _schema(upgraded) == _schema(migrated)
    finally:
        upgraded.dispose()
        migrated.dispose()


def test_a_runs_begin_finds_the_runs_left_running_through_an_index(
    tmp_path: Path,
) -> None:
    engine = _created(tmp_path / "created.db")
    statement = CLOSE_STALE.compile(engine)
    values = statement.construct_params({"org_id": 1})
    parameters = tuple(values[name] for name in statement.positiontup or ())
    try:
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            steps = " ".join(str(row[-1]) for row in plan)
    finally:
        engine.dispose()  # its pooled sqlite3 connection closed, not left to the collector
    assert "USING INDEX ix_runs_org_outcome" in steps, steps
