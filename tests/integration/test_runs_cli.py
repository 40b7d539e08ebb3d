"""``dirsync runs``: the run history with the node that ran each run, on SQLite and on a
PostgreSQL store shared by two nodes; ``status --json`` names the last run's node."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from dirsync.testing.postgres import Postgres
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company

_databases = itertools.count(1)


def _as_node(dirsync: Dirsync, node: str) -> None:
    dirsync.write()
    with dirsync.config.open("a") as config:
        config.write(f'\n[daemon]\nnode = "{node}"\n')


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    return Dirsync(ldap_tree, tmp_path)


def test_runs_lists_every_run_oldest_first_with_its_node(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    first = dirsync.sync_json()
    second = dirsync.sync_json()

    runs = dirsync.json("runs")

    assert [r["run_id"] for r in runs] == [first["run_id"], second["run_id"]]
    assert [r["outcome"] for r in runs] == ["applied", "unchanged"]
    assert {r["organization"] for r in runs} == {"acme"}
    assert {r["node"] for r in runs} == {socket.gethostname()}
    assert runs[0]["counts"]["invite"] == len(first["plan"]["invite"]) > 0
    assert runs[0]["started"].endswith("Z") and runs[0]["finished"] >= runs[0]["started"]
    assert runs[0]["error"] is None
    (status,) = dirsync.json("status")
    assert status["node"] == socket.gethostname()


def test_since_keeps_the_runs_started_then_or_later(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    later = dirsync.sync_json()
    (second,) = [r for r in dirsync.json("runs") if r["run_id"] == later["run_id"]]

    since = dirsync.json("runs", "--since", second["started"])

    assert [r["run_id"] for r in since] == [later["run_id"]]
    code, _out, err = dirsync.run("runs", "--since", "yesterday")
    assert code == 2 and "ISO 8601" in err


def test_two_nodes_on_one_postgresql_store_each_name_their_runs(
    ldap_tree: LdapTree, tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.create_database(f"runs_{next(_databases)}")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    node_a = Dirsync(ldap_tree, tmp_path / "a", url)
    node_b = Dirsync(ldap_tree, tmp_path / "b", url)
    _as_node(node_a, "node-a")
    _as_node(node_b, "node-b")
    company(ldap_tree)

    assert node_a.sync_json()["outcome"] == "applied"
    assert node_b.sync_json()["outcome"] == "unchanged"  # node b sees what node a did

    runs = node_b.json("runs", "--org", "acme")
    assert [(r["node"], r["outcome"]) for r in runs] == [
        ("node-a", "applied"),
        ("node-b", "unchanged"),
    ]
    assert node_a.json("runs") == runs  # the same history from either node
    (status,) = node_a.json("status")
    assert status["node"] == "node-b"
