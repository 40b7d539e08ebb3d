"""Member lifecycle and roles outside the sync: what an administrator may do to a member. Pure.

invite → accept → confirm, as the password manager onboards people; ``revoke`` remembers the
status to restore to; roles are owner, admin, manager and user. The last confirmed owner of an
organization can never be removed, revoked or demoted, or nobody could manage it any more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from dirsync.errors import NotFound, TransitionRefused
from dirsync.organization import (
    SEATED_STATUSES,
    Member,
    MemberStatus,
    OrganizationState,
    RevokeReason,
    Role,
)


class AdminAction(StrEnum):
    ACCEPT = "accept"
    CONFIRM = "confirm"
    REVOKE = "revoke"
    RESTORE = "restore"
    SET_ROLE = "set-role"
    REMOVE = "remove"

    @property
    def event(self) -> str:
        """The audit event's action: ``member.accept``, ``member.set_role``, ..."""
        return "member." + self.value.replace("-", "_")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminChange:
    action: AdminAction
    before: Member
    #: None: the member is removed
    after: Member | None

    def before_json(self) -> dict[str, Any]:
        return _state(self.before)

    def after_json(self) -> dict[str, Any] | None:
        return None if self.after is None else _state(self.after)


def _state(member: Member) -> dict[str, Any]:
    out: dict[str, Any] = {"status": str(member.status), "role": str(member.role)}
    if member.status == MemberStatus.REVOKED:
        out["restore_status"] = str(member.restore_status) if member.restore_status else None
    return out


def find_member(state: OrganizationState, email: str) -> Member:
    wanted = email.strip().lower()
    for member in state.members:
        if member.email.lower() == wanted:
            return member
    raise NotFound(f"organization {state.name!r} has no member {wanted!r}")


def decide(
    state: OrganizationState,
    email: str,
    action: AdminAction,
    *,
    role: Role | None = None,
    seats: int = 0,
) -> AdminChange | None:
    """The change ``action`` makes, None when there is nothing to change (the same role);
    raises ``TransitionRefused`` when a rule forbids it, ``NotFound`` for an unknown email."""
    member = find_member(state, email)
    who = f"{member.email} is {member.status}"
    if action == AdminAction.ACCEPT:
        _require(member.status == MemberStatus.INVITED, f"only an invited member can accept; {who}")
        after: Member | None = replace(member, status=MemberStatus.ACCEPTED)
    elif action == AdminAction.CONFIRM:
        _require(
            member.status == MemberStatus.ACCEPTED,
            f"only an accepted member can be confirmed; {who}"
            + (" (the invitation must be accepted first)" if member.status == "invited" else ""),
        )
        after = replace(member, status=MemberStatus.CONFIRMED)
    elif action == AdminAction.REVOKE:
        _require(member.status != MemberStatus.REVOKED, f"{member.email} is already revoked")
        _keep_an_owner(state, member, f"revoke {member.email}")
        after = replace(
            member,
            status=MemberStatus.REVOKED,
            restore_status=member.status,
            revoked_reason=RevokeReason.ADMIN,
        )
    elif action == AdminAction.RESTORE:
        _require(
            member.status == MemberStatus.REVOKED, f"only a revoked member can be restored; {who}"
        )
        seated = sum(1 for m in state.members if m.status in SEATED_STATUSES)
        _require(
            not seats or seated < seats,
            f"no free seat: {seated} of {seats} seats are taken; revoke or remove someone first",
        )
        after = replace(
            member,
            status=member.restore_status or MemberStatus.INVITED,
            restore_status=None,
            revoked_reason=None,
        )
    elif action == AdminAction.SET_ROLE:
        if role is None:
            raise TransitionRefused("set-role needs a role: owner, admin, manager or user")
        if role == member.role:
            return None
        if role != Role.OWNER:
            _keep_an_owner(state, member, f"give {member.email} the role {role}")
        after = replace(member, role=role)
    else:
        _keep_an_owner(state, member, f"remove {member.email}")
        after = None
    return AdminChange(action=action, before=member, after=after)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TransitionRefused(message)


def last_confirmed_owner(state: OrganizationState, member: Member) -> bool:
    if member.role != Role.OWNER or member.status != MemberStatus.CONFIRMED:
        return False
    owners = [m for m in state.members if m.role == Role.OWNER and m.status == "confirmed"]
    return len(owners) == 1


def _keep_an_owner(state: OrganizationState, member: Member, what: str) -> None:
    _require(
        not last_confirmed_owner(state, member),
        f"cannot {what}: the last confirmed owner of {state.name!r}; confirm another owner first",
    )
