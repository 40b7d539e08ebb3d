"""Each log line reaches stderr in one write, dirsync's and the libraries' alike: the
scheduler's threads log at once, and a line written in two parts (the text, then its
newline) let another thread's line in between, which broke a JSON line in the journal (seen
in the nodes soak: ``{...}apscheduler.scheduler: Execution of job ... skipped``)."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from dirsync import logs


class RecordedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def isatty(self) -> bool:
        return False


def test_every_line_is_one_write_ending_in_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = RecordedWrites()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers = root.handlers[:]
    logs.configure("info", "json")
    try:
        logs.get_logger("dirsync").info("sync.applied", organization="acme")
        logging.getLogger("apscheduler.scheduler").warning("Execution of job skipped")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers

    assert len(stream.writes) == 2, stream.writes
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in stream.writes), stream.writes
    assert json.loads(stream.writes[0])["event"] == "sync.applied"
    assert stream.writes[1] == "apscheduler.scheduler: Execution of job skipped\n"


def test_a_library_exception_is_one_line_without_its_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As SQLAlchemy's pool logs a rollback that failed on a connection cut off mid-query."""
    stream = RecordedWrites()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers = root.handlers[:]
    logs.configure("info", "json")
    try:
        try:
            raise OSError("sending query failed: another command is already in progress\nmore")
        except OSError:
            pool = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
            pool.error("Exception during reset or similar", exc_info=True)
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers

    assert stream.writes == [
        "sqlalchemy.pool.impl.QueuePool: Exception during reset or similar: OSError: "
        "sending query failed: another command is already in progress\n"
    ]
