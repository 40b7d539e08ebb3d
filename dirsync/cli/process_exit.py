"""Ending the ``dirsync`` process once a command is done, without the interpreter's teardown.

A finished command has closed its store and its connections; what remains is the interpreter
freeing every module and object one by one (SQLAlchemy, pydantic, the read's values), which
measured 0.25-0.45 s on the benchmark machine: a third of a no-change sync. ``os._exit`` skips
that, after doing what a normal exit does besides: the ``atexit`` callbacks (logging's shutdown,
certifi's clean-up) and flushing standard output and error.

A normal exit also waits for non-daemon threads; when one is still running, it is used.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading


def exit_code_of(exc: SystemExit) -> int:
    """The status ``sys.exit`` would give: None → 0, an int as is, anything else printed → 1."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flush_all() -> bool:
    """Run the atexit callbacks, flush stdout and stderr; False if a flush failed (e.g. a
    closed pipe), for the normal exit to report it."""
    ok = True
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok


def may_exit_fast() -> bool:
    """No other non-daemon thread is running: a normal exit would not wait for anything."""
    return all(t.daemon or t is threading.main_thread() for t in threading.enumerate())


def finish(code: int) -> None:
    """End the process with ``code``: quickly when nothing is left to do, else normally."""
    if may_exit_fast() and _flush_all():
        os._exit(code)
    sys.exit(code)
