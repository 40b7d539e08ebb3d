"""``dirsync run`` and ``dirsync sync`` as real processes against the real slapd and SQLite.

sd_notify messages arrive on a real AF_UNIX datagram socket set as ``NOTIFY_SOCKET``; signals
are real signals. Every wait polls for a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.testing.store_files import sqlite_connection
from tests.integration.daemon.support import DaemonConfig

DEADLINE = 20.0

#: runs the dirsync CLI with a hook inside the store's apply transaction (after the members
#: are written, before the commit); argv: mode, marker file, then the CLI's arguments
HOOKED = """
import os, signal, sys, time
from pathlib import Path
from dirsync.state import apply
from dirsync.cli.main import main

mode, marker = sys.argv[1], Path(sys.argv[2])

def hook(stage):
    if stage != "after_members":
        return
    marker.write_text(str(os.getpid()))
    if mode == "term":  # one SIGTERM mid-transaction; the run goes on for a moment
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
    elif mode == "term-twice":  # two SIGTERMs mid-transaction, then a run that never ends
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    elif mode == "hold":  # hold the transaction (and the lock) until the test releases it
        release = Path(str(marker) + ".release")
        deadline = time.monotonic() + 30
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

apply._fault_hook = hook
sys.argv = ["dirsync", *sys.argv[3:]]
main()
"""


def wait_until(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class NotifySocket:
    """The systemd side of sd_notify: a bound AF_UNIX datagram socket and what arrived on it."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="dsn")  # a short path: sun_path is 108 bytes
        self.path = os.path.join(self.directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def expect(self, predicate: Callable[[dict[str, str]], bool], what: str) -> dict[str, str]:
        """The next message (after those already returned) for which ``predicate`` holds."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            message = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(message)
            if predicate(message):
                return message
        raise AssertionError(f"no sd_notify message {what}; got {self.messages[-5:]}")

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.directory)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


class Process:
    """A dirsync child process whose stderr (JSON logs) goes to a file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e.get("event") == name), None)

    def finish(self, timeout: float = DEADLINE) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        self._stderr.close()
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
        started.append(Process(args, log, env))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def store_rows(db: Path, statement: str) -> list[tuple[Any, ...]]:
    with sqlite_connection(db) as conn:
        return conn.execute(statement).fetchall()


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = [r[0] for r in store_rows(db, "SELECT name FROM sqlite_master WHERE type='table'")]
    return {t: sorted(store_rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}


def test_sd_notify_ready_status_watchdog_reload_and_stop_on_a_real_socket(
    setup: DaemonConfig, notify: NotifySocket, processes: Callable[..., Process], tmp_path: Path
) -> None:
    setup.add("acme", interval="1h")
    setup.write()
    daemon = processes(
        ["-m", "dirsync", "--config", str(setup.path), "run"],
        tmp_path / "daemon.log",
        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"},
    )
    ready = notify.expect(lambda m: m.get("READY") == "1", "READY=1")
    assert ready["STATUS"].startswith("acme ")
    notify.expect(lambda m: "acme applied, next" in m.get("STATUS", ""), "STATUS after the run")
    notify.expect(lambda m: m.get("WATCHDOG") == "1", "WATCHDOG=1")
    notify.expect(lambda m: m.get("WATCHDOG") == "1", "a second WATCHDOG=1")

    # SIGHUP with a valid config: a second organization is added and runs at once
    setup.add("globex", interval="1h")
    setup.write()
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = notify.expect(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
    assert reloading["MONOTONIC_USEC"].isdigit()
    assert "globex" in notify.expect(lambda m: m.get("READY") == "1", "READY=1")["STATUS"]
    notify.expect(lambda m: "globex applied" in m.get("STATUS", ""), "globex's first run")

    # SIGHUP with an invalid config: logged, and both organizations keep running
    setup.extra = '[organization.sync]\nmax_removals = "lots"\n'
    setup.write()
    daemon.proc.send_signal(signal.SIGHUP)
    notify.expect(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
    status = notify.expect(lambda m: m.get("READY") == "1", "READY=1")["STATUS"]
    assert "acme applied" in status and "globex applied" in status
    failed = wait_until(lambda: daemon.event("daemon.reload_failed"), "daemon.reload_failed")
    assert any("organization[globex].sync.max_removals" in p for p in failed["problems"])
    notify.expect(lambda m: m.get("WATCHDOG") == "1", "WATCHDOG=1 after the failed reload")

    daemon.proc.send_signal(signal.SIGTERM)
    notify.expect(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
    code, _ = daemon.finish()
    assert code == 0
    assert daemon.event("daemon.stopped") is not None
    assert setup.tree.server.reader_password not in daemon.log.read_text()
    assert not (setup.runtime_dir / "schedule.json").exists()


def test_sigterm_during_a_run_lets_its_transaction_commit_whole_then_exits_0(
    setup: DaemonConfig, processes: Callable[..., Process], tmp_path: Path
) -> None:
    setup.add("acme", interval="1h")
    setup.write()
    marker = tmp_path / "in-apply"
    daemon = processes(
        ["-c", HOOKED, "term", str(marker), "--config", str(setup.path), "run"],
        tmp_path / "daemon.log",
    )
    code, _ = daemon.finish()
    assert code == 0, daemon.log.read_text()
    assert marker.exists()
    names = [e["event"] for e in daemon.events()]
    assert (
        names.index("daemon.stopping") < names.index("sync.applied") < names.index("daemon.stopped")
    )
    assert daemon.event("daemon.stopping")["waiting_for"] == ["acme"]  # type: ignore[index]
    assert len(store_rows(setup.db, "SELECT email FROM members")) == 3
    assert store_rows(setup.db, "SELECT outcome FROM runs") == [("applied",)]


def test_a_second_sigterm_exits_at_once_and_the_open_transaction_leaves_nothing(
    setup: DaemonConfig, processes: Callable[..., Process], tmp_path: Path
) -> None:
    setup.add("acme", interval="1h")
    setup.write()
    assert CliRunner().invoke(cli, ["--config", str(setup.path), "sync"]).exit_code == 0
    setup.tree.add(setup.tree.person("dave"))
    before = dump(setup.db)

    started = time.monotonic()
    daemon = processes(
        ["-c", HOOKED, "term-twice", str(tmp_path / "m"), "--config", str(setup.path), "run"],
        tmp_path / "daemon.log",
    )
    code, _ = daemon.finish()
    assert code == 128 + signal.SIGTERM
    assert time.monotonic() - started < 15  # not the hook's 60 s
    assert "second signal, exiting at once" in daemon.log.read_text()
    after = dump(setup.db)
    runs_before, runs_after = before.pop("runs"), after.pop("runs")
    assert after == before
    (killed,) = set(runs_after) - set(runs_before)
    assert killed[4] == "running"  # the history shows the run that never finished

    result = CliRunner().invoke(cli, ["--config", str(setup.path), "sync", "--json"])
    assert [i["email"] for i in json.loads(result.stdout)[0]["plan"]["invite"]] == [
        "dave@example.org"
    ]
    outcomes = dict(store_rows(setup.db, "SELECT id, outcome FROM runs"))
    assert outcomes[killed[0]] == "interrupted"


def _blocked_on_flock(pid: int) -> bool:
    """Whether ``pid`` waits for a flock (``/proc/locks`` lists waiters with ``->``)."""
    return any(
        "->" in line and " FLOCK " in line and f" {pid} " in line
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_two_syncs_of_one_organization_never_run_at_once(
    setup: DaemonConfig, processes: Callable[..., Process], tmp_path: Path
) -> None:
    setup.add("acme", interval="1h")
    setup.write()
    config = ["--config", str(setup.path)]
    marker = tmp_path / "in-apply"
    first = processes(
        ["-c", HOOKED, "hold", str(marker), *config, "sync", "--json"], tmp_path / "first.log"
    )
    holder = int(wait_until(lambda: marker.exists() and marker.read_text(), "the first apply"))

    second = subprocess.run(
        [sys.executable, "-m", "dirsync", *config, "sync", "--json"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert second.returncode == 4
    (skipped,) = json.loads(second.stdout)
    assert skipped["organization"] == "acme" and skipped["outcome"] == "skipped"
    assert f"skipped acme: another sync of it is running (pid {holder})" in second.stderr

    waiting = processes(["-m", "dirsync", *config, "sync", "--wait", "--json"], tmp_path / "w.log")
    wait_until(lambda: _blocked_on_flock(waiting.proc.pid), "the --wait sync to block on the lock")
    Path(f"{marker}.release").touch()

    code, out = first.finish()
    assert code == 0 and json.loads(out)[0]["outcome"] == "applied"
    code, out = waiting.finish()
    assert code == 0 and json.loads(out)[0]["outcome"] == "unchanged"  # it ran after the first
    assert store_rows(setup.db, "SELECT outcome FROM runs ORDER BY started_at") == [
        ("applied",),
        ("unchanged",),
    ]
