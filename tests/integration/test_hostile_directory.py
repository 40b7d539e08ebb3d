"""A hostile directory, for real: the session's slapd behind the fault proxy, which trickles its
answer one byte at a time or announces a 1 GiB message and streams zeros, read by ``dirsync
sync`` as a real process.

The promise under test: the read ends at ``read_deadline`` (not when the server pleases) or at
the message limit (before the body is read), with exit 1 and one line naming the organization,
the server and the limit, and the store exactly as it was.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dirsync.testing.fault_proxy import FaultProxy
from dirsync.testing.store_files import sqlite_connection
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company

#: slapd's answer to a simple bind: 30 0c 02 01 01 61 07 0a 01 00 04 00 04 00
BIND_RESPONSE = 14


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    company(ldap_tree)
    return Dirsync(ldap_tree, tmp_path)


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but the run history (a failed run is recorded there, on purpose)."""
    with sqlite_connection(db) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0] != "runs"
        ]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def sync_process(dirsync: Dirsync, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dirsync", "--config", str(dirsync.config), "sync"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_trickling_directory_is_stopped_at_read_deadline_and_changes_nothing(
    dirsync: Dirsync,
) -> None:
    assert sync_process(dirsync).returncode == 0
    dirsync.tree.add(dirsync.tree.person("dave"))  # what the stopped run would have invited
    before = dump(dirsync.db)
    port = dirsync.tree.server.port
    with FaultProxy(port, after=BIND_RESPONSE, mode="trickle", interval=0.3) as proxy:
        # every byte comes long before the 2 s timeout; only the read's deadline can end it
        dirsync.set(
            source={
                "url": proxy.url,  # plain: the proxy shapes the LDAP bytes themselves
                "allow_plain_ldap": True,
                "timeout": "2s",
                "read_deadline": "3s",
            },
            org={"interval": "1h"},
        )
        started = time.monotonic()
        done = sync_process(dirsync)
        elapsed = time.monotonic() - started
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any(
        "organization acme" in line
        and f"127.0.0.1:{proxy.port}" in line
        and "read_deadline of 3s" in line
        and "messages received" in line
        for line in lines
    ), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    # at 0.3 s a byte, 3 s let through about ten: the wait was cut at the deadline
    assert 1 <= proxy.hostile_bytes <= 14
    assert elapsed < 30  # a full answer at this rate would take many minutes
    assert dump(dirsync.db) == before


def test_an_oversized_message_is_refused_from_its_length_and_changes_nothing(
    dirsync: Dirsync,
) -> None:
    assert sync_process(dirsync).returncode == 0
    dirsync.tree.add(dirsync.tree.person("dave"))
    before = dump(dirsync.db)
    with FaultProxy(dirsync.tree.server.port, after=BIND_RESPONSE, mode="oversized") as proxy:
        dirsync.set(source={"url": proxy.url, "allow_plain_ldap": True, "timeout": "5s"})
        done = sync_process(dirsync)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert any(
        "organization acme" in line
        and f"127.0.0.1:{proxy.port}" in line
        and "1,073,741,824 bytes; the limit is 268,435,456" in line
        for line in done.stderr.splitlines()
    ), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    # refused from the announced length: what was sent is what the socket buffers took
    assert proxy.hostile_bytes < 64 * 1024 * 1024
    assert dump(dirsync.db) == before
