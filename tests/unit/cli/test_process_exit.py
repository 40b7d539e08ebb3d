"""The process ends without the interpreter's teardown, but with everything a normal exit does
that matters: atexit callbacks, flushed output, the exit code, waiting for other threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dirsync.cli.process_exit import exit_code_of, may_exit_fast

_SCRIPT = """
import atexit, sys
from pathlib import Path
from dirsync.cli.process_exit import finish
atexit.register(lambda: Path({marker!r}).write_text("atexit ran"))
sys.stdout.write("x" * 1_000_000)  # more than a pipe buffer: only a flush gets it all out
print("done", file=sys.stderr, end="")
finish({code})
raise AssertionError("finish returned")
"""


@pytest.mark.parametrize("code", [0, 3])
def test_finish_runs_atexit_flushes_output_and_keeps_the_code(tmp_path: Path, code: int) -> None:
    marker = tmp_path / "marker"
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(marker=str(marker), code=code)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code
    assert result.stdout == "x" * 1_000_000
    assert result.stderr == "done"
    assert marker.read_text() == "atexit ran"


def test_a_running_non_daemon_thread_means_a_normal_exit() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)
    worker.start()
    try:
        assert not may_exit_fast()
    finally:
        release.set()
        worker.join()
    assert may_exit_fast()


def test_a_daemon_thread_does_not_hold_the_exit() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    try:
        assert may_exit_fast()
    finally:
        release.set()
        worker.join()


def test_exit_codes_follow_sys_exit(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code_of(SystemExit()) == 0
    assert exit_code_of(SystemExit(None)) == 0
    assert exit_code_of(SystemExit(4)) == 4
    assert exit_code_of(SystemExit("dirsync: bad")) == 1
    assert capsys.readouterr().err == "dirsync: bad\n"


def test_the_command_line_exits_with_the_commands_code(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = subprocess.run(
        [sys.executable, "-m", "dirsync", "--config", str(missing), "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr
