"""A store that a newer dirsync migrated: every command that opens it says so in one line,
naming both versions, exits 2 and leaves the store as it was (a real store, real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirsync import version
from dirsync.state.engine import head_revisions, known_revisions
from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection, store_at_revision
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company

FUTURE_REVISION = "0099_from_the_future"
FUTURE_VERSION = "9.1.0"


def migrate_as_a_newer_dirsync(db: Path, *, record: bool = True) -> None:
    """What a later dirsync's upgrade leaves: a table this one has never heard of, Alembic's
    version table at a revision it has no migration for, and (``record``) its own version."""
    with sqlite_connection(db) as connection:
        connection.execute("CREATE TABLE future_things (id INTEGER PRIMARY KEY, what TEXT)")
        connection.execute("UPDATE alembic_version SET version_num = ?", (FUTURE_REVISION,))
        if record:
            connection.execute(
                "INSERT INTO store_writers (revision, version, written_at) VALUES (?, ?, ?)",
                (FUTURE_REVISION, FUTURE_VERSION, "2027-06-01 00:00:00.000000"),
            )


def dump(db: Path) -> list[str]:
    with sqlite_connection(db) as connection:
        return list(connection.iterdump())


@pytest.fixture
def newer_store(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    """acme synced once (a store with members, groups, runs and events), then migrated by a
    newer dirsync."""
    dirsync = Dirsync(ldap_tree, tmp_path)
    dirsync.config.chmod(0o600)  # its inline password would be warned about, on stderr too
    company(ldap_tree)
    code, _out, err = dirsync.run("sync")
    assert code == 0, err
    migrate_as_a_newer_dirsync(dirsync.db)
    return dirsync


COMMANDS = [
    ("status",),
    ("status", "--json"),
    ("runs",),
    ("members", "--org", "acme", "--json"),
    ("groups", "--org", "acme"),
    ("collections", "--org", "acme"),
    ("events", "--org", "acme"),
    ("report", "--org", "acme"),
    ("member", "confirm", "--org", "acme", "alice@example.com"),
    ("sync",),
    ("sync", "--dry-run", "--json"),
    ("db", "upgrade"),
    ("run",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_names_both_versions_in_one_line_and_changes_nothing(
    newer_store: Dirsync, command: tuple[str, ...]
) -> None:
    before = dump(newer_store.db)
    code, out, err = newer_store.run(*command)
    assert code == 2, (code, out, err)
    assert out == ""
    assert err == (
        f"dirsync: the store was written by dirsync {FUTURE_VERSION}, newer than this dirsync "
        f"{version.current()} (its schema {FUTURE_REVISION} is unknown here): "
        f"install dirsync {FUTURE_VERSION} or later\n"
    )
    assert "Can't locate revision" not in err
    assert dump(newer_store.db) == before


def test_the_monitoring_check_says_unknown_with_the_same_line(newer_store: Dirsync) -> None:
    """``status --check`` keeps the plugin convention: UNKNOWN (3) on stdout, same words."""
    code, out, _err = newer_store.run("status", "--check")
    assert code == 3
    assert out == (
        f"UNKNOWN: the store was written by dirsync {FUTURE_VERSION}, newer than this dirsync "
        f"{version.current()} (its schema {FUTURE_REVISION} is unknown here): "
        f"install dirsync {FUTURE_VERSION} or later\n"
    )


def test_a_store_that_does_not_say_who_wrote_it_still_gets_one_line_naming_this_version(
    ldap_tree: LdapTree, tmp_path: Path
) -> None:
    dirsync = Dirsync(ldap_tree, tmp_path)
    dirsync.config.chmod(0o600)
    company(ldap_tree)
    assert dirsync.run("sync")[0] == 0
    migrate_as_a_newer_dirsync(dirsync.db, record=False)
    code, out, err = dirsync.run("status")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"newer dirsync than this one ({version.current()};" in err
    assert FUTURE_REVISION in err


def test_a_store_this_dirsync_created_or_migrated_records_its_version(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    store_at_revision(old, "0004_edges_without_rowid").dispose()
    for db in (old, tmp_path / "new.db"):
        SqlStore.open(f"sqlite:///{db}").close()  # migrates the old one, creates the new one
        with sqlite_connection(db) as connection:
            rows = connection.execute("SELECT revision, version FROM store_writers").fetchall()
        assert rows == [(head, version.current()) for head in sorted(head_revisions())]
    assert FUTURE_REVISION not in known_revisions()
