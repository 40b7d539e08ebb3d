"""``dirsync run`` as a real process with one organization whose directory trickles (the
session's slapd behind the fault proxy, one byte every 0.3 s) beside a healthy one.

The promise under test: the stuck organization holds its worker until its ``read_deadline``
and no longer, then fails with one line and changes nothing; the healthy one keeps its schedule
meanwhile; the daemon stays healthy (the systemd watchdog keeps being fed) and never restarts.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from dirsync.testing.fault_proxy import FaultProxy
from tests.integration.daemon.support import DaemonConfig
from tests.integration.daemon.test_daemon_process import (
    NotifySocket,
    Process,
    notify,  # noqa: F401  (a fixture)
    processes,  # noqa: F401  (a fixture)
    store_rows,
    wait_until,
)
from tests.integration.test_hostile_directory import BIND_RESPONSE


def test_a_trickling_organization_ends_at_its_read_deadline_while_the_healthy_one_keeps_time(
    setup: DaemonConfig,
    notify: NotifySocket,  # noqa: F811
    processes: Callable[..., Process],  # noqa: F811
    tmp_path: Path,
) -> None:
    with FaultProxy(
        setup.tree.server.port, after=BIND_RESPONSE, mode="trickle", interval=0.3
    ) as proxy:
        setup.daemon["run_budget"] = "30s"  # far beyond the deadline: the deadline ends the run
        setup.add("acme", interval="1s")
        setup.add(
            "slow",
            interval="1h",
            source={
                "url": proxy.url,  # plain: the proxy shapes the LDAP bytes themselves
                "start_tls": False,
                "allow_plain_ldap": True,
                "timeout": "2s",
                "read_deadline": "4s",
            },
        )
        setup.write()
        daemon = processes(
            ["-m", "dirsync", "--config", str(setup.path), "run"],
            tmp_path / "daemon.log",
            env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"},
        )

        def slow_failed() -> dict[str, object] | None:
            return next(
                (
                    e
                    for e in daemon.events()
                    if e.get("event") == "sync.read_failed" and e.get("organization") == "slow"
                ),
                None,
            )

        failed = wait_until(slow_failed, "slow's run to end at its read_deadline", 30)
        error = str(failed["error"])
        assert "organization slow" in error and f"127.0.0.1:{proxy.port}" in error
        assert "read_deadline of 4s" in error and "\n" not in error
        assert proxy.hostile_bytes <= 4 / 0.3 + 3  # stopped at the deadline, not after

        names = [
            (e.get("event"), e.get("organization"))
            for e in daemon.events()
            if e.get("event") in ("sync.applied", "sync.unchanged", "sync.read_failed")
        ]
        acme_before = [
            n for n in names[: names.index(("sync.read_failed", "slow"))] if n[1] == "acme"
        ]
        # every second while slow was stuck for 4 s, acme ran and finished
        assert len(acme_before) >= 2, names
        assert all(event != "sync.read_failed" for event, _ in acme_before)

        # afterwards: still the same process, still healthy, acme still on its schedule
        count = len(acme_before)
        wait_until(
            lambda: (
                sum(
                    1
                    for e in daemon.events()
                    if e.get("organization") == "acme"
                    and e.get("event") in ("sync.applied", "sync.unchanged")
                )
                >= count + 2
            ),
            "two more runs of acme",
        )
        notify.expect(lambda m: m.get("WATCHDOG") == "1", "WATCHDOG=1 after slow's failure")
        assert daemon.proc.poll() is None
        assert daemon.event("daemon.run_crashed") is None
        daemon.proc.send_signal(signal.SIGTERM)
        notify.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
        code, _ = daemon.finish()
        assert code == 0

    outcomes = store_rows(
        setup.db,
        "SELECT r.outcome FROM runs r JOIN organizations o ON o.id = r.organization_id "
        "WHERE o.name = 'slow'",
    )
    assert outcomes == [("failed",)]
    slow_members = store_rows(
        setup.db,
        "SELECT COUNT(*) FROM members m JOIN organizations o ON o.id = m.organization_id "
        "WHERE o.name = 'slow'",
    )
    assert slow_members == [(0,)]
    assert store_rows(setup.db, "SELECT COUNT(*) FROM members") == [(3,)]  # acme's three
