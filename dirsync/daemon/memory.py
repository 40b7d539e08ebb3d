"""Giving the memory a run freed back to the system (glibc's ``malloc_trim``).

What a run frees outside Python's own small-object allocator (SQLite's page cache and
writes, OpenSSL's buffers, large lists and strings) goes back to glibc's malloc, which keeps
it in the arena of the thread that allocated it: one arena per thread, up to ``max_parallel``
of them, each holding on to what its last runs left. ``malloc_trim(0)`` returns the free pages
of every arena to the system. It takes a few milliseconds, once per run. Measured at 200
organizations (bench/RESULTS.md, "Daemon memory in every phase"): with one whole load at a
time, a round of full re-reads left the daemon at 138 MB without it and 113 MB with it.
Where malloc is not glibc's, or ctypes cannot load, nothing is trimmed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache


def give_back() -> bool:
    """Return the free memory of every malloc arena to the system; whether it could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (another libc, or ctypes unavailable). ctypes is
    imported here only: its import makes a callback, which a locked-down process may refuse
    (systemd's ``MemoryDenyWriteExecute=``); that costs the trimming, never the run."""
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, MemoryError, ImportError):
        return None
