"""Fixtures of the daemon tests: a company in the session's slapd and a config for it, and the
clock frozen at ``START``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from tests.integration.conftest import LdapTree
from tests.integration.daemon.support import START, DaemonConfig, company


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START) as factory:
        yield factory


@pytest.fixture
def setup(ldap_tree: LdapTree, tmp_path: Path) -> DaemonConfig:
    company(ldap_tree)
    return DaemonConfig(ldap_tree, tmp_path)
