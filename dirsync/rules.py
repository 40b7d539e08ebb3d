"""The sync rules of one organization, as plain values the pure mapping layer can take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from dirsync.organization import Permission


class Deprovision(StrEnum):
    REVOKE = "revoke"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, kw_only=True)
class RemovalLimit:
    """A count (``10``) or a share of the organization's members (``"10%"``)."""

    count: int | None = None
    percent: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.percent is None):
            raise ValueError("a RemovalLimit is a count or a percentage")

    def limit(self, members: int) -> int:
        """How many revocations + removals one run may make in an organization this size.

        A percentage rounds down but never below one, so that a small organization can still
        lose a single member without a deliberate approval.
        """
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, int(members * self.percent / 100))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.percent:g}%"


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionRule:
    """One ``[[organization.collection]]``: the groups (names or external ids) that reach it."""

    name: str
    external_id: str
    groups: tuple[str, ...] = ()
    permission: Permission = Permission.READ


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRules:
    users: bool = True
    groups: bool = True
    remove_disabled: bool = True
    overwrite_existing: bool = False
    deprovision: Deprovision = Deprovision.REVOKE
    max_removals: RemovalLimit = RemovalLimit(percent=10)
    #: 0 = unlimited
    seats: int = 0
    #: a read with fewer users than this share of the last good read is refused (0 = off)
    min_source_ratio: float = 0.5
    collections: tuple[CollectionRule, ...] = ()
    #: invitations pending longer than this are sent again; None = never
    reinvite_after: timedelta | None = None
    #: a new directory user whose address belongs to a member the sync deprovisioned (its
    #: entry deleted, now or before, and created again: a restore, a migration) takes that
    #: member over instead of being refused
    relink_recreated: bool = True
    #: the source pushes explicit changes (SCIM) rather than being read: no read can come back
    #: empty or short, so the guards against that (``min_source_ratio``, an empty directory) do
    #: not apply; a deletion is explicit and counts against ``max_removals`` like any other
    pushed: bool = False
    #: for a pushed source, ``max_removals`` counts the deprovisionings of this long before a
    #: push too, so that a burst of single deletions is refused like one big plan
    removal_window: timedelta = timedelta(hours=1)
