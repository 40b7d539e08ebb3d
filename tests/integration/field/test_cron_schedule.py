"""``cron`` is standard crontab (``1-5`` is Monday to Friday) in the organization's ``timezone``
(or ``[daemon] timezone``), run by the daemon's real APScheduler jobs under frozen time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun.api import FrozenDateTimeFactory

from dirsync.cli.main import cli
from dirsync.config.settings import load_config
from dirsync.daemon.schedule import next_after
from dirsync.daemon.scheduler import Daemon
from dirsync.state.sql_store import SqlStore
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2026, UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def run_cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_weekdays_1_to_5_run_monday_to_friday_at_8_in_the_daemons_time_zone(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.daemon["timezone"] = "Europe/Berlin"
    setup.add("acme", cron="0 8 * * 1-5", interval="1d")
    config = load_config(setup.write())
    store = SqlStore.open(config.store.url)
    scheduler = ManualScheduler()
    daemon = Daemon(config, store=store, runtime_dir=setup.runtime_dir, scheduler=scheduler)
    ran: list[datetime] = []
    try:
        daemon.start()  # Monday 2 March, 09:00 UTC: the first run comes at start
        for _ in range(8):
            when = daemon.next_run("acme")
            assert when is not None
            frozen.move_to(when)
            assert scheduler.fire_due() == 1
            ran.append(datetime.now(UTC))
    finally:
        daemon.shutdown()
        store.close()
    # 08:00 in Berlin: 07:00 UTC in winter; Monday to Friday, never Saturday or Sunday
    assert ran[1:] == [
        utc(3, 7),  # Tuesday
        utc(4, 7),
        utc(5, 7),
        utc(6, 7),  # Friday
        utc(9, 7),  # Monday
        utc(10, 7),
        utc(11, 7),
    ]
    code, out, _ = run_cli(setup.path, "status", "--json")
    assert code == 0
    # without the daemon: the next cron time after the last run, in UTC
    assert json.loads(out)[0]["next_run"] == "2026-03-12T07:00:00Z"


def test_an_organizations_own_time_zone_follows_daylight_saving_and_sunday_is_0_or_7(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", cron="30 6 * * 0", timezone="Europe/Berlin", interval="1d")
    setup.add("beta", cron="30 6 * * 7", interval="1d")  # [daemon] timezone: UTC by default
    config = load_config(setup.write())
    acme, beta = config.organization
    assert next_after(acme, utc(23, 0)) == utc(29, 4, 30)  # Sunday 29 March, CEST: UTC+2
    assert next_after(acme, utc(16, 0)) == utc(22, 5, 30)  # the Sunday before, CET: UTC+1
    assert next_after(beta, utc(23, 0)) == utc(29, 6, 30)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"cron": "0 8 * * 1-8"}, "'8' is neither 0-7 (0 and 7 are Sunday) nor a day name"),
        ({"cron": "0 8 * * 5-1"}, "the range '5-1' runs backwards"),
        ({"cron": "0 25 * * *"}, "is not a valid crontab expression"),
        ({"timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone"),
    ],
)
def test_config_check_refuses_a_bad_cron_or_time_zone_naming_the_key(
    setup: DaemonConfig, settings: dict[str, str], problem: str
) -> None:
    setup.add("acme", **settings)
    code, _, err = run_cli(setup.write(), "config", "check")
    key = "cron" if "cron" in settings else "timezone"
    assert code == 2
    assert f"organization[acme].{key}: " in err and problem in err


def test_config_check_accepts_standard_weekday_forms(setup: DaemonConfig) -> None:
    for expression in ("0 8 * * 1-5", "0 8 * * mon-fri", "0 8 * * 0,6", "0 8 1 * 1", "0 8 * * 5-7"):
        setup.add("acme", cron=expression, timezone="America/New_York")
        assert run_cli(setup.write(), "config", "check")[0] == 0, expression
