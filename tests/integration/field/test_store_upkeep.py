"""The store's upkeep: ``keep_runs``/``keep_events`` prune old records, and ``db backup``
writes a consistent copy while a sync is in the middle of its write transaction."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from freezegun.api import FrozenDateTimeFactory

from dirsync.cli.main import cli
from dirsync.config.settings import load_config
from dirsync.daemon.scheduler import Daemon
from dirsync.state.sql_store import SqlStore
from dirsync.testing.scheduler import ManualScheduler
from dirsync.testing.store_files import sqlite_connection
from tests.integration.daemon.support import DaemonConfig
from tests.integration.daemon.test_daemon_process import HOOKED, Process, processes, wait_until

__all__ = ["processes"]  # the fixture, used here by name


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def rows(db: Path, statement: str) -> list[tuple[object, ...]]:
    with sqlite_connection(db) as conn:
        return conn.execute(statement).fetchall()


def test_old_runs_are_pruned_but_the_latest_and_latest_success_stay(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme")
    config = setup.write()
    assert run(config, "sync")[0] == 0  # applied: invitations, events
    frozen.tick(timedelta(days=1))
    assert run(config, "sync")[0] == 0  # unchanged: the latest success from now on
    frozen.tick(timedelta(days=1))
    assert run(config, "sync")[0] == 0
    setup.organizations["acme"]["source"]["url"] = "ldap://127.0.0.1:1"
    setup.write()
    frozen.tick(timedelta(days=100))
    assert run(config, "sync")[0] == 1  # failed; now every earlier run is beyond 90 days
    assert rows(setup.db, "SELECT outcome FROM runs ORDER BY started_at") == [
        ("unchanged",),  # the latest success, kept whatever its age
        ("failed",),  # the latest run
    ]
    assert len(json.loads(run(config, "events", "--org", "acme", "--json")[1])) == 4  # kept

    # [store] keep_events: the line goes into the [store] table, before [daemon]
    config.write_text(config.read_text().replace("[daemon]", 'keep_events = "30d"\n[daemon]', 1))
    frozen.tick(timedelta(minutes=1))
    assert run(config, "sync")[0] == 1
    assert json.loads(run(config, "events", "--org", "acme", "--json")[1]) == []
    code, out, _ = run(config, "status", "--check")
    assert code == 2 and "has not synced successfully since 2026-03-04T09:00:00Z" in out


def test_a_backup_taken_inside_a_syncs_write_transaction_is_the_store_before_it(
    setup: DaemonConfig, processes: Callable[..., Process], tmp_path: Path
) -> None:
    setup.add("acme")
    config = setup.write()
    assert run(config, "sync")[0] == 0
    setup.tree.add(setup.tree.person("dave"))
    marker = tmp_path / "in-apply"
    held = processes(
        ["-c", HOOKED, "hold", str(marker), "--config", str(config), "sync", "--json"],
        tmp_path / "held.log",
    )
    wait_until(lambda: marker.exists() and marker.read_text(), "the sync inside its apply")

    backup = tmp_path / "backups" / "dirsync.db"
    code, out, err = run(config, "db", "backup", str(backup))
    assert code == 0, err
    assert out == f"{setup.db} backed up to {backup} ({backup.stat().st_size} bytes)\n"
    Path(f"{marker}.release").touch()
    code, out = held.finish()
    assert code == 0 and json.loads(out)[0]["plan"]["invite"][0]["email"] == "dave@example.org"

    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert rows(backup, "PRAGMA integrity_check") == [("ok",)]
    assert rows(backup, "PRAGMA journal_mode") == [("delete",)]  # one file, whole on its own
    restored = tmp_path / "restored.toml"
    restored.write_text(config.read_text().replace(str(setup.db), str(backup)))
    members = json.loads(run(restored, "members", "--org", "acme", "--json")[1])
    assert sorted(m["email"] for m in members) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]  # not dave: his invitation was not committed when the copy was taken
    assert len(json.loads(run(config, "members", "--org", "acme", "--json")[1])) == 4


def test_a_backup_of_a_postgresql_store_or_a_missing_store_is_a_clear_error(
    setup: DaemonConfig, tmp_path: Path
) -> None:
    setup.add("acme")
    config = setup.write()
    code, _, err = run(config, "db", "backup", str(tmp_path / "b.db"))
    assert code == 1 and err == f"dirsync: there is no store at {setup.db}\n"
    config.write_text(
        config.read_text().replace(setup.store_url, "postgresql+psycopg://u:pw@db.example/d")
    )
    code, _, err = run(config, "db", "backup", str(tmp_path / "b.db"))
    assert code == 2 and "pg_dump" in err and "pw" not in err


def test_the_daemon_prunes_after_its_runs(
    setup: DaemonConfig, frozen: FrozenDateTimeFactory
) -> None:
    setup.add("acme", interval="10m")
    config = load_config(setup.write())
    store = SqlStore.open(config.store.url)
    scheduler = ManualScheduler()
    daemon = Daemon(config, store=store, runtime_dir=setup.runtime_dir, scheduler=scheduler)
    try:
        daemon.start()
        scheduler.fire_due()  # 09:00 applied
        frozen.tick(timedelta(minutes=10))
        scheduler.fire_due()  # 09:10 unchanged
        assert len(rows(setup.db, "SELECT id FROM runs")) == 2
        frozen.tick(timedelta(days=91))
        scheduler.fire_due()  # the runs of 91 days ago go; this one stays
    finally:
        daemon.shutdown()
        store.close()
    assert rows(setup.db, "SELECT outcome, started_at FROM runs") == [
        ("unchanged", "2026-06-01 09:10:00.000000")
    ]
