"""A process start loads only what a sync needs: no rich (structlog would), no alembic for a
fresh store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from dirsync import logs

_LOADED = """
import json, sys
{body}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def _loaded(body: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``body``."""
    result = subprocess.run(
        [sys.executable, "-c", _LOADED.format(body=body)],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout))


def test_the_command_line_starts_without_rich_or_alembic() -> None:
    loaded = _loaded("import dirsync.cli.main")
    assert {"dirsync", "structlog", "sqlalchemy", "click"} <= loaded
    assert not loaded & {"rich", "pygments", "alembic"}


def test_creating_a_fresh_store_does_not_import_alembic(tmp_path: Path) -> None:
    body = f"""
from dirsync.state.sql_store import SqlStore
SqlStore.open("sqlite:///{tmp_path / "fresh.db"}").close()
"""
    assert "alembic" not in _loaded(body)
    assert (tmp_path / "fresh.db").is_file()


def test_rich_stays_importable_after_structlog_loaded_without_it() -> None:
    loaded = _loaded("import dirsync.logs, rich.table")
    assert {"rich", "structlog"} <= loaded


def test_the_console_log_prints_an_exception_as_a_plain_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", "console")
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logs.get_logger("test").exception("sync.failed")
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert "sync.failed" in err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err


def test_the_executable_runs_the_command_line_with_the_collector_on_and_start_up_frozen() -> None:
    body = """
import gc
import dirsync.cli.main
dirsync.cli.main.main = lambda: print(json.dumps([gc.isenabled(), gc.get_freeze_count()]))
from dirsync.cli.entry import main
main()
"""
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + body], capture_output=True, text=True, check=True
    )
    enabled, frozen = json.loads(result.stdout)
    assert enabled is True
    assert frozen > 10_000  # the imported modules' objects, out of the collector's passes
