"""The units of systemd/ under a real systemd 252 in a booted Debian 12: a technician's day.

Each test writes the config it needs and (re)starts what it drives; they share one booted
container (``conftest.units``). The checks are the contract's "Running in the field".
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.integration.daemon.support import closed_port
from tests.integration.systemd.conftest import SYNCED, Units, organization_toml, wait_until

pytestmark = pytest.mark.slapd


def test_installed_as_readme_says(units: Units) -> None:
    version = units.debian.run("dirsync", "--version").stdout
    assert "dirsync" in version
    assert units.debian.run("readlink", "-f", "/usr/local/bin/dirsync").stdout.startswith(
        "/opt/pipx/venvs/dirsync/"
    )
    assert units.show("dirsync", "LoadState") == "loaded"
    assert units.show("dirsync", "UnitFileState") == "disabled"  # until enable --now


def test_start_waits_for_ready_and_reports_each_organization(units: Units) -> None:
    units.systemctl("enable", "--now", "dirsync")  # the config _install wrote
    # Type=notify: systemctl start came back only after READY=1
    assert units.show("dirsync", "ActiveState") == "active"
    assert units.show("dirsync", "SubState") == "running"
    status = units.wait_for_status("acme " + SYNCED, "beta " + SYNCED)
    assert "next " in status
    members = json.loads(units.dirsync("members", "--org", "acme", "--json").stdout)
    assert [m["email"] for m in members] == ["ann@example.org", "bob@example.org"]
    # the service's own user, not root, owns the store
    owner = units.debian.run("stat", "-c", "%U %a", "/var/lib/private/dirsync/dirsync.db")
    assert owner.stdout.split() == ["dirsync", "600"]
    assert units.show("dirsync", "UnitFileState") == "enabled"
    # glibc's malloc_trim and mallopt, through ctypes, work under MemoryDenyWriteExecute=yes
    started = [line for line in units.journal().splitlines() if '"daemon.started"' in line]
    assert started, "no daemon.started in the journal"
    assert json.loads(started[-1])["memory_trim"] is True
    assert json.loads(started[-1])["malloc_arenas"] == 2


def test_a_failing_client_is_retried_and_shown(units: Units) -> None:
    broken = organization_toml(
        "gamma", units.source("acme", url=f"ldap://127.0.0.1:{closed_port()}")
    )
    mark = units.cursor()
    units.restart(units.config(broken))
    units.wait_for_status("acme " + SYNCED, "gamma failed x1")
    assert "daemon.run_failed" in units.journal(after=mark)


def test_journal_priorities_follow_the_log_levels(units: Units) -> None:
    broken = organization_toml(
        "gamma", units.source("acme", url=f"ldap://127.0.0.1:{closed_port()}")
    )
    mark = units.cursor()
    units.restart(units.config(broken))
    units.wait_for_status("gamma failed")
    assert "daemon.started" in units.journal(after=mark)
    warnings = units.journal("dirsync", "-p", "warning", after=mark)
    assert "daemon.run_failed" in warnings
    assert "daemon.started" not in warnings  # info stays out
    assert "daemon.run_failed" not in units.journal("dirsync", "-p", "err", after=mark)


def test_reload_with_a_good_config(units: Units) -> None:
    units.restart(units.config())
    units.wait_for_status("acme " + SYNCED, "beta " + SYNCED)
    pid = units.show("dirsync", "MainPID")
    delta = organization_toml("delta", units.source("beta"))
    units.write_config(units.config(delta))
    mark = units.cursor()
    result = units.systemctl("reload", "dirsync", check=False)
    assert result.returncode == 0, units.journal(after=mark)
    units.wait_for_status("delta " + SYNCED)
    assert units.show("dirsync", "MainPID") == pid
    assert "daemon.reloaded" in units.journal(after=mark)


def test_reload_with_a_bad_config_is_refused_visibly(units: Units) -> None:
    units.restart(units.config())
    units.wait_for_status("acme " + SYNCED, "beta " + SYNCED)
    units.write_config(units.config(daemon='max_parallel = "many"\n'))
    mark = units.cursor()
    result = units.systemctl("reload", "dirsync", check=False)
    status = units.status_text()
    # the file was read and rejected, and that shows where systemd shows it
    journal = units.journal(after=mark)
    assert "max_parallel" in journal, journal
    assert result.returncode != 0 or "reject" in status.lower(), status
    # the running config stays
    assert units.show("dirsync", "ActiveState") == "active"
    assert "acme" in status and "beta" in status


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel completes them) and never
    answers: a directory that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_watchdog_restarts_a_daemon_whose_run_hangs(units: Units, unanswering_port: int) -> None:
    # only the timing differs from the shipped unit: a minute's watchdog would slow the suite
    units.debian.write(
        "/etc/systemd/system/dirsync.service.d/zz-test-timing.conf",
        "[Service]\nWatchdogSec=4s\nRestartSec=1s\n",
    )
    units.systemctl("daemon-reload")
    hanging = organization_toml(
        "stuck", units.source("acme", url=f"ldap://127.0.0.1:{unanswering_port}", timeout="300s")
    )
    try:
        mark = units.cursor()
        units.restart(units.config(hanging, daemon='run_budget = "2s"\n'))
        first_pid = units.show("dirsync", "MainPID")
        wait_until(lambda: units.show("dirsync", "NRestarts") != "0", "a restart", 40)
        assert units.priorities("daemon.unhealthy", after=mark) == {"3"}  # error
        assert "Watchdog timeout" in units.journal(after=mark)
        wait_until(lambda: units.show("dirsync", "ActiveState") == "active", "the restart")
        assert units.show("dirsync", "MainPID") not in ("0", first_pid)
    finally:
        units.systemctl("kill", "--signal=SIGKILL", "dirsync", check=False)
        units.stop()
        units.debian.run("rm", "/etc/systemd/system/dirsync.service.d/zz-test-timing.conf")
        units.systemctl("daemon-reload")


def _install_timer_units(units: Units) -> None:
    units.debian.run(
        "sh", "-c", "cp /srv/dirsync-wheels/units/dirsync-sync@.* /etc/systemd/system/"
    )
    units.systemctl("daemon-reload")


def test_timer_template_is_scheduled_per_organization(units: Units) -> None:
    _install_timer_units(units)
    units.systemctl("enable", "--now", "dirsync-sync@acme.timer")
    try:
        assert units.show("dirsync-sync@acme.timer", "ActiveState") == "active"
        assert units.show("dirsync-sync@acme.timer", "Triggers") == "dirsync-sync@acme.service"
        listed = units.systemctl("list-timers", "--all", "--no-legend").stdout
        assert "dirsync-sync@acme.timer" in listed
    finally:
        units.systemctl("disable", "--now", "dirsync-sync@acme.timer")


def test_timer_template_one_shot_with_two_organizations(units: Units) -> None:
    _install_timer_units(units)
    units.stop()  # the daemon would hold acme's lock now and then (exit 4, skipped)
    units.write_config(units.config())
    mark = units.cursor()
    result = units.systemctl("start", "dirsync-sync@acme.service", check=False)
    journal = units.journal("dirsync-sync@acme.service", after=mark)
    assert result.returncode == 0, journal[-2000:]
    assert units.show("dirsync-sync@acme.service", "Result") == "success"
    assert units.show("dirsync-sync@acme.service", "ExecMainStatus") == "0"
    assert "Permission denied" not in journal


def test_a_root_one_shot_then_the_daemon(units: Units) -> None:
    # a client joins: the technician adds it and tries it by hand before restarting the daemon
    units.restart(units.config())
    units.wait_for_status("beta " + SYNCED)
    units.stop()
    units.write_config(units.config(organization_toml("delta", units.source("beta"))))
    mark = units.cursor()
    try:
        shot = units.dirsync("sync", "--org", "delta", check=False)
        # either it works, or it refuses at once and names the command to use instead
        assert shot.returncode == 0 or "systemctl" in shot.stderr, shot.stderr
        units.systemctl("start", "dirsync")
        status = units.wait_for_status("delta (applied|unchanged|failed)")
        journal = units.journal(after=mark)
        assert "delta failed" not in status, journal[-2000:]
        assert "Permission denied" not in journal
    finally:
        units.stop()
        # what root left behind must not poison the tests after this one
        units.debian.run(
            "find", "/var/lib/private/dirsync", "-user", "root", "-type", "f", "-delete"
        )


def test_stop(units: Units) -> None:
    units.restart(units.config())
    units.wait_for_status("acme " + SYNCED)
    mark = units.cursor()
    units.systemctl("stop", "dirsync")
    assert units.show("dirsync", "ActiveState") == "inactive"
    assert units.show("dirsync", "Result") == "success"
    journal = units.journal(after=mark)
    assert "daemon.stopping" in journal and "daemon.stopped" in journal
