"""Keeping what the runs free from staying with the process (glibc's malloc, through ctypes).

What a run frees outside Python's own small-object allocator (SQLite's page cache and
writes, OpenSSL's buffers, large lists and strings) goes back to glibc's malloc, which keeps
it in the arena of the thread that allocated it: up to eight arenas per core, one per worker
thread here, each holding on to what its last runs left. Two calls bound that:

- ``limit_arenas`` at start-up, before the worker threads exist: the threads share two
  arenas (``mallopt(M_ARENA_MAX, 2)``, as ``MALLOC_ARENA_MAX=2`` would, but in the process,
  so it holds however the daemon is started). At 200 organizations it took the first
  cycle's peak from 154 to 147 MB and a full re-read's from 109 to 105 MB;
- ``give_back`` after every run: ``malloc_trim(0)`` returns the free pages of every arena
  to the system. It takes a few milliseconds. With one whole load at a time, a round of
  full re-reads left the daemon at 138 MB without it and 113 MB with it.

(bench/RESULTS.md, "Daemon memory in every phase" and "with the bound by default".) Where
malloc is not glibc's, or ctypes cannot load, neither happens. Both work under the unit's
``MemoryDenyWriteExecute=yes`` (the booted test reads ``daemon.started``'s ``memory_trim``):
a plain foreign call needs no executable memory, and the callback ctypes makes on import is
a libffi closure, which Debian 12's libffi 3.4 builds without a writable executable mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

#: glibc's ``mallopt`` parameter for the most arenas (malloc.h)
M_ARENA_MAX = -8
#: the arenas the daemon's threads share
ARENAS = 2


def limit_arenas(count: int = ARENAS) -> bool:
    """Let every thread share at most ``count`` malloc arenas; whether it could."""
    mallopt = _glibc("mallopt")
    return mallopt is not None and mallopt(M_ARENA_MAX, count) == 1


def give_back() -> bool:
    """Return the free memory of every malloc arena to the system; whether it could."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _glibc(name: str) -> Callable[..., int] | None:
    """One of glibc's malloc functions, or None (another libc, or ctypes unavailable).
    ctypes is imported here only: its import makes a callback, which a locked-down process
    could refuse; that costs the trimming, never the run."""
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), name, None)
    except (OSError, MemoryError, ImportError):
        return None
