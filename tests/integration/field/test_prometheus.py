"""What Prometheus scrapes from the daemon: counters that exist at zero for every outcome, no
``_created`` series, build info, seats, the latest outcome, a duration histogram, and a
``/healthz`` that says 503 when the daemon is unhealthy."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from prometheus_client.parser import text_string_to_metric_families

from dirsync.config.settings import load_config
from dirsync.daemon.metrics import Metrics, dirsync_version
from dirsync.daemon.metrics_server import serve
from dirsync.daemon.process import reload as reload_config
from dirsync.daemon.scheduler import Daemon
from dirsync.daemon.systemd import Notifier
from dirsync.state.sql_store import SqlStore
from dirsync.testing.scheduler import ManualScheduler
from tests.integration.daemon.support import DaemonConfig

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(port: int) -> Samples:
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_series_exist_from_the_start_and_tell_seats_outcome_duration_and_health(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m", seats=2)  # three people: the first plan is refused
    config = load_config(setup.write())
    metrics = Metrics()
    server = serve(metrics, "127.0.0.1:0")
    store = SqlStore.open(config.store.url)
    scheduler = ManualScheduler()
    daemon = Daemon(
        config, store=store, runtime_dir=setup.runtime_dir, metrics=metrics, scheduler=scheduler
    )
    try:
        assert get(server.port, "/healthz") == (503, "starting\n")
        daemon.start()
        before = scrape(server.port)
        scheduler.fire_due()  # refused
        daemon.problems()
        assert get(server.port, "/healthz") == (200, "ok\n")
        refused = scrape(server.port)
        frozen.tick(timedelta(minutes=10))
        setup.organizations["acme"]["seats"] = 10
        setup.write()
        assert reload_config(daemon, Notifier(address=None), str(setup.path))
        scheduler.fire_due()  # applied
        applied = scrape(server.port)
        daemon.scheduler.shutdown(wait=False)
        daemon.problems()
        unhealthy = get(server.port, "/healthz")
        text = get(server.port, "/metrics")[1]
    finally:
        daemon.shutdown()
        server.close()
        store.close()

    assert "_created" not in text
    # every outcome is a series at 0 before the first run: a first refusal shows in increase()
    for outcome in ("applied", "unchanged", "refused", "failed"):
        assert value(before, "dirsync_runs_total", organization="acme", outcome=outcome) == 0
    assert value(before, "dirsync_changes_applied_total", organization="acme", kind="invite") == 0
    assert value(refused, "dirsync_runs_total", organization="acme", outcome="refused") == 1
    assert value(refused, "dirsync_last_run_outcome", organization="acme", outcome="refused") == 1
    assert value(refused, "dirsync_last_run_outcome", organization="acme", outcome="applied") == 0
    assert value(before, "dirsync_seats_total", organization="acme") == 2
    assert value(before, "dirsync_seats_used", organization="acme") == 0
    assert value(applied, "dirsync_seats_total", organization="acme") == 10
    assert value(applied, "dirsync_seats_used", organization="acme") == 3
    assert value(applied, "dirsync_last_run_outcome", organization="acme", outcome="applied") == 1
    assert value(applied, "dirsync_last_run_outcome", organization="acme", outcome="refused") == 0
    assert value(applied, "dirsync_run_duration_seconds_count", organization="acme") == 2
    assert value(applied, "dirsync_run_duration_seconds_bucket", organization="acme", le="0.5") == 2
    info = [k for k in applied if k[0] == "dirsync_build_info"]
    assert len(info) == 1 and dict(info[0][1])["version"] == dirsync_version()
    assert unhealthy == (503, "unhealthy: the scheduler is not running\n")
