"""The command line on a PostgreSQL store: what runs on SQLite runs the same on PostgreSQL,
and a store that cannot be reached fails with one line that hides the password."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from dirsync.state.sql_store import SqlStore
from dirsync.testing.postgres import Postgres
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company, set_disabled

_databases = itertools.count(1)


@pytest.fixture
def on_postgresql(ldap_tree: LdapTree, tmp_path: Path, postgres: Postgres) -> Dirsync:
    return Dirsync(ldap_tree, tmp_path, postgres.create_database(f"cli_{next(_databases)}"))


def test_a_first_sync_a_quiet_run_and_a_change_on_postgresql(on_postgresql: Dirsync) -> None:
    dirsync = on_postgresql
    company(dirsync.tree)

    first = dirsync.sync_json()
    assert first["outcome"] == "applied"
    invited = sorted(i["email"] for i in first["plan"]["invite"])
    assert invited and sorted(dirsync.members()) == invited

    assert dirsync.sync_json()["outcome"] == "unchanged"

    someone = invited[0].split("@")[0]
    set_disabled(dirsync.tree, someone, True)
    changed = dirsync.sync_json()
    assert changed["outcome"] == "applied"
    assert [r["email"] for r in changed["plan"]["revoke"]] == [invited[0]]
    assert dirsync.members()[invited[0]]["status"] == "revoked"
    (status,) = dirsync.json("status")
    assert status["organization"] == "acme" and status["outcome"] == "applied"


def test_a_store_that_cannot_be_reached_is_one_line_without_the_password(
    ldap_tree: LdapTree, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://dirsync:Canary-pw-42@127.0.0.1:1/nowhere"
    dirsync = Dirsync(ldap_tree, tmp_path, url)

    code, out, err = dirsync.run("sync")

    assert code == 1 and out == ""
    # the config holds an inline password: a warning line comes first, then the error
    line = err.strip().splitlines()[-1]
    assert line.startswith("dirsync: "), err
    # the first thing a sync needs from the store is the organization's lock
    assert "the store postgresql+psycopg://dirsync:***@127.0.0.1:1/nowhere: " in line
    assert "Connection refused" in line
    assert "Canary-pw-42" not in out + err


def test_nodes_that_start_at_once_on_an_empty_database_all_open_it(postgres: Postgres) -> None:
    """Several nodes' first start: one creates the schema, the others wait and find it."""
    url = postgres.create_database(f"cli_{next(_databases)}")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            SqlStore.open(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    with SqlStore.open(url, readonly=True) as store:
        assert store.organizations() == []
