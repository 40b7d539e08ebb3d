"""The plan: what one sync changes in an organization. Field names are the contract's keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from dirsync.organization import MemberStatus, RevokeReason


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry_run"
    REFUSED = "refused"
    FAILED = "failed"
    #: in the run history only: a run that has started and not yet finished
    RUNNING = "running"
    #: in the run history only: a run whose process died before it finished (nothing applied)
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    external_id: str
    email: str
    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "external_id": self.external_id, "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberUpdate:
    member_id: int
    external_id: str
    email: str
    name: str | None
    previous_email: str
    previous_name: str | None
    #: True when this links an unlinked member (no external id yet) to the directory user
    adopt: bool = False

    def to_json(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.email != self.previous_email:
            changes["email"] = {"before": self.previous_email, "after": self.email}
        if self.name != self.previous_name:
            changes["name"] = {"before": self.previous_name, "after": self.name}
        return {
            "email": self.email,
            "external_id": self.external_id,
            "adopt": self.adopt,
            "changes": changes,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    member_id: int
    external_id: str | None
    email: str
    reason: RevokeReason
    previous_status: MemberStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "external_id": self.external_id,
            "reason": str(self.reason),
            "previous_status": str(self.previous_status),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Restore:
    member_id: int
    external_id: str | None
    email: str
    to_status: MemberStatus

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "external_id": self.external_id, "status": str(self.to_status)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Remove:
    member_id: int
    external_id: str | None
    email: str
    previous_status: MemberStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "external_id": self.external_id,
            "previous_status": str(self.previous_status),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCreate:
    external_id: str
    name: str
    member_external_ids: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "external_id": self.external_id,
            "members": sorted(self.member_external_ids),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupUpdate:
    group_id: int
    external_id: str
    name: str
    previous_name: str
    add_member_ids: frozenset[str] = frozenset()
    remove_member_ids: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "external_id": self.external_id,
            "add_members": sorted(self.add_member_ids),
            "remove_members": sorted(self.remove_member_ids),
        }
        if self.name != self.previous_name:
            out["previous_name"] = self.previous_name
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDelete:
    group_id: int
    external_id: str | None
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "external_id": self.external_id}


PlanEntry = (
    Invite | MemberUpdate | Revoke | Restore | Remove | GroupCreate | GroupUpdate | GroupDelete
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    invite: tuple[Invite, ...] = ()
    update: tuple[MemberUpdate, ...] = ()
    revoke: tuple[Revoke, ...] = ()
    restore: tuple[Restore, ...] = ()
    remove: tuple[Remove, ...] = ()
    create_groups: tuple[GroupCreate, ...] = ()
    update_groups: tuple[GroupUpdate, ...] = ()
    delete_groups: tuple[GroupDelete, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {f.name: [e.to_json() for e in getattr(self, f.name)] for f in fields(self)}

    def digest(self) -> str:
        """A short content hash: the same changes give the same digest."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
