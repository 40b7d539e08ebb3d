"""Whatever the umask, what dirsync creates is its owner's alone: real ``dirsync sync``,
``db backup``, ``run`` and demo processes under umask 022 (cron's and a root shell's usual
one), then another local user tries to read what they left. The store sits in a folder its
administrator made ``0755``, so only the files' own modes stand between that user and the
members' addresses."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dirsync.state.upkeep import backup_sqlite
from tests.integration.daemon.support import DaemonConfig
from tests.integration.daemon.test_daemon_process import NotifySocket, wait_until

USUAL_UMASK = 0o022


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=30
    )


def under_umask(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(USUAL_UMASK),
        **kwargs,  # type: ignore[arg-type]
    )


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every local user may enter (``0755``), as ``/var/lib`` is."""
    folder = Path(tempfile.mkdtemp(prefix="dirsync-umask-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def in_shared_state(setup: DaemonConfig, shared: Path) -> Path:
    """The config (the test's own, 0600) with its store in ``shared/state``, a folder its
    administrator made 0755."""
    state = shared / "state"
    state.mkdir()
    state.chmod(0o755)
    setup.db = state / "dirsync.db"
    setup.add("acme", interval="1h")
    config = setup.write()
    config.chmod(0o600)
    return config


def test_sync_backup_and_daemon_under_umask_022_leave_nothing_another_user_can_read(
    setup: DaemonConfig, shared: Path, notify: NotifySocket
) -> None:
    config = in_shared_state(setup, shared)
    cli = [sys.executable, "-m", "dirsync", "--config", str(config)]
    done = under_umask([*cli, "sync"])
    assert done.returncode == 0, done.stderr
    backup = shared / "backups" / "dirsync.db"
    done = under_umask([*cli, "db", "backup", str(backup)])
    assert done.returncode == 0, done.stderr

    daemon = subprocess.Popen(
        [*cli, "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NOTIFY_SOCKET": notify.path},
        preexec_fn=lambda: os.umask(USUAL_UMASK),
    )
    try:
        notify.expect(lambda m: "acme unchanged, next" in m.get("STATUS", ""), "the daemon's run")
        wal = Path(f"{setup.db}-wal")
        wait_until(lambda: wal.exists() and Path(f"{setup.db}-shm").exists(), "-wal and -shm")
        found = modes(shared)
        files = {name: mode for name, mode in found.items() if (shared / name).is_file()}
        folders = {name: mode for name, mode in found.items() if (shared / name).is_dir()}
        assert set(files) >= {
            "state/dirsync.db",
            "state/dirsync.db-wal",
            "state/dirsync.db-shm",
            "state/dirsync.db.run/acme.lock",
            "state/dirsync.db.run/schedule.json",
            "backups/dirsync.db",
        }
        assert set(files.values()) == {0o600}, files
        assert folders == {"state": 0o755, "state/dirsync.db.run": 0o700, "backups": 0o700}

        control = shared / "state" / "control.txt"  # the same folder, a file made 0644
        control.write_text("alice@example.org\n")
        control.chmod(0o644)
        assert as_nobody("grep", "-c", "alice@example.org", str(control)).stdout == "1\n"
        for name in ("dirsync.db", "dirsync.db-wal", "dirsync.db-shm"):
            tried = as_nobody("grep", "-c", "alice@example.org", str(shared / "state" / name))
            assert tried.returncode == 2 and "Permission denied" in tried.stderr, name
        assert "Permission denied" in as_nobody("cat", str(backup)).stderr
        assert "Permission denied" in as_nobody("ls", str(setup.runtime_dir)).stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0


def test_a_store_others_can_read_is_warned_about_naming_the_chmod(
    setup: DaemonConfig, shared: Path, notify: NotifySocket
) -> None:
    config = in_shared_state(setup, shared)
    cli = [sys.executable, "-m", "dirsync", "--config", str(config)]
    assert under_umask([*cli, "sync"]).returncode == 0
    setup.db.chmod(0o644)  # as an older dirsync left it
    warning = (
        "the store's files are open to other users, who can read every member's address: "
        f"{setup.db} (mode 0644); chmod 600 {setup.db}"
    )
    for command in (["sync"], ["status", "--json"]):
        done = under_umask([*cli, *command])
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        assert f"dirsync: warning: {warning}" in lines, command
        assert any('"store.not_owner_only"' in line and "chmod 600" in line for line in lines)
    log = shared / "daemon.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [*cli, "run"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "NOTIFY_SOCKET": notify.path},
        )
        try:
            notify.expect(lambda m: m.get("READY") == "1", "READY=1")
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
    (event,) = [line for line in log.read_text().splitlines() if "store.not_owner_only" in line]
    assert f"chmod 600 {setup.db}" in event

    setup.db.chmod(0o600)
    done = under_umask([*cli, "sync"])
    assert done.returncode == 0 and "warning" not in done.stderr


def test_the_demo_leaves_its_folder_and_files_owner_only(shared: Path) -> None:
    demo = shared / "demo-data"
    done = under_umask([sys.executable, "-m", "dirsync.testing.demo", "--dir", str(demo)])
    assert done.returncode == 0, done.stderr
    assert "alice" in done.stdout or "@example.org" in done.stdout  # it synced
    assert stat.S_IMODE(demo.stat().st_mode) == 0o700
    found = modes(demo)
    assert {"dirsync.toml", "acme.password", "acme-ca.pem", "dirsync.db"} <= set(found)
    assert set(found.values()) <= {0o600, 0o700}, found


def test_a_backup_into_a_folder_everyone_may_write_follows_no_planted_link(
    setup: DaemonConfig, shared: Path
) -> None:
    config = in_shared_state(setup, shared)
    cli = [sys.executable, "-m", "dirsync", "--config", str(config)]
    assert under_umask([*cli, "sync"]).returncode == 0
    drop = shared / "drop"
    drop.mkdir()
    drop.chmod(0o1777)  # as /tmp
    victim = shared / "victim"
    victim.write_text("keep\n")
    backup = drop / "dirsync.db"
    assert as_nobody("ln", "-s", str(victim), str(backup)).returncode == 0  # planted

    done = under_umask([*cli, "db", "backup", str(backup)])
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "keep\n"
    assert not backup.is_symlink() and backup.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in drop.iterdir()] == ["dirsync.db"]  # its staging folder is gone


def test_a_backup_opens_nothing_at_a_name_another_user_could_guess(
    setup: DaemonConfig, shared: Path
) -> None:
    config = in_shared_state(setup, shared)
    synced = under_umask([sys.executable, "-m", "dirsync", "--config", str(config), "sync"])
    assert synced.returncode == 0, synced.stderr
    drop = shared / "drop"
    drop.mkdir()
    drop.chmod(0o1777)
    victim = shared / "victim"
    victim.write_text("keep\n")
    backup = drop / "dirsync.db"
    # what a name made of the process id would be, and SQLite's journal beside it
    for guess in (f".{backup.name}.{os.getpid()}.partial", f"{backup.name}-journal"):
        assert as_nobody("ln", "-s", str(victim), str(drop / guess)).returncode == 0
    backup_sqlite(setup.db, backup)
    assert victim.read_text() == "keep\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
