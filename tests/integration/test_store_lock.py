"""Organizations' locks in a PostgreSQL store, with real processes: one holder in the whole
cluster; a holder that dies frees the organization at once, one that stalls (SIGSTOP) frees it
within ``takeover``; the one-shot sync honours a lock another node holds."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dirsync.sync.locks import LockBusy
from dirsync.sync.store_lock import StoreLock
from dirsync.testing.postgres import Postgres
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company

_databases = itertools.count(1)
TAKEOVER = timedelta(seconds=1)
#: a process that takes acme's lock, says so, and holds it until killed
HOLDER = """
import sys, time
from datetime import timedelta
from dirsync.sync.store_lock import StoreLock
lock = StoreLock(sys.argv[1], "acme", takeover=timedelta(seconds=float(sys.argv[2])))
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def store_url(postgres: Postgres) -> str:
    return postgres.create_database(f"locks_{next(_databases)}")


@pytest.fixture
def holder(store_url: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store_url, str(TAKEOVER.total_seconds())],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(10)
    proc.stdout.close()


def _taken_within(store_url: str, seconds: float) -> float:
    """How long until acme's lock could be taken here (polling; fails after ``seconds``)."""
    started = time.monotonic()
    while True:
        try:
            with StoreLock(store_url, "acme", takeover=TAKEOVER):
                return time.monotonic() - started
        except LockBusy:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(0.1)


def test_one_holder_per_organization_in_the_whole_store(store_url: str) -> None:
    with StoreLock(store_url, "acme", takeover=TAKEOVER) as first:
        assert first.held
        with pytest.raises(LockBusy, match="skipped acme: another sync of it is running"):
            StoreLock(store_url, "acme", takeover=TAKEOVER).acquire()
        with StoreLock(store_url, "globex", takeover=TAKEOVER) as other:
            assert other.held
    with StoreLock(store_url, "acme", takeover=TAKEOVER) as again:
        assert again.held


def test_a_holder_that_dies_frees_the_organization_at_once(
    store_url: str, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockBusy):
        StoreLock(store_url, "acme", takeover=TAKEOVER).acquire()
    holder.kill()
    holder.wait(10)
    assert _taken_within(store_url, 5) < TAKEOVER.total_seconds()


def test_a_holder_that_stalls_is_taken_over_within_takeover(
    store_url: str, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGSTOP)  # frozen: no heartbeat, but its socket stays open
    waited = _taken_within(store_url, 4 * TAKEOVER.total_seconds())
    assert waited <= 2 * TAKEOVER.total_seconds()
    os.kill(holder.pid, signal.SIGCONT)


def test_a_holder_that_keeps_beating_keeps_the_lock(
    store_url: str, holder: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + 2.5 * TAKEOVER.total_seconds()
    while time.monotonic() < deadline:  # well past takeover: the heartbeat keeps it
        with pytest.raises(LockBusy):
            StoreLock(store_url, "acme", takeover=TAKEOVER).acquire()
        time.sleep(0.5)


def test_a_one_shot_sync_skips_an_organization_another_node_is_running(
    ldap_tree: LdapTree, tmp_path: Path, store_url: str, holder: subprocess.Popen[str]
) -> None:
    dirsync = Dirsync(ldap_tree, tmp_path, store_url)
    company(ldap_tree)

    code, out, err = dirsync.run("sync")

    assert code == 4, (out, err)
    assert "skipped acme: another sync of it is running" in err
    holder.kill()
    holder.wait(10)
    assert dirsync.sync_json()["outcome"] == "applied"
