"""Settings for the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from dirsync.testing.postgres import Postgres

# No per-example deadline: speed is measured in bench/, never in a test, and on a loaded
# machine hypothesis's default (200 ms) fails properties for the machine's sake, not the code's.
settings.register_profile("dirsync", deadline=None)
settings.load_profile("dirsync")

# The suite writes its configs and secret files with write_text: under umask 022 they are
# 0644, never writable by group or others, which dirsync refuses (SECURITY.md, "Files dirsync
# reads"); a shell with umask 002 must not turn every test into that refusal.
os.umask(0o022)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL for the session, started when a test first asks for it; each test
    creates a database of its own (``create_database``)."""
    with Postgres() as server:
        yield server
