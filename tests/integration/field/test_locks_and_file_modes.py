"""Locks that work whoever ran first: root never leaves files in the service's folder, a lock
file nobody can open says whose it is and how to remove it, and every file is owner-only."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.daemon.schedule import write_schedule
from tests.integration.daemon.support import START, DaemonConfig
from tests.integration.field.test_secrets_per_organization import UNPRIVILEGED

SERVICE_UID = 65534  # stands in for the service's DynamicUser=


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def one_organization(setup: DaemonConfig) -> Path:
    config = setup.add("acme").write()
    config.chmod(0o600)  # it holds an inline password: else a warning comes first
    return config


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_uid, stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
    }


def chown_tree(folder: Path, uid: int) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid)


def test_root_refuses_to_sync_into_the_services_folder_and_names_the_unit_to_use(
    setup: DaemonConfig,
) -> None:
    config = one_organization(setup)
    assert run(config, "sync")[0] == 0
    chown_tree(setup.db.parent, SERVICE_UID)  # as if the service had created the store
    before = files_under(setup.db.parent)

    code, err = run(config, "sync", "--org", "acme")
    assert code == 2
    assert err == (
        f"dirsync: {setup.runtime_dir} belongs to uid {SERVICE_UID}, the service's user: run "
        "as root, dirsync would leave files there that the service cannot open. Instead: "
        "systemctl start dirsync-sync@acme\n"
    ).replace(f"uid {SERVICE_UID}", _owner(SERVICE_UID))
    code, err = run(config, "run")
    assert code == 2 and err.endswith("Instead: systemctl start dirsync\n")
    assert files_under(setup.db.parent) == before  # nothing created, nothing re-owned
    assert run(config, "status", "--json")[0] == 0  # reading as root is fine


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def test_a_lock_file_this_user_cannot_open_names_its_owner_and_the_fix(
    setup: DaemonConfig,
) -> None:
    config = one_organization(setup)
    setup.runtime_dir.mkdir(parents=True)
    lock = setup.runtime_dir / "acme.lock"
    lock.touch(mode=0o600)
    os.chown(lock, SERVICE_UID, SERVICE_UID)  # left by another user's sync
    command = [*UNPRIVILEGED, sys.executable, "-m", "dirsync", "--config", str(config), "sync"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (
        f"dirsync: cannot open the lock file {lock}: Permission denied; it belongs to "
        f"{_owner(SERVICE_UID)}, whose sync left it; remove it (sudo rm {lock}) and run "
        "syncs through the service (systemctl start dirsync-sync@acme)\n"
    )


def test_the_store_its_locks_and_the_schedule_are_owner_only_whatever_the_umask(
    setup: DaemonConfig,
) -> None:
    config = one_organization(setup)
    command = [sys.executable, "-m", "dirsync", "--config", str(config), "sync"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0)
    )
    assert done.returncode == 0, done.stderr
    previous = os.umask(0)
    try:
        write_schedule(setup.runtime_dir, {"acme": START})
    finally:
        os.umask(previous)
    modes = {name: mode for name, (_uid, mode) in files_under(setup.db.parent.parent).items()}
    assert modes == {
        "dirsync.toml": 0o600,  # the test's own
        "store": 0o700,
        "store/dirsync.db": 0o600,
        "store/dirsync.db.run": 0o700,
        "store/dirsync.db.run/acme.lock": 0o600,
        "store/dirsync.db.run/schedule.json": 0o600,
    }
