"""``[[alert]]``: one webhook and one email per incident (not per retry), one ``recovered``
when it clears, and ``stale`` for an organization without a completed run for too long.
The daemon's real jobs run under frozen time against the real slapd; alerts go to a real
HTTPS receiver and a real SMTP server (STARTTLS) on loopback, both with a test CA."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from structlog.testing import capture_logs

from dirsync.config.resolve import resolve_secrets
from dirsync.config.settings import load_config
from dirsync.daemon.process import reload
from dirsync.daemon.scheduler import Daemon
from dirsync.daemon.systemd import Notifier
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import OrganizationLock
from dirsync.testing.alert_receivers import AlertReceivers
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig

TOKEN = "hook-t0ken-9d2e"


@pytest.fixture
def receivers() -> Iterator[AlertReceivers]:
    with AlertReceivers() as started:
        yield started


def alert_tables(receivers: AlertReceivers, token_file: Path) -> str:
    ca = receivers.ca_file
    return f'''
[[alert]]
type = "webhook"
url = "{receivers.webhook_url}"
secret_file = "{token_file}"
ca_file = "{ca}"
organizations = ["down"]

[[alert]]
type = "email"
smtp_url = "{receivers.smtp_url}"
from = "dirsync@msp.example"
to = ["noc@msp.example", "oncall@msp.example"]
ca_file = "{ca}"
'''


class Running:
    def __init__(self, setup: DaemonConfig) -> None:
        self.config = load_config(setup.path)
        resolve_secrets(self.config)  # as `dirsync run` does
        self.store = SqlStore.open(self.config.store.url)
        self.scheduler = ManualScheduler()
        self.daemon = Daemon(
            self.config, store=self.store, runtime_dir=setup.runtime_dir, scheduler=self.scheduler
        )
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.shutdown()
        self.store.close()


def test_one_alert_per_incident_one_recovered_and_stale(
    setup: DaemonConfig,
    frozen: FrozenDateTimeFactory,
    receivers: AlertReceivers,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "hook-token"
    token_file.write_text(TOKEN + "\n")
    setup.add("acme", interval="10m")
    setup.add("down", reachable=False, interval="10m")
    setup.add("slow", interval="10m")
    setup.extra = alert_tables(receivers, token_file)
    setup.write()
    slow_lock = OrganizationLock(setup.runtime_dir, "slow")
    slow_lock.acquire()  # every run of "slow" is skipped: it never completes one

    receivers.webhook_status = 503  # the first delivery fails ...
    running = Running(setup)
    try:
        with capture_logs() as logs:
            running.scheduler.fire_due()  # 09:00 acme applied, down failed
        assert any(e["event"] == "alert.not_delivered" for e in logs)
        receivers.webhook_status = 204
        frozen.tick(timedelta(seconds=30))
        running.scheduler.fire_due()  # down's retry fails: ... and is delivered now, once
        frozen.tick(timedelta(minutes=1))
        running.scheduler.fire_due()  # the next retry: nothing new
        posts, mails = receivers.received()
        assert [p["event"] for p in posts] == ["failed", "failed"]  # 503, then delivered
        assert [m["Subject"] for m in mails] == ["[dirsync] down: failed"]

        # a restarted daemon remembers the open incident: no second announcement
        running.stop()
        running = Running(setup)
        frozen.tick(timedelta(minutes=2))
        running.scheduler.fire_due()
        assert len(receivers.received()[0]) == 2 and len(receivers.received()[1]) == 1

        # 31 minutes after start "slow" has completed nothing in 3 intervals: stale, by email
        # only (the webhook is for "down" alone); reported once
        frozen.tick(timedelta(minutes=28))
        running.daemon.check_stale()
        frozen.tick(timedelta(minutes=5))
        running.scheduler.fire_due()
        running.daemon.check_stale()
        posts, mails = receivers.received()
        assert [m["Subject"] for m in mails] == [
            "[dirsync] down: failed",
            "[dirsync] slow: stale",
        ]
        assert len(posts) == 2

        # down's directory is back: one "recovered", to both
        setup.organizations["down"]["source"] = setup.source()
        setup.write()
        assert reload(running.daemon, Notifier(address=None), str(setup.path))
        frozen.tick(timedelta(minutes=10))
        running.scheduler.fire_due()
        frozen.tick(timedelta(minutes=10))
        running.scheduler.fire_due()  # unchanged: no second "recovered"
        slow_lock.release()
        frozen.tick(timedelta(minutes=10))
        running.scheduler.fire_due()  # slow completes its first run: recovered
    finally:
        running.stop()
        slow_lock.release()

    posts, mails = receivers.received()
    failed, _delivered, recovered = posts
    assert failed["organization"] == "down" and failed["since"] == "2026-03-02T09:00:00Z"
    assert set(failed) == {
        "organization", "event", "since", "run_id", "outcome", "error", "refusal"
    }  # fmt: skip
    assert failed["outcome"] == "failed" and "127.0.0.1" in failed["error"]
    assert failed["refusal"] == [] and failed["run_id"]
    assert recovered["event"] == "recovered" and recovered["organization"] == "down"
    assert recovered["since"] == "2026-03-02T09:00:00Z"
    assert recovered["outcome"] == "applied" and recovered["error"] is None
    with receivers.lock:
        headers: list[dict[str, Any]] = [p["headers"] for p in receivers.posts]
        envelopes = list(receivers.envelopes)
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in headers)
    assert [m["Subject"] for m in mails] == [
        "[dirsync] down: failed",
        "[dirsync] slow: stale",
        "[dirsync] down: recovered",
        "[dirsync] slow: recovered",
    ]
    assert envelopes[0] == ("dirsync@msp.example", ["noc@msp.example", "oncall@msp.example"])
    stale_body = mails[1].get_content()
    assert "event: stale" in stale_body and "slow has never synced successfully" in stale_body
    assert TOKEN not in "".join(m.as_string() for m in mails)


def test_an_alert_table_is_checked_like_any_other(setup: DaemonConfig) -> None:
    from click.testing import CliRunner

    from dirsync.cli.main import cli

    setup.add("acme")
    setup.extra = '\n[[alert]]\ntype = "webhook"\nurl = "http://hooks.example"\n'
    result = CliRunner().invoke(cli, ["--config", str(setup.write()), "config", "check"])
    assert result.exit_code == 2
    assert "alert[0].url: 'http://hooks.example' is not an https:// URL" in result.stderr
    setup.extra = '\n[[alert]]\ntype = "email"\nsmtp_url = "smtp://h"\nfrom = "a@b.c"\nto = "x"\n'
    result = CliRunner().invoke(cli, ["--config", str(setup.write()), "config", "check"])
    assert result.exit_code == 2 and "alert[0].to: 'x' is not an email address" in result.stderr
