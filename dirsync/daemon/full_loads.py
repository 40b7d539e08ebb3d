"""At most ``[daemon] max_full_loads`` runs hold a whole organization at the same time.

A run that loads its whole organization (a first sync, a full re-read, a delta that cannot be
planned by difference) holds its reading, the stored members and mirror and the plan at once.
With ``max_parallel`` such runs side by side (every organization's daily full re-read, a
first cycle, a catch-up after a day of changes) the daemon held ``max_parallel`` organizations,
and what they freed stayed with the process: 143 MB at 200 organizations against 74 MB for a
one-shot ``sync`` of the same ones (bench/RESULTS.md). Quiet and scoped runs hold only what
changed and are not gated, so they keep running beside the full ones.

A run takes its slot before its directory read, because a finished reading waiting for a
slot costs memory too: with the slot taken only after the read, the eight runs' readings
waited side by side and a round of full re-reads peaked at 1.59x the one-shot instead of
1.47x (bench/RESULTS.md, "Daemon memory ... the slot and the read"). But a directory that is
slow or stops answering must not hold up the others' whole loads until its read deadline: a
read that outlasts ``PATIENCE`` lends its slot to the others, and its run takes a slot again
for its load, plan and apply. So at most ``limit`` runs ever load, plan and apply at once,
and at most ``limit`` plus the slow readers hold a reading; a stuck directory delays the
others' whole loads by ``PATIENCE`` at most.
"""

from __future__ import annotations

import threading
from types import TracebackType

#: how long a directory read holds its slot before it lends it to the others (seconds): a
#: healthy read of a few thousand entries takes a fraction of it
PATIENCE = 1.0


class FullLoads:
    """A counting gate that tells how many hold it and wait for it; ``FullLoads()`` is one
    run's slot."""

    def __init__(self, limit: int, *, patience: float = PATIENCE) -> None:
        self.limit = limit
        self.patience = patience
        self._slots = threading.BoundedSemaphore(limit)
        self._count = threading.Lock()
        #: runs holding a slot now, the most there ever were at once, the runs waiting for
        #: one, and how many slow reads lent theirs so far
        self.holding = 0
        self.peak = 0
        self.waiting = 0
        self.lent = 0

    def __call__(self) -> FullLoadSlot:
        return FullLoadSlot(self)

    def _take(self) -> None:
        with self._count:
            self.waiting += 1
        self._slots.acquire()
        with self._count:
            self.waiting -= 1
            self.holding += 1
            self.peak = max(self.peak, self.holding)

    def _give(self, *, lent: bool = False) -> None:
        with self._count:
            self.holding -= 1
            self.lent += lent
        self._slots.release()


class FullLoadSlot:
    """One run's slot (a context manager): taken on entry, before the directory read; lent
    to the others if the read outlasts the gate's patience; ``hold`` keeps it (taking it
    again if lent) from the store's load to the end of the run."""

    def __init__(self, gate: FullLoads) -> None:
        self._gate = gate
        self._lock = threading.Lock()
        self._held = False
        self._lendable = True
        self._timer = threading.Timer(gate.patience, self._lend)
        self._timer.daemon = True

    def __enter__(self) -> FullLoadSlot:
        self._gate._take()
        self._held = True
        self._timer.start()
        return self

    def _lend(self) -> None:
        with self._lock:
            if not (self._held and self._lendable):
                return
            self._held = False
        self._gate._give(lent=True)

    def hold(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._lendable = False
            if self._held:
                return
        self._gate._take()  # lent during a slow read: wait for a slot like any other run
        with self._lock:
            self._held = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        with self._lock:
            held, self._held, self._lendable = self._held, False, False
        if held:
            self._gate._give()
