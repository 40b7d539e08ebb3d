"""At most ``[daemon] max_full_loads`` runs hold a whole organization at the same time.

A run that loads its whole organization (a first sync, a full re-read, a delta that cannot be
planned by difference) holds the stored members and mirror, the reading and the plan at once.
With ``max_parallel`` such runs side by side (every organization's daily full re-read, a
first cycle, a catch-up after a day of changes) the daemon held ``max_parallel`` organizations,
and what they freed stayed with the process: 143 MB at 200 organizations against 74 MB for a
one-shot ``sync`` of the same ones (bench/RESULTS.md). Quiet and scoped runs hold only what
changed and are not gated, so they keep running beside the full ones.

The gate is handed to ``run_organization``, which holds it from loading the whole
organization until its plan is applied; a run waiting for it keeps its thread and its lock.
"""

from __future__ import annotations

import threading
from types import TracebackType


class FullLoads:
    """A counting gate (a context manager) that tells how many hold it and wait for it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._count = threading.Lock()
        #: runs holding a whole organization now, the most there ever were at once, and the
        #: runs waiting for a slot
        self.holding = 0
        self.peak = 0
        self.waiting = 0

    def __enter__(self) -> FullLoads:
        with self._count:
            self.waiting += 1
        self._slots.acquire()
        with self._count:
            self.waiting -= 1
            self.holding += 1
            self.peak = max(self.peak, self.holding)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._count:
            self.holding -= 1
        self._slots.release()
