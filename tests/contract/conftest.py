"""The implementations of each port that the contract suites run against.

Every test in ``tests/contract/`` takes ``store`` and so runs once per implementation of
``dirsync.state.store.Store``: SqlStore on SQLite, and SqlStore on a real PostgreSQL started
for the session (each test gets a database of its own). A new implementation adds one entry to
``STORES``; the scenarios stay as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dirsync.state.sql_store import SqlStore
from dirsync.state.store import Store
from dirsync.testing.postgres import Postgres

_databases = itertools.count(1)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    return SqlStore.open(f"sqlite:///{tmp_path / 'contract.db'}")


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    server: Postgres = request.getfixturevalue("postgres")
    return SqlStore.open(server.create_database(f"contract_{next(_databases)}"))


#: name -> opens a new, empty store for one test
STORES: dict[str, Callable[[pytest.FixtureRequest, Path], SqlStore]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = STORES[request.param](request, tmp_path)
    try:
        yield opened
    finally:
        opened.close()
