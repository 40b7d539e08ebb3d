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
