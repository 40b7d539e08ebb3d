"""Writing ``sync --json`` output a plan entry at a time.

``json.dumps`` of a first sync's result needs every plan entry as a dict plus the whole
document as one string (~50 MB at 100,000 invites, the process's peak of memory). This writes
the same bytes as ``json.dumps(value, default=str)`` (compact, the output for a pipe), but a
``Plan`` inside is encoded entry by entry: only one entry's dict exists at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

from dirsync.plan import Plan

Write = Callable[[str], Any]
#: plan entries encoded at a time
_BATCH = 1_000
#: characters handed on at a time by ``pieces``
PIECE = 64 * 1024


@contextmanager
def pieces(write: Write, size: int = PIECE) -> Iterator[Write]:
    """A ``write`` that hands ``write`` pieces of about ``size`` characters (the rest when
    the block ends, also on an error): ``write_json`` writes token by token, and on an
    unbuffered stdout (``PYTHONUNBUFFERED``) each token was a system call of its own, 35,000
    for the results of 500 organizations."""
    pending: list[str] = []
    held = 0

    def add(text: str) -> None:
        nonlocal held
        pending.append(text)
        held += len(text)
        if held >= size:
            write("".join(pending))
            pending.clear()
            held = 0

    try:
        yield add
    finally:
        if pending:
            write("".join(pending))


def write_json(value: Any, write: Write) -> None:
    """Write ``value`` as ``json.dumps(value, default=str)`` would, streaming any ``Plan``
    (as its ``to_json()``)."""
    if isinstance(value, Plan):
        _write_plan(value, write)
    elif isinstance(value, dict):
        write("{")
        for index, (key, item) in enumerate(value.items()):
            write((", " if index else "") + json.dumps(key) + ": ")
            write_json(item, write)
        write("}")
    elif isinstance(value, list | tuple) and any(isinstance(v, Plan | dict) for v in value):
        write("[")
        for index, item in enumerate(value):
            if index:
                write(", ")
            write_json(item, write)
        write("]")
    else:
        write(json.dumps(value, default=str))


def _write_plan(plan: Plan, write: Write) -> None:
    write("{")
    for index, field in enumerate(fields(plan)):
        write((", " if index else "") + json.dumps(field.name) + ": [")
        entries = getattr(plan, field.name)
        # a batch of entries per json.dumps (its C encoder): "[a, b]" is the batch's entries
        # joined by ", ", as in the whole list
        for start in range(0, len(entries), _BATCH):
            batch = [e.to_json() for e in entries[start : start + _BATCH]]
            write((", " if start else "") + json.dumps(batch, default=str)[1:-1])
        write("]")
    write("}")
