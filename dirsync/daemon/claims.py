"""Whose turn it is: the daemon's own schedule, or the one kept in a store shared by nodes.

Every node schedules every organization (``scheduler.py``), and a job that fires first takes
the organization's lock, then asks its ``Claims`` whether the run is this node's to make:

- ``LocalClaims`` (a SQLite store: one host, one daemon): always. The daemon's scheduler is
  the organization's schedule, as it always was.
- ``SharedClaims`` (a PostgreSQL store that several nodes may share): the organization's
  schedule row in the store (``state/schedules.py``). The first node to claim it once it is
  due runs it; the others find it not due and move their job to the time the store gives. So
  an organization runs once per interval whichever node runs it. When several nodes are up,
  each waits a short random pause before it claims, and the node that ran the organization
  last waits one pause longer: the next run goes to another node, which spreads the
  organizations (and their load) across all of them; a node alone loses at most two pauses.
  A claim leaves a lease of ``takeover``: if the node never reports back (killed, cut off),
  the others claim the organization once the lease has passed and its lock is free.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from dirsync.errors import StoreError
from dirsync.state.schedules import Claim
from dirsync.state.sql_store import SqlStore

log = structlog.get_logger("dirsync.daemon.claims")

#: the pause before a node claims a due organization (the race that spreads organizations
#: across nodes) is random up to this, and at most a tenth of the organization's interval
MAX_PAUSE = timedelta(seconds=1)


class Claims(Protocol):
    def claim(
        self, organization: str, now: datetime, *, failures: int, last_full: datetime | None
    ) -> Claim:
        """Whether this node runs ``organization`` now; ``failures`` and ``last_full`` are
        what this node knows (the shared schedule knows better)."""
        ...

    def finish(
        self,
        organization: str,
        claim: Claim,
        *,
        next_due: datetime | None,
        failures: int,
        last_full: datetime | None,
    ) -> None:
        """After the run: when it is due next, and what the next run needs to know."""
        ...

    def look_again(self, organization: str, now: datetime) -> datetime | None:
        """When to look again at an organization that another process holds (None: at the
        next regular run)."""
        ...

    def pause(self, organization: str, interval: timedelta) -> float:
        """Seconds to wait before claiming a due organization."""
        ...


class LocalClaims:
    """One daemon on its own store: every run is its own."""

    def claim(
        self, organization: str, now: datetime, *, failures: int, last_full: datetime | None
    ) -> Claim:
        return Claim(won=True, next_due=None, failures=failures, last_full=last_full)

    def finish(
        self,
        organization: str,
        claim: Claim,
        *,
        next_due: datetime | None,
        failures: int,
        last_full: datetime | None,
    ) -> None:
        return None

    def look_again(self, organization: str, now: datetime) -> datetime | None:
        return None

    def pause(self, organization: str, interval: timedelta) -> float:
        return 0.0


class SharedClaims:
    """The organization's schedule in the store, shared by every node (see the module)."""

    def __init__(self, store: SqlStore, *, node: str, takeover: timedelta) -> None:
        self.store = store
        self.node = node
        self.takeover = takeover
        #: the organizations whose latest claim was this node's
        self._ran_last: set[str] = set()
        self._lock = threading.Lock()

    def claim(
        self, organization: str, now: datetime, *, failures: int, last_full: datetime | None
    ) -> Claim:
        claim = self.store.claim_schedule(
            organization, node=self.node, now=now, lease_until=now + self.takeover
        )
        with self._lock:
            if claim.won:
                self._ran_last.add(organization)
            else:
                self._ran_last.discard(organization)
        return claim

    def finish(
        self,
        organization: str,
        claim: Claim,
        *,
        next_due: datetime | None,
        failures: int,
        last_full: datetime | None,
    ) -> None:
        if next_due is None:  # removed by a reload meanwhile: another node may still have it
            return
        try:
            latest = self.store.finish_schedule(
                organization,
                number=claim.number,
                next_due=next_due,
                failures=failures,
                last_full=last_full,
            )
        except StoreError as exc:  # the lease runs out: another node (or this one) runs it
            log.warning("daemon.schedule_not_saved", organization=organization, error=str(exc))
            return
        if not latest:
            log.warning("daemon.claim_taken_over", organization=organization, node=self.node)

    def look_again(self, organization: str, now: datetime) -> datetime | None:
        """While another node runs it: when its lease ends, and at least a quarter of
        ``takeover`` from now, so that a node that stalls is taken over soon after its lock
        is gone."""
        try:
            due = self.store.next_due(organization)
        except StoreError:
            due = None
        soonest = now + self.takeover / 4
        return max(due or soonest, soonest)

    def pause(self, organization: str, interval: timedelta) -> float:
        longest = min(MAX_PAUSE, interval / 10).total_seconds()
        with self._lock:
            yielding = longest if organization in self._ran_last else 0.0
        return yielding + random.uniform(0, longest)
