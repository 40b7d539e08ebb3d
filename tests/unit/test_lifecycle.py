"""Every administrator transition, allowed and refused, and the last-owner rule. Pure."""

from __future__ import annotations

import pytest

from dirsync.errors import NotFound, TransitionRefused
from dirsync.lifecycle import AdminAction, decide
from dirsync.organization import Member, MemberStatus, OrganizationState, RevokeReason, Role
from dirsync.testing.builders import member, org

INVITED, ACCEPTED, CONFIRMED, REVOKED = (
    MemberStatus.INVITED,
    MemberStatus.ACCEPTED,
    MemberStatus.CONFIRMED,
    MemberStatus.REVOKED,
)


def one(status: MemberStatus, role: Role = Role.USER, **extra: object) -> OrganizationState:
    """An organization with bob in ``status`` and a confirmed owner who is not bob."""
    return org(
        member("owner@example.org", role=Role.OWNER),
        member("bob@example.org", status=status, role=role, **extra),
    )


def after(state: OrganizationState, action: AdminAction, **kwargs: object) -> Member | None:
    change = decide(state, "Bob@Example.org", action, **kwargs)  # type: ignore[arg-type]
    assert change is not None
    return change.after


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        (AdminAction.ACCEPT, INVITED, ACCEPTED),
        (AdminAction.CONFIRM, ACCEPTED, CONFIRMED),
        (AdminAction.REVOKE, INVITED, REVOKED),
        (AdminAction.REVOKE, ACCEPTED, REVOKED),
        (AdminAction.REVOKE, CONFIRMED, REVOKED),
    ],
)
def test_allowed_transitions_move_the_status(
    action: AdminAction, start: MemberStatus, end: MemberStatus
) -> None:
    moved = after(one(start), action)
    assert moved is not None and moved.status == end


@pytest.mark.parametrize(
    ("action", "start", "says"),
    [
        (AdminAction.ACCEPT, ACCEPTED, "only an invited member can accept"),
        (AdminAction.ACCEPT, CONFIRMED, "only an invited member can accept"),
        (AdminAction.ACCEPT, REVOKED, "only an invited member can accept"),
        (AdminAction.CONFIRM, INVITED, "the invitation must be accepted first"),
        (AdminAction.CONFIRM, CONFIRMED, "only an accepted member can be confirmed"),
        (AdminAction.CONFIRM, REVOKED, "only an accepted member can be confirmed"),
        (AdminAction.REVOKE, REVOKED, "already revoked"),
        (AdminAction.RESTORE, INVITED, "only a revoked member can be restored"),
        (AdminAction.RESTORE, ACCEPTED, "only a revoked member can be restored"),
        (AdminAction.RESTORE, CONFIRMED, "only a revoked member can be restored"),
    ],
)
def test_refused_transitions_say_why(action: AdminAction, start: MemberStatus, says: str) -> None:
    with pytest.raises(TransitionRefused, match=says) as info:
        decide(one(start), "bob@example.org", action)
    assert info.value.exit_code == 2
    assert "bob@example.org" in str(info.value)


def test_revoking_remembers_the_status_and_restoring_returns_to_it() -> None:
    revoked = after(one(ACCEPTED), AdminAction.REVOKE)
    assert revoked is not None
    assert (revoked.restore_status, revoked.revoked_reason) == (ACCEPTED, RevokeReason.ADMIN)
    state = org(member("owner@example.org", role=Role.OWNER), revoked)
    restored = after(state, AdminAction.RESTORE)
    assert restored is not None and restored.status == ACCEPTED
    assert restored.restore_status is None and restored.revoked_reason is None


def test_a_revoked_member_without_a_remembered_status_is_restored_as_invited() -> None:
    restored = after(one(REVOKED), AdminAction.RESTORE)
    assert restored is not None and restored.status == INVITED


def test_restoring_needs_a_free_seat() -> None:
    with pytest.raises(TransitionRefused, match="no free seat: 1 of 1"):
        decide(one(REVOKED), "bob@example.org", AdminAction.RESTORE, seats=1)
    assert after(one(REVOKED), AdminAction.RESTORE, seats=2) is not None


@pytest.mark.parametrize("role", list(Role))
def test_set_role_gives_any_of_the_four_roles(role: Role) -> None:
    change = decide(
        one(CONFIRMED, Role.MANAGER), "bob@example.org", AdminAction.SET_ROLE, role=role
    )
    if role == Role.MANAGER:
        assert change is None  # nothing to change, nothing recorded
    else:
        assert change is not None and change.after is not None and change.after.role == role
        assert change.before_json() == {"status": "confirmed", "role": "manager"}


def test_remove_removes_a_member_in_any_status() -> None:
    for status in MemberStatus:
        assert after(one(status), AdminAction.REMOVE) is None


def test_an_unknown_email_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"nobody@example\.org"):
        decide(one(INVITED), "nobody@example.org", AdminAction.ACCEPT)


# -- the last confirmed owner --------------------------------------------------------------------


def lone_owner() -> OrganizationState:
    return org(
        member("boss@example.org", role=Role.OWNER),
        member("new-owner@example.org", role=Role.OWNER, status=ACCEPTED),
        member("admin@example.org", role=Role.ADMIN),
    )


@pytest.mark.parametrize(
    ("action", "role"),
    [
        (AdminAction.REMOVE, None),
        (AdminAction.REVOKE, None),
        (AdminAction.SET_ROLE, Role.ADMIN),
        (AdminAction.SET_ROLE, Role.USER),
    ],
)
def test_the_last_confirmed_owner_can_never_be_removed_revoked_or_demoted(
    action: AdminAction, role: Role | None
) -> None:
    with pytest.raises(TransitionRefused, match="last confirmed owner"):
        decide(lone_owner(), "boss@example.org", action, role=role)


def test_with_a_second_confirmed_owner_the_first_may_go() -> None:
    state = lone_owner()
    change = decide(state, "new-owner@example.org", AdminAction.CONFIRM)
    assert change is not None and change.after is not None
    two = org(*(change.after if m.id == change.after.id else m for m in state.members))
    assert decide(two, "boss@example.org", AdminAction.REMOVE) is not None
    assert decide(two, "boss@example.org", AdminAction.SET_ROLE, role=Role.USER) is not None


def test_an_owner_who_is_not_confirmed_does_not_count_and_can_be_removed() -> None:
    change = decide(lone_owner(), "new-owner@example.org", AdminAction.REMOVE)
    assert change is not None and change.after is None
