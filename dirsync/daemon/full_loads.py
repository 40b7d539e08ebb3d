"""At most ``[daemon] max_full_loads`` runs hold a whole organization at the same time.

A run that loads its whole organization (a first sync, a full re-read, a delta that cannot be
planned by difference) holds its reading, the stored members and mirror and the plan at once.
With ``max_parallel`` such runs side by side (every organization's daily full re-read, a
first cycle, a catch-up after a day of changes) the daemon held ``max_parallel`` organizations,
and what they freed stayed with the process: 143 MB at 200 organizations against 74 MB for a
one-shot ``sync`` of the same ones (bench/RESULTS.md). Quiet and scoped runs hold only what
changed and are not gated, so they keep running beside the full ones.

A run takes a read slot before its directory read and a load slot for its store's load, plan
and apply (``limit`` of each), and gives the read slot back once it has the load slot: so
with one of each, one run loads while the next reads, and no more than one finished reading
waits. Finished readings waiting side by side cost memory too: with the slot taken only after
the read, the eight runs' readings waited together and a round of full re-reads peaked at
1.59x the one-shot, against 1.41x this way (bench/RESULTS.md, "Daemon memory with the bound
by default"). A directory that is slow or stops answering must not hold up the others until
its read deadline: a read that outlasts ``PATIENCE`` lends its read slot to the others (a
stuck client delays their reads by that much, once). Slow reads go on side by side, which
costs little memory: readings pile up only where reads are fast next to loads.
"""

from __future__ import annotations

import threading
from types import TracebackType

#: how long a directory read holds its read slot before it lends it to the others (seconds):
#: a read of 2,000 entries from a nearby server takes about a tenth of a second
PATIENCE = 0.25


class FullLoads:
    """Two counting gates, ``limit`` slots each, for the runs that read and those that load,
    plan and apply; ``FullLoads()`` is one run's slot. Tells how many hold a load slot and
    wait for either."""

    def __init__(self, limit: int, *, patience: float = PATIENCE) -> None:
        self.limit = limit
        self.patience = patience
        self._reads = threading.BoundedSemaphore(limit)
        self._loads = threading.BoundedSemaphore(limit)
        self._count = threading.Lock()
        #: runs holding a load slot now, the most there ever were at once, the runs waiting
        #: for a slot (to read or to load), and how many slow reads lent theirs so far
        self.holding = 0
        self.peak = 0
        self.waiting = 0
        self.lent = 0

    def __call__(self) -> FullLoadSlot:
        return FullLoadSlot(self)

    def _wait(self, slots: threading.BoundedSemaphore) -> None:
        with self._count:
            self.waiting += 1
        slots.acquire()
        with self._count:
            self.waiting -= 1

    def _counted(self, change: int, *, lent: int = 0) -> None:
        with self._count:
            self.holding += change
            self.peak = max(self.peak, self.holding)
            self.lent += lent


class FullLoadSlot:
    """One run's slot (a context manager): a read slot on entry, before the directory read,
    lent to the others if the read outlasts the gate's patience; ``hold`` waits for a load
    slot for the store's load, the plan and the apply, and frees the read slot for the next
    run's read meanwhile."""

    def __init__(self, gate: FullLoads) -> None:
        self._gate = gate
        self._lock = threading.Lock()
        self._reading = False
        self._loading = False
        self._timer = threading.Timer(gate.patience, self._lend)
        self._timer.daemon = True

    def __enter__(self) -> FullLoadSlot:
        self._gate._wait(self._gate._reads)
        self._reading = True
        self._timer.start()
        return self

    def _lend(self) -> None:
        if self._stop_reading():
            self._gate._counted(0, lent=1)

    def _stop_reading(self) -> bool:
        """Give the read slot back, if this run still holds it."""
        with self._lock:
            reading, self._reading = self._reading, False
        if reading:
            self._gate._reads.release()
        return reading

    def hold(self) -> None:
        self._timer.cancel()
        self._gate._wait(self._gate._loads)  # its reading in hand, holding the read slot
        with self._lock:
            self._loading = True
        self._gate._counted(1)
        self._stop_reading()  # the next run may read while this one loads

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._stop_reading()
        with self._lock:
            loading, self._loading = self._loading, False
        if loading:
            self._gate._counted(-1)
            self._gate._loads.release()
