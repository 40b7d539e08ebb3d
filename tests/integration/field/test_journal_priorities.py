"""Under systemd every line reaches the journal with the syslog priority of its level: stderr
is the journal's stream when ``$JOURNAL_STREAM`` names it, and each line then starts with the
sd-daemon ``<N>`` prefix that journald reads (``SyslogLevelPrefix=``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon.support import DaemonConfig


def stderr_as_journal(tmp_path: Path, command: list[str], *, journal: bool = True) -> list[str]:
    """Run ``command`` with stderr a file that ``$JOURNAL_STREAM`` names, as systemd does."""
    log = tmp_path / "stderr"
    with log.open("wb") as err:
        found = os.fstat(err.fileno())
        inode = found.st_ino if journal else found.st_ino + 1  # another file: not the journal
        env = {**os.environ, "JOURNAL_STREAM": f"{found.st_dev}:{inode}"}
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
    return log.read_text().splitlines()


def priorities(lines: list[str]) -> dict[str, int]:
    """event name -> the priority its line carried"""
    found = {}
    for line in lines:
        assert line.startswith("<") and line[2] == ">", line
        found[json.loads(line[3:])["event"]] = int(line[1])
    return found


def test_sync_lines_carry_the_priority_of_their_level(setup: DaemonConfig, tmp_path: Path) -> None:
    setup.add("acme")
    setup.add("down", reachable=False)
    config = setup.write()
    config.chmod(0o644)  # an inline password others may read: a warning
    command = [sys.executable, "-m", "dirsync", "--config", str(config), "sync"]
    found = priorities(stderr_as_journal(tmp_path, command))
    assert found["config.secrets_readable"] == 4
    assert found["sync.read_failed"] == 3
    assert found["sync.applied"] == 6
    # stderr elsewhere (a pipe, a file) keeps plain lines even with the variable inherited
    plain = stderr_as_journal(tmp_path, command, journal=False)
    assert plain and all(line.startswith("{") for line in plain)


def test_debug_lines_and_the_libraries_standard_logging_get_priorities_too(
    tmp_path: Path,
) -> None:
    program = (
        "import logging; from dirsync import logs; logs.configure('debug', 'console'); "
        "logs.get_logger('dirsync').debug('a.detail'); "
        "logging.getLogger('apscheduler.scheduler').error('Job raised'); "
        "logging.getLogger('alembic').warning('careful'); "
        "logging.getLogger('apscheduler').info('below warning: not shown')"
    )
    lines = stderr_as_journal(tmp_path, [sys.executable, "-c", program])
    assert len(lines) == 3, lines
    assert lines[0].startswith("<7>") and "a.detail" in lines[0]
    assert lines[1:] == ["<3>apscheduler.scheduler: Job raised", "<4>alembic: careful"]
