"""Values the store hands out and takes in. ORM rows never leave ``state/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dirsync.model import Cursor, Mirror
from dirsync.organization import OrganizationState
from dirsync.plan import Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOrganization:
    """One organization as loaded before a run. ``version`` 0: never written."""

    state: OrganizationState
    mirror: Mirror
    cursor: Cursor | None
    version: int
    #: users in the last complete read that was applied (for shrink guards)
    last_user_count: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedRun:
    """A run just recorded as running, and what a quiet run needs to know from the store."""

    #: how many of the organization's runs left running were closed as interrupted
    closed: int
    #: the stored cursor, as ``Store.quick_look`` gives it
    cursor: Cursor | None
    #: the organization's version (0 for one never written)
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome
    full: bool
    counts: dict[str, int] = field(default_factory=dict)
    entries_read: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    plan_digest: str | None = None
    #: the host (``[daemon] node``) that ran it; None for runs recorded before 0006
    node: str | None = None
    #: the organization it belongs to, where a list spans several (``dirsync runs``)
    organization: str | None = None
    #: who the run's audit events name; None: the sync itself (``sync:<run id>``)
    actor: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``dirsync runs --json``'s entry (times ISO 8601 UTC)."""
        return {
            "organization": self.organization,
            "run_id": self.run_id,
            "node": self.node,
            "started": _iso(self.started_at),
            "finished": _iso(self.finished_at),
            "outcome": str(self.outcome),
            "counts": dict(self.counts),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberView:
    email: str
    external_id: str | None
    name: str | None
    status: str
    role: str
    groups: tuple[str, ...]
    #: when the invitation was last sent (the first one, or the latest re-invitation)
    invited_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "external_id": self.external_id,
            "name": self.name,
            "status": self.status,
            "role": self.role,
            "groups": list(self.groups),
            "invited_at": _iso(self.invited_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupView:
    name: str
    external_id: str | None
    members: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "external_id": self.external_id, "members": list(self.members)}


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionView:
    name: str
    external_id: str | None
    #: created from the config
    managed: bool
    #: (group name, permission), sorted
    groups: tuple[tuple[str, str], ...]
    #: emails of the members who reach it through its groups (nested groups flattened)
    members: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "external_id": self.external_id,
            "managed": self.managed,
            "groups": [{"name": g, "permission": p} for g, p in self.groups],
            "members": list(self.members),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganizationSummary:
    """One organization's members by status, and its invitations pending too long."""

    members: dict[str, int]
    stale_invitations: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EventView:
    at: datetime
    organization: str
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "organization": self.organization,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanApproval:
    """An administrator's approval of a refused push's plan (``state.approvals``)."""

    digest: str
    at: datetime
    actor: str
    #: a run applied the plan after the approval: it is spent
    used: bool = False
