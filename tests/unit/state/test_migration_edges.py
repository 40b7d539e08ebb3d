"""Revision 0004 rebuilds the edge tables WITHOUT ROWID on SQLite, rows kept, and back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection, store_at_revision

ORG = "acme"
EDGE_TABLES = ("group_members", "mirror_group_members")


def _fill_at_0003(db: Path) -> None:
    """Two members in two groups and their mirror edges, written as revision 0003 had them."""
    store_at_revision(db, "0003_scope_indexes").dispose()
    with sqlite_connection(db) as conn:
        conn.execute(
            "INSERT INTO organizations (id, name, version, created_at, last_user_count) "
            "VALUES (1, 'acme', 2, '2026-01-01 00:00:00', 2)"
        )
        for number in (1, 2):
            email = f"u{number}@acme.example"
            conn.execute(
                "INSERT INTO members (id, organization_id, email, external_id, status, role, "
                "invited_at, updated_at) VALUES (?, 1, ?, ?, 'invited', 'user', "
                "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
                (number, email, f"u-{number}"),
            )
            conn.execute(
                "INSERT INTO mirror_users (organization_id, external_id, ref, email, disabled, "
                "email_key) VALUES (1, ?, ?, ?, 0, ?)",
                (f"u-{number}", f"uid=u{number}", email, email),
            )
        conn.execute("INSERT INTO groups VALUES (10, 1, 'g-a', 'a'), (11, 1, 'g-b', 'b')")
        conn.execute("INSERT INTO group_members VALUES (10, 1), (10, 2), (11, 2)")
        conn.execute(
            "INSERT INTO mirror_groups VALUES (1, 'g-a', 'cn=a', 'a'), (1, 'g-b', 'cn=b', 'b')"
        )
        conn.execute(
            "INSERT INTO mirror_group_members VALUES (1, 'g-a', 'uid=u1'), (1, 'g-a', 'uid=u2'), "
            "(1, 'g-b', 'uid=u2')"
        )


def _edges(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite_connection(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in EDGE_TABLES}


def _has_rowid(db: Path, table: str) -> bool:
    with sqlite_connection(db) as conn:
        try:
            conn.execute(f"SELECT rowid FROM {table}").fetchall()
        except sqlite3.OperationalError:
            return False
        return True


def test_upgrading_rebuilds_the_edge_tables_without_rowid_and_keeps_every_edge(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    _fill_at_0003(db)
    before = _edges(db)
    assert all(_has_rowid(db, table) for table in EDGE_TABLES)
    with SqlStore.open(f"sqlite:///{db}") as store:  # the engine's own upgrade, foreign keys on
        loaded = store.load(ORG)
        groups = {g.name: set(g.members) for g in store.groups(ORG)}
    assert _edges(db) == before
    assert not any(_has_rowid(db, table) for table in EDGE_TABLES)
    assert {g: set(m.member_refs) for g, m in loaded.mirror.groups.items()} == {
        "g-a": {"uid=u1", "uid=u2"},
        "g-b": {"uid=u2"},
    }
    assert groups == {"a": {"u1@acme.example", "u2@acme.example"}, "b": {"u2@acme.example"}}
    with sqlite_connection(db) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # the member lookup index survives the rebuild
        indexes = conn.execute("PRAGMA index_list(group_members)").fetchall()
        assert "ix_group_members_member_id" in {row[1] for row in indexes}


def test_downgrading_gives_the_rowid_tables_back_with_their_rows(tmp_path: Path) -> None:
    from alembic import command

    from dirsync.state.engine import WRITE_OPTION, alembic_config

    db = tmp_path / "old.db"
    _fill_at_0003(db)
    before = _edges(db)
    engine = store_at_revision(db)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                command.downgrade(alembic_config(connection), "0003_scope_indexes")
    finally:
        engine.dispose()
    assert _edges(db) == before
    assert all(_has_rowid(db, table) for table in EDGE_TABLES)
