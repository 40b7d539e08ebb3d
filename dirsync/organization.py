"""The organization side: members with a lifecycle and roles, groups, and the desired state.

Values only, no I/O. ``OrganizationState`` is the organization as the store holds it;
``DesiredOrganization`` is what the directory says it should be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MemberStatus(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    REVOKED = "revoked"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    USER = "user"


class Permission(StrEnum):
    """What a group's members may do in a collection, weakest first."""

    READ_HIDE_PASSWORDS = "read_hide_passwords"
    READ = "read"
    EDIT = "edit"
    MANAGE = "manage"

    @property
    def rank(self) -> int:
        return list(Permission).index(self)


#: Roles a sync never revokes or removes: the MSP's own staff.
PROTECTED_ROLES = frozenset({Role.OWNER, Role.ADMIN})

#: Statuses that occupy a seat.
SEATED_STATUSES = frozenset({MemberStatus.INVITED, MemberStatus.ACCEPTED, MemberStatus.CONFIRMED})


class RevokeReason(StrEnum):
    """Why a member is revoked; a sync restores only what a sync revoked."""

    DISABLED = "disabled"
    DEPROVISIONED = "deprovisioned"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    id: int
    email: str
    external_id: str | None
    name: str | None
    status: MemberStatus
    role: Role = Role.USER
    #: the status to go back to when a revoked member is restored
    restore_status: MemberStatus | None = None
    revoked_reason: RevokeReason | None = None
    #: when the (last) invitation was sent; None when unknown
    invited_at: datetime | None = None

    @property
    def protected(self) -> bool:
        return self.role in PROTECTED_ROLES

    @property
    def seated(self) -> bool:
        return self.status in SEATED_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgGroup:
    id: int
    external_id: str | None
    name: str
    #: external ids of the members in the group (the sync manages linked members only)
    member_external_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionAccess:
    """One group's access to a collection."""

    group_external_id: str
    permission: Permission


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgCollection:
    id: int
    external_id: str | None
    name: str
    #: created from the config; the sync never touches any other collection
    managed: bool = True
    access: frozenset[CollectionAccess] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganizationState:
    name: str
    members: tuple[Member, ...] = ()
    groups: tuple[OrgGroup, ...] = ()
    collections: tuple[OrgCollection, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredUser:
    external_id: str
    email: str
    name: str | None
    disabled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredGroup:
    external_id: str
    name: str
    #: flattened membership: external ids of enabled desired users, nested groups included
    member_external_ids: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredOrganization:
    users: tuple[DesiredUser, ...]
    groups: tuple[DesiredGroup, ...]
    #: users the directory has but that cannot become members (no or duplicate email)
    skipped_user_ids: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()
