"""What an operator sees of the daemon: Prometheus metrics, ``status`` next runs, ``--check``."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from freezegun.api import FrozenDateTimeFactory
from prometheus_client.parser import text_string_to_metric_families

from dirsync.cli.main import cli
from dirsync.config.settings import load_config
from dirsync.daemon.metrics import Metrics
from dirsync.daemon.metrics_server import serve
from dirsync.daemon.scheduler import Daemon
from dirsync.state.sql_store import SqlStore
from dirsync.testing.scheduler import ManualScheduler
from dirsync.testing.store_files import sqlite_connection
from tests.integration.daemon.support import START, DaemonConfig


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape ``/metrics`` over HTTP and parse it with prometheus-client's own parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def cli_run(setup: DaemonConfig, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(setup.path), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_the_metrics_endpoint_reports_runs_changes_and_directory_size_per_organization(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m")
    setup.add("down", reachable=False, interval="10m")
    config = load_config(setup.write())
    metrics = Metrics(node="node-a")
    server = serve(metrics, "127.0.0.1:0")
    store = SqlStore.open(config.store.url)
    scheduler = ManualScheduler()
    daemon = Daemon(
        config, store=store, runtime_dir=setup.runtime_dir, metrics=metrics, scheduler=scheduler
    )
    try:
        daemon.start()
        scheduler.fire_due()
        frozen.tick(timedelta(minutes=10))
        scheduler.fire_due()
        daemon.problems()
        found = samples(server.port)
    finally:
        daemon.shutdown()
        server.close()
        store.close()

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("dirsync_runs_total", organization="acme", outcome="applied") == 1
    assert value("dirsync_runs_total", organization="acme", outcome="unchanged") == 1
    assert value("dirsync_runs_total", organization="down", outcome="failed") >= 2
    assert value("dirsync_changes_applied_total", organization="acme", kind="invite") == 3
    assert value("dirsync_changes_applied_total", organization="acme", kind="create_groups") == 1
    assert value("dirsync_directory_objects", organization="acme", kind="users") == 3
    assert value("dirsync_directory_objects", organization="acme", kind="groups") == 1
    last_success = START + timedelta(minutes=10)
    assert value("dirsync_last_success_timestamp_seconds", organization="acme") == (
        last_success.timestamp()
    )
    assert value("dirsync_last_run_duration_seconds", organization="acme") == 0
    assert value("dirsync_consecutive_failures", organization="down") >= 2
    assert value("dirsync_next_run_timestamp_seconds", organization="acme") == (
        (last_success + timedelta(minutes=10)).timestamp()
    )
    assert value("dirsync_scheduler_healthy") == 1
    assert value("dirsync_node_info", node="node-a") == 1  # whose runs these are
    assert ("dirsync_last_success_timestamp_seconds", (("organization", "down"),)) not in found


def test_status_shows_the_running_daemons_next_run_and_otherwise_last_run_plus_interval(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m")
    setup.add("down", reachable=False, interval="10m")
    setup.add("nightly", cron="30 2 * * *", interval="1d")
    config = load_config(setup.write())
    store = SqlStore.open(config.store.url)
    scheduler = ManualScheduler()
    daemon = Daemon(config, store=store, runtime_dir=setup.runtime_dir, scheduler=scheduler)
    daemon.start()
    scheduler.fire_due()
    try:
        code, out = cli_run(setup, "status", "--json")
        rows = {row["organization"]: row for row in json.loads(out)}
        assert code == 0
        assert rows["acme"]["next_run"] == "2026-03-02T09:10:00Z"
        assert rows["down"]["next_run"] == "2026-03-02T09:00:30Z"  # the retry, from the daemon
        assert rows["nightly"]["next_run"] == "2026-03-03T02:30:00Z"
    finally:
        daemon.shutdown()
        store.close()
    # no daemon: the last run plus the interval, or the next cron time after the last run
    rows = {row["organization"]: row for row in json.loads(cli_run(setup, "status", "--json")[1])}
    assert rows["down"]["next_run"] == "2026-03-02T09:10:00Z"
    assert rows["nightly"]["next_run"] == "2026-03-03T02:30:00Z"


def test_status_check_is_critical_once_an_organization_has_not_succeeded_for_n_intervals(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m", seats=5)
    setup.write()
    assert cli_run(setup, "status", "--check") == (
        2,
        "CRITICAL: acme has never synced successfully | 'acme_age'=U;;1800;0; "
        "'acme_seats'=0;;;0;5\n",
    )
    assert cli_run(setup, "sync")[0] == 0
    frozen.tick(timedelta(minutes=30))
    assert cli_run(setup, "status", "--check") == (
        0,
        "OK: 1 organization(s) synced within 3 intervals | 'acme_age'=1800s;;1800;0; "
        "'acme_seats'=3;;;0;5\n",
    )

    frozen.tick(timedelta(seconds=1))
    code, out = cli_run(setup, "status", "--check")
    assert code == 2
    assert out == (
        "CRITICAL: acme has not synced successfully since 2026-03-02T09:00:00Z "
        "(3 intervals of 0:10:00 allowed) | 'acme_age'=1801s;;1800;0; 'acme_seats'=3;;;0;5\n"
    )
    assert cli_run(setup, "status", "--check", "--intervals", "4")[0] == 0
    code, out = cli_run(setup, "status", "--check", "--json")
    assert code == 2 and json.loads(out)[0]["organization"] == "acme"


def test_db_upgrade_creates_the_schema_and_names_the_store_without_its_password(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    setup.add("acme")
    setup.write()
    code, out = cli_run(setup, "db", "upgrade")
    assert code == 0 and out == f"sqlite:///{setup.db}: the schema is up to date\n"
    with sqlite_connection(setup.db) as conn:
        tables: Any = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"organizations", "runs", "alembic_version"} <= tables
    assert cli_run(setup, "db", "upgrade")[0] == 0  # idempotent


def test_run_with_an_invalid_config_exits_2_naming_the_key(setup: DaemonConfig) -> None:
    setup.add("acme", interval="often")
    setup.write()
    result = CliRunner().invoke(cli, ["--config", str(setup.path), "run"])
    assert result.exit_code == 2
    assert "organization[acme].interval: 'often' is not a duration" in result.stderr


def test_run_with_its_metrics_port_taken_exits_1_with_a_clear_message(
    setup: DaemonConfig,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        setup.daemon["metrics_listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        setup.add("acme")
        setup.write()
        result = CliRunner().invoke(cli, ["--config", str(setup.path), "run"])
    assert result.exit_code == 1
    assert f"cannot serve metrics on {setup.daemon['metrics_listen']}" in result.stderr
    assert "([daemon] metrics_listen): Address already in use" in result.stderr
