"""The implementations of each port that the contract suites run against.

Every test in ``tests/contract/`` takes ``store`` and so runs once per implementation of
``dirsync.state.store.Store``. A new implementation (a new backend of ``SqlStore``, or another
store) adds one entry to ``STORES``; the scenarios stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dirsync.state.sql_store import SqlStore
from dirsync.state.store import Store


def _sqlite(tmp_path: Path) -> SqlStore:
    return SqlStore.open(f"sqlite:///{tmp_path / 'contract.db'}")


#: name -> opens a new, empty store under the test's own temporary directory
STORES: dict[str, Callable[[Path], SqlStore]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = STORES[request.param](tmp_path)
    try:
        yield opened
    finally:
        opened.close()
