"""The ``Store`` port: exactly what one sync run asks of the organization store.

``sync.run`` takes a ``Store``, not a database. ``SqlStore`` (``sql_store.py``, on SQLAlchemy:
SQLite or PostgreSQL) is the implementation; ``tests/contract/`` runs the same scenarios
against every implementation. What the read commands, the administrator's changes and the
daemon's health checks use besides is ``SqlStore``'s own API, not part of this port.

The promises every implementation keeps:

- every write is one transaction: it commits whole or leaves the store as it was;
- ``apply`` and ``record_quiet_run`` write only if the organization's version is still the one
  the run loaded (``expected_version``): two runs, on one node or two, can never both apply;
- failures are ``StoreError`` (``ConcurrentRunError`` for a version conflict), never a
  foreign library's exception.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from dirsync.mapping.scope import ScopedOrganization
from dirsync.model import Cursor, DirectoryDelta, Mirror
from dirsync.plan import Plan
from dirsync.state.records import OpenedRun, RunRecord, StoredOrganization


class Store(Protocol):
    """The organization store as the sync shell uses it, in the order a run calls it."""

    def begin_run(self, organization: str, run: RunRecord) -> int:
        """Record ``run`` as running, closing the organization's stale running runs as
        interrupted; returns how many it closed."""
        ...

    def quick_look(self, organization: str) -> tuple[Cursor | None, int]:
        """The stored cursor and the organization's version, and nothing else (cheap)."""
        ...

    def open_run(self, organization: str, run: RunRecord) -> OpenedRun:
        """``begin_run`` and ``quick_look`` in one transaction (what a run that may be quiet
        asks first)."""
        ...

    def record_quiet_run(
        self,
        organization: str,
        *,
        cursor: Cursor | None,
        run: RunRecord,
        expected_version: int,
        reinvite_before: datetime | None = None,
    ) -> bool:
        """Record a run that changed nothing, and its new cursor, leaving the version as it
        is; False, with nothing written, if the version is no longer ``expected_version`` or
        (with ``reinvite_after``) a linked member's invitation last sent by
        ``reinvite_before`` is still pending: time alone changed the plan for it."""
        ...

    def load(self, organization: str) -> StoredOrganization:
        """The organization, its mirror, cursor and version; an empty one at version 0 if it
        was never written."""
        ...

    def known_ids(
        self, organization: str, user_ids: Collection[str], group_ids: Collection[str]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Which of these user and group ids the organization's mirror, members or groups
        hold (indexed look-ups): a delta's deletion of anything else changes nothing."""
        ...

    def held_refs(self, organization: str, ids: Collection[str]) -> dict[str, str]:
        """The refs under which the organization's mirror holds the users and groups with
        these external ids (id → ref; indexed look-ups): a delta read's ``held``."""
        ...

    def load_scoped(
        self,
        organization: str,
        delta: DirectoryDelta,
        *,
        seats: bool = False,
        reinvite_before: datetime | None = None,
        collection_groups: Collection[str] | None = None,
    ) -> ScopedOrganization | None:
        """Only what ``delta`` can change the plan for, with the whole organization's counts
        (see ``mapping.scope``); None when the organization was never written. With
        ``reinvite_after``, the members whose invitation was last sent by ``reinvite_before``
        are in the scope too; with collections (``collection_groups``: the groups they name,
        possibly none), every group they name or reach, and the collections."""
        ...

    def apply(
        self,
        organization: str,
        *,
        plan: Plan,
        mirror_before: Mirror,
        mirror_after: Mirror,
        cursor: Cursor | None,
        run: RunRecord,
        expected_version: int,
        now: datetime,
    ) -> int:
        """Write the plan, the mirror (from ``mirror_before`` to ``mirror_after``), the cursor,
        the run and one event per change in one transaction; returns the new version. Raises
        ``ConcurrentRunError`` if the version is no longer ``expected_version``."""
        ...

    def record_run(self, organization: str, run: RunRecord) -> None:
        """Record a run that changed nothing else (failed or refused), replacing the record
        of the same id written when it began."""
        ...
