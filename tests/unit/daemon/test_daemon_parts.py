"""The daemon's small parts: sd_notify, watchdog, backoff, locks, schedule file, config keys."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dirsync.config.settings import parse_config
from dirsync.daemon.schedule import read_schedule, retry_delay, write_schedule
from dirsync.daemon.systemd import Notifier, watchdog_interval
from dirsync.errors import ConfigError
from dirsync.sync.locks import LockBusy, LockError, OrganizationLock, runtime_directory

SOURCE = {"type": "ldap", "url": "ldap://127.0.0.1", "base_dn": "dc=example,dc=org"}


def test_notify_sends_one_datagram_to_an_abstract_socket_with_status_on_one_line() -> None:
    name = f"dirsync-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(b"\0" + name.encode())
        server.settimeout(5)
        assert Notifier(address=f"@{name}").ready("acme applied\nnext 10:00")
        assert server.recv(4096) == b"READY=1\nSTATUS=acme applied next 10:00"


def test_notify_without_notify_socket_does_nothing() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled and not notifier.watchdog()


def test_a_missing_notify_socket_is_not_fatal(tmp_path: Path) -> None:
    assert not Notifier(address=str(tmp_path / "gone")).stopping()


def test_a_notify_socket_nobody_reads_drops_messages_instead_of_blocking(tmp_path: Path) -> None:
    # systemd's own sd_notify never blocks; a daemon stuck here would not act on SIGTERM
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        notifier = Notifier(address=str(path))
        sent: list[bool] = []
        sender = threading.Thread(
            target=lambda: sent.extend(notifier.watchdog() for _ in range(5000)), daemon=True
        )
        sender.start()
        sender.join(timeout=30)
        assert not sender.is_alive(), "sd_notify blocked on a socket nobody reads"
    assert sent[0]
    assert not sent[-1]


def test_watchdog_pings_at_half_the_interval_and_only_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}) == 1
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


def test_retry_delays_double_from_the_first_and_stop_at_the_ceiling() -> None:
    delays = [
        retry_delay(n, initial=timedelta(seconds=30), ceiling=timedelta(minutes=5))
        for n in range(1, 7)
    ]
    assert [d.total_seconds() for d in delays] == [30, 60, 120, 240, 300, 300]
    assert retry_delay(10_000, initial=timedelta(seconds=1), ceiling=timedelta(hours=1)) == (
        timedelta(hours=1)
    )


def test_a_second_holder_is_refused_with_the_first_holders_pid(tmp_path: Path) -> None:
    with OrganizationLock(tmp_path / "run", "acme"):
        with pytest.raises(LockBusy) as busy:
            OrganizationLock(tmp_path / "run", "acme").acquire()
        assert busy.value.exit_code == 4
        assert str(busy.value) == (
            f"skipped acme: another sync of it is running (pid {os.getpid()}); "
            "use --wait to wait for it"
        )
        OrganizationLock(tmp_path / "run", "globex").acquire()  # other organizations are free
    with OrganizationLock(tmp_path / "run", "acme") as again:
        assert again.held


def test_a_holder_names_its_own_pid_over_a_longer_one_a_dead_holder_left(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o700)
    (tmp_path / "run" / "acme.lock").write_text("4194304\n")  # the largest pid Linux gives
    busy = pytest.raises(LockBusy, match=rf"\(pid {os.getpid()}\)")
    with OrganizationLock(tmp_path / "run", "acme"), busy:
        OrganizationLock(tmp_path / "run", "acme").acquire()


def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    hold = (
        "import sys; from pathlib import Path; from dirsync.sync.locks import OrganizationLock; "
        "OrganizationLock(Path(sys.argv[1]), 'acme').acquire(); print('held', flush=True); "
        "sys.stdin.read()"
    )
    with subprocess.Popen(  # closes the pipes on the way out
        [sys.executable, "-c", hold, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        with pytest.raises(LockBusy):
            OrganizationLock(tmp_path, "acme").acquire()
        child.kill()
        child.wait()
    with OrganizationLock(tmp_path, "acme"):
        pass


def test_a_lock_file_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LockError, match=r"the lock file .*file/run/acme\.lock: Not a directory"):
        OrganizationLock(tmp_path / "file" / "run", "acme").acquire()


def test_locks_live_beside_a_sqlite_store_and_in_the_runtime_directory_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime_directory(f"sqlite:///{tmp_path}/dirsync.db") == Path(
        f"{tmp_path}/dirsync.db.run"
    )
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "rt"))
    assert runtime_directory("postgresql://u:p@db.example/dirsync") == tmp_path / "rt"
    assert runtime_directory("sqlite://") == tmp_path / "rt"


def test_the_schedule_file_counts_only_while_its_daemon_lives(tmp_path: Path) -> None:
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    write_schedule(tmp_path, {"acme": when, "globex": None})
    assert read_schedule(tmp_path) == {"acme": when, "globex": None}
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = (tmp_path / "schedule.json").read_text()
    (tmp_path / "schedule.json").write_text(text.replace(str(os.getpid()), dead.stdout.strip()))
    assert read_schedule(tmp_path) is None
    assert read_schedule(tmp_path / "nothing") is None


def test_daemon_and_schedule_keys_are_validated_with_their_key_paths() -> None:
    raw = {
        "daemon": {"metrics_listen": "localhost", "max_parallel": 0, "colour": "blue"},
        "organization": [
            {"name": "acme", "cron": "*/15 * * *", "source": SOURCE},
            {"name": "globex", "cron": "0 25 * * *", "jitter": "soon", "source": SOURCE},
        ],
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw, base_dir=Path("."))
    problems = "\n".join(error.value.problems)
    assert "daemon.metrics_listen: 'localhost' is not \"host:port\"" in problems
    assert "daemon.max_parallel: Input should be greater than or equal to 1" in problems
    assert "daemon.colour: unknown key" in problems
    assert "organization[acme].cron: '*/15 * * *' is not a crontab expression" in problems
    assert "organization[globex].cron: '0 25 * * *' is not a valid crontab expression" in problems
    assert "organization[globex].jitter: 'soon' is not a duration" in problems


def test_schedule_keys_accept_zero_jitter_cron_and_a_full_sync_interval() -> None:
    raw = {
        "daemon": {"metrics_listen": "[::1]:9479", "startup_jitter": 0},
        "organization": [
            {
                "name": "acme",
                "cron": "*/15 * * * *",
                "jitter": "0",
                "full_sync_interval": "1d",
                "source": SOURCE,
            }
        ],
    }
    config = parse_config(raw, base_dir=Path("."))
    org = config.get("acme")
    assert (org.cron, org.jitter, org.full_sync_interval) == (
        "*/15 * * * *",
        timedelta(0),
        timedelta(days=1),
    )
    assert config.daemon.startup_jitter == timedelta(0)
    assert config.daemon.metrics_listen == "[::1]:9479"
