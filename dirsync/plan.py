"""The plan: what one sync changes in an organization. Field names are the contract's keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from dirsync.organization import MemberStatus, Permission, RevokeReason


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
    #: the external id a re-created directory user's member had (``relink_recreated``): the
    #: member is linked to ``external_id`` from now on
    previous_external_id: str | None = None

    @property
    def links(self) -> bool:
        """Whether this sets the member's external id (an adoption or a relink)."""
        return self.adopt or self.previous_external_id is not None

    def to_json(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.email != self.previous_email:
            changes["email"] = {"before": self.previous_email, "after": self.email}
        if self.name != self.previous_name:
            changes["name"] = {"before": self.previous_name, "after": self.name}
        if self.previous_external_id is not None:
            changes["external_id"] = {
                "before": self.previous_external_id,
                "after": self.external_id,
            }
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


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupAccess:
    """A group's access to a collection, as planned."""

    group_external_id: str
    group_name: str
    permission: Permission

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group_name,
            "group_external_id": self.group_external_id,
            "permission": str(self.permission),
        }


def _access_json(access: tuple[GroupAccess, ...]) -> list[dict[str, Any]]:
    return [a.to_json() for a in sorted(access, key=lambda a: (a.group_name, a.group_external_id))]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionCreate:
    external_id: str
    name: str
    access: tuple[GroupAccess, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "external_id": self.external_id,
            "access": _access_json(self.access),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionUpdate:
    """A rename and/or new group access; ``access`` replaces the collection's access whole."""

    collection_id: int
    external_id: str
    name: str
    previous_name: str
    access: tuple[GroupAccess, ...] = ()
    previous_access: tuple[GroupAccess, ...] = ()

    def to_json(self) -> dict[str, Any]:
        before = {a.group_external_id: a for a in self.previous_access}
        after = {a.group_external_id: a for a in self.access}
        granted = tuple(a for gid, a in after.items() if before.get(gid) != a)
        withdrawn = tuple(a for gid, a in before.items() if gid not in after)
        out: dict[str, Any] = {
            "name": self.name,
            "external_id": self.external_id,
            "grant": _access_json(granted),
            "withdraw": _access_json(withdrawn),
        }
        if self.name != self.previous_name:
            out["previous_name"] = self.previous_name
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Reinvite:
    """An invitation pending too long (``reinvite_after``), sent again."""

    member_id: int
    external_id: str | None
    email: str
    invited_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        sent = self.invited_at.isoformat().replace("+00:00", "Z") if self.invited_at else None
        return {"email": self.email, "external_id": self.external_id, "invited_at": sent}


PlanEntry = (
    Invite
    | MemberUpdate
    | Revoke
    | Restore
    | Remove
    | GroupCreate
    | GroupUpdate
    | GroupDelete
    | CollectionCreate
    | CollectionUpdate
    | Reinvite
)

#: the plan keys of the contract; later kinds are additive and kept out of an empty plan's digest
CONTRACT_KEYS = (
    "invite",
    "update",
    "revoke",
    "restore",
    "remove",
    "create_groups",
    "update_groups",
    "delete_groups",
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
    create_collections: tuple[CollectionCreate, ...] = ()
    update_collections: tuple[CollectionUpdate, ...] = ()
    reinvite: tuple[Reinvite, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {f.name: [e.to_json() for e in getattr(self, f.name)] for f in fields(self)}

    def digest(self) -> str:
        """A short content hash: the same changes give the same digest."""
        # the additive kinds count only when present, so a plan without them keeps the digest
        # it had before they existed (an approval by digest survives an upgrade)
        # The bytes of json.dumps(content, sort_keys=True, separators=(",", ":")), hashed a
        # thousand entries at a time (a batch's "[a,b]" is its entries joined by ","): a first
        # sync's 100,000 invites never exist as one JSON document (tens of MB at the run's
        # peak of memory).
        hasher = hashlib.sha256()
        keys = sorted(
            f.name for f in fields(self) if getattr(self, f.name) or f.name in CONTRACT_KEYS
        )
        hasher.update(b"{")
        for position, key in enumerate(keys):
            hasher.update(("," if position else "").encode() + _canonical(key).encode() + b":[")
            entries = getattr(self, key)
            for start in range(0, len(entries), _DIGEST_BATCH):
                batch = [e.to_json() for e in entries[start : start + _DIGEST_BATCH]]
                text = _canonical(batch)[1:-1]
                hasher.update(("," if start else "").encode() + text.encode())
            hasher.update(b"]")
        hasher.update(b"}")
        return hasher.hexdigest()[:16]


_DIGEST_BATCH = 1_000


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
