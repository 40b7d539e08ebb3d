"""The pure core, rule by rule, with plain values."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from dirsync.errors import PlanRefused
from dirsync.mapping.desired import desired_organization
from dirsync.mapping.groups import flatten_groups
from dirsync.mapping.pipeline import plan_run
from dirsync.model import DirectoryDelta, DirectoryGroup, Mirror, Reading, username_ref
from dirsync.organization import (
    Member,
    MemberStatus,
    OrganizationState,
    OrgGroup,
    RevokeReason,
    Role,
)
from dirsync.plan import Plan
from dirsync.rules import Deprovision, RemovalLimit, SyncRules
from dirsync.testing.builders import apply_plan, group, member, mirror, org, reading, user

LENIENT = SyncRules(max_removals=RemovalLimit(percent=100))


def plan_for(
    current: OrganizationState,
    read: Reading,
    rules: SyncRules = LENIENT,
    previous: Mirror | None = None,
) -> Plan:
    return plan_run(mirror=previous or Mirror(), reading=read, current=current, rules=rules).plan


#: what the pure core may stand on besides the standard library: the value modules
VALUES = {
    "dirsync.errors",
    "dirsync.model",
    "dirsync.organization",
    "dirsync.plan",
    "dirsync.rules",
}
FOREIGN = (
    "ldap3", "httpx", "msal", "sqlalchemy", "alembic", "structlog", "pydantic",
    "apscheduler", "click", "rich", "prometheus_client",
)  # fmt: skip


def test_the_mapping_layer_imports_no_io_library() -> None:
    """Every module under ``dirsync/mapping/`` (found by walking the folder, not listed by
    hand), imported in a fresh interpreter, loads no foreign library and no dirsync module
    outside the mapping layer and the value modules."""
    code = (
        "import importlib, json, pkgutil, sys, dirsync.mapping as m\n"
        "names = [i.name for i in pkgutil.walk_packages(m.__path__, 'dirsync.mapping.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(json.dumps([names, sorted(sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    walked, loaded = json.loads(out.stdout)
    assert {"dirsync.mapping.pipeline", "dirsync.mapping.scope", "dirsync.mapping.diff"} <= set(
        walked
    )
    assert not {name.split(".")[0] for name in loaded} & set(FOREIGN)
    ours = {name for name in loaded if name.startswith("dirsync.")}
    assert ours - VALUES - {"dirsync.mapping", *walked} == set()


def test_a_new_enabled_user_is_invited_as_a_user() -> None:
    plan = plan_for(org(), reading(user("alice", name="Alice A")))
    assert [(i.email, i.external_id, i.name) for i in plan.invite] == [
        ("alice@example.org", "id-alice", "Alice A")
    ]


def test_a_disabled_user_who_is_not_a_member_is_not_invited() -> None:
    assert plan_for(org(), reading(user("bob", disabled=True))).is_empty


def test_emails_are_lower_cased() -> None:
    plan = plan_for(org(), reading(user("carol", email="  Carol@Example.ORG ")))
    assert plan.invite[0].email == "carol@example.org"


def test_an_unlinked_member_with_the_same_email_is_adopted_not_reinvited() -> None:
    existing = member("alice@example.org", external_id=None)
    plan = plan_for(org(existing), reading(user("alice")))
    assert not plan.invite
    assert [(u.member_id, u.external_id, u.adopt) for u in plan.update] == [
        (existing.id, "id-alice", True)
    ]


def test_a_linked_member_is_never_relinked_to_another_directory_user() -> None:
    linked = member("alice@example.org", external_id="id-old-alice")
    # a different directory user now carries the address: no adoption, no invite
    plan = plan_for(org(linked), reading(user("alice", external_id="id-new")))
    assert not [u for u in plan.update if u.adopt]
    assert not plan.invite


def test_an_email_or_name_change_updates_the_member_in_place() -> None:
    existing = member("alice@example.org", external_id="id-alice", name="Alice")
    plan = plan_for(
        org(existing), reading(user("alice", email="alice.b@example.org", name="Alice B"))
    )
    assert not plan.invite and not plan.revoke and not plan.remove
    (update,) = plan.update
    assert (update.member_id, update.email, update.name, update.adopt) == (
        existing.id,
        "alice.b@example.org",
        "Alice B",
        False,
    )


def test_a_disabled_member_is_revoked_and_restored_to_its_previous_status() -> None:
    accepted = member(
        "alice@example.org", external_id="id-alice", status=MemberStatus.ACCEPTED, name="Alice"
    )
    state = org(accepted)
    plan = plan_for(state, reading(user("alice", disabled=True)))
    assert [(r.email, r.reason) for r in plan.revoke] == [
        ("alice@example.org", RevokeReason.DISABLED)
    ]
    state = apply_plan(state, plan)
    assert state.members[0].status == MemberStatus.REVOKED

    plan = plan_for(state, reading(user("alice")))
    assert [r.to_status for r in plan.restore] == [MemberStatus.ACCEPTED]
    assert apply_plan(state, plan).members[0].status == MemberStatus.ACCEPTED


def test_disabled_members_stay_when_remove_disabled_is_off() -> None:
    state = org(member("alice@example.org", external_id="id-alice", name="Alice"))
    rules = SyncRules(remove_disabled=False, max_removals=RemovalLimit(percent=100))
    assert plan_for(state, reading(user("alice", disabled=True)), rules).is_empty


def test_a_member_revoked_by_an_administrator_is_not_restored_by_a_sync() -> None:
    revoked = member(
        "alice@example.org",
        external_id="id-alice",
        name="Alice",
        status=MemberStatus.REVOKED,
        restore_status=MemberStatus.CONFIRMED,
        revoked_reason=RevokeReason.ADMIN,
    )
    assert plan_for(org(revoked), reading(user("alice"), user("bob"))).restore == ()


def test_absence_deprovisions_only_with_overwrite_existing() -> None:
    gone = member("gone@example.org", external_id="id-gone")
    read = reading(user("alice"))
    assert plan_for(org(gone), read).revoke == ()
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    assert [(r.email, r.reason) for r in plan_for(org(gone), read, rules).revoke] == [
        ("gone@example.org", RevokeReason.DEPROVISIONED)
    ]


def test_deprovision_remove_removes_instead_of_revoking() -> None:
    gone = member("gone@example.org", external_id="id-gone")
    rules = SyncRules(
        overwrite_existing=True,
        deprovision=Deprovision.REMOVE,
        max_removals=RemovalLimit(percent=100),
    )
    plan = plan_for(org(gone), reading(user("alice")), rules)
    assert [r.email for r in plan.remove] == ["gone@example.org"] and not plan.revoke


def test_owners_admins_and_unlinked_members_are_never_deprovisioned() -> None:
    owner = member("owner@msp.example", external_id="id-owner", role=Role.OWNER)
    admin = member("admin@msp.example", external_id="id-admin", role=Role.ADMIN)
    manual = member("manual@example.org", external_id=None)
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    plan = plan_for(org(owner, admin, manual), reading(user("alice")), rules)
    assert not plan.revoke and not plan.remove


def test_a_disabled_owner_is_not_revoked() -> None:
    owner = member("alice@example.org", external_id="id-alice", role=Role.OWNER, name="Alice")
    assert plan_for(org(owner), reading(user("alice", disabled=True))).revoke == ()


def test_an_explicit_deletion_deprovisions_without_overwrite_existing() -> None:
    alice, bob = user("alice"), user("bob")
    state = org(
        member("alice@example.org", external_id="id-alice", name="Alice"),
        member("bob@example.org", external_id="id-bob", name="Bob"),
    )
    delta = Reading(delta=DirectoryDelta(deleted_user_ids=frozenset({"id-bob"})))
    plan = plan_for(state, delta, previous=mirror(alice, bob))
    assert [r.email for r in plan.revoke] == ["bob@example.org"]


def test_a_delta_read_never_deprovisions_by_absence() -> None:
    state = org(member("old@example.org", external_id="id-old"))
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    delta = Reading(delta=DirectoryDelta(users=(user("alice"),)))
    plan = plan_for(state, delta, rules, previous=mirror(user("alice")))
    assert plan.revoke == ()


def test_users_without_email_or_with_duplicate_email_are_warned_about_not_crashing() -> None:
    nomail = user("nomail", email=None)
    bad = user("bad", email="not an email")
    first = user("twin1", email="twin@example.org")
    second = user("twin2", email="TWIN@example.org")
    desired = desired_organization(mirror(nomail, bad, first, second), linked_ids=frozenset())
    assert desired.users == ()
    text = "\n".join(desired.warnings)
    assert "nomail" in text and "no email" in text
    assert "invalid email" in text
    assert "twin1" in text and "twin2" in text and "duplicate email twin@example.org" in text


def test_a_duplicate_email_stays_with_the_member_already_linked() -> None:
    first = user("twin1", email="twin@example.org")
    second = user("twin2", email="twin@example.org")
    state = org(member("twin@example.org", external_id=first.external_id, name="Twin1"))
    plan = plan_for(state, reading(first, second))
    assert plan.is_empty


def test_unresolved_member_references_are_a_warning() -> None:
    ghost = DirectoryGroup(
        external_id="g", ref="cn=g", name="G", member_refs=frozenset({"uid=ghost"})
    )
    desired = desired_organization(mirror(ghost), linked_ids=frozenset())
    assert any("uid=ghost" in w for w in desired.warnings)


def test_nested_groups_are_flattened_and_cycles_are_harmless() -> None:
    alice, bob, carol = user("alice"), user("bob"), user("carol")
    inner = group("Inner", carol)
    a = DirectoryGroup(
        external_id="a", ref="cn=a", name="A", member_refs=frozenset({alice.ref, "cn=b"})
    )
    b = DirectoryGroup(
        external_id="b", ref="cn=b", name="B", member_refs=frozenset({bob.ref, "cn=a", inner.ref})
    )
    flat = flatten_groups(
        {g.external_id: g for g in (a, b, inner)},
        {u.ref: u.external_id for u in (alice, bob, carol)},
    )
    everyone = {"id-alice", "id-bob", "id-carol"}
    assert flat.users["a"] == flat.users["b"] == everyone
    assert flat.users[inner.external_id] == {"id-carol"}


def test_a_group_that_contains_itself_is_fine() -> None:
    alice = user("alice")
    selfish = DirectoryGroup(
        external_id="s", ref="cn=s", name="S", member_refs=frozenset({"cn=s", alice.ref})
    )
    assert flatten_groups({"s": selfish}, {alice.ref: alice.external_id}).users["s"] == {"id-alice"}


def test_deep_nesting_does_not_hit_the_recursion_limit() -> None:
    alice = user("alice")
    chain = {
        f"g{i}": DirectoryGroup(
            external_id=f"g{i}",
            ref=f"cn=g{i}",
            name=f"g{i}",
            member_refs=frozenset({f"cn=g{i + 1}"} if i < 4999 else {alice.ref}),
        )
        for i in range(5000)
    }
    assert flatten_groups(chain, {alice.ref: alice.external_id}).users["g0"] == {"id-alice"}


def test_group_membership_is_the_flattened_membership_of_enabled_users() -> None:
    alice, bob, off = user("alice"), user("bob"), user("off", disabled=True)
    engineering = group("Engineering", alice, off)
    staff = group("All Staff", engineering, bob)
    plan = plan_for(org(), reading(alice, bob, off, engineering, staff))
    created = {g.name: g.member_external_ids for g in plan.create_groups}
    assert created == {"Engineering": {"id-alice"}, "All Staff": {"id-alice", "id-bob"}}


def test_groups_are_renamed_and_their_membership_replaced_exactly() -> None:
    alice, bob = user("alice"), user("bob")
    state = org(
        member("alice@example.org", external_id="id-alice", name="Alice"),
        member("bob@example.org", external_id="id-bob", name="Bob"),
        groups=(
            OrgGroup(
                id=1, external_id="gid-Eng", name="Eng", member_external_ids=frozenset({"id-alice"})
            ),
        ),
    )
    plan = plan_for(state, reading(alice, bob, group("Engineering", bob, external_id="gid-Eng")))
    (change,) = plan.update_groups
    assert (change.name, change.previous_name) == ("Engineering", "Eng")
    assert change.add_member_ids == {"id-bob"} and change.remove_member_ids == {"id-alice"}


def test_groups_gone_from_the_directory_are_deleted_only_with_overwrite_existing() -> None:
    state = org(groups=(OrgGroup(id=1, external_id="gid-Old", name="Old"),))
    read = reading(user("alice"))
    assert plan_for(state, read).delete_groups == ()
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    assert [g.name for g in plan_for(state, read, rules).delete_groups] == ["Old"]


def test_a_plan_beyond_the_seats_is_refused_with_the_shortfall() -> None:
    state = org(member("a@example.org", external_id="id-a", name="A"))
    rules = SyncRules(seats=2)
    with pytest.raises(PlanRefused) as refused:
        plan_for(
            state, reading(user("a", email="a@example.org", name="A"), user("b"), user("c")), rules
        )
    assert "needs 3 seats" in str(refused.value) and "short by 1" in str(refused.value)
    assert len(refused.value.plan.invite) == 2


def test_more_removals_than_max_removals_is_refused() -> None:
    state = org(*(member(f"u{i}@example.org", external_id=f"id-u{i}") for i in range(20)))
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(count=2))
    with pytest.raises(PlanRefused, match="revokes or removes 19"):
        plan_for(state, reading(user("u0", email="u0@example.org")), rules)


def test_a_read_with_no_users_never_wipes_the_organization() -> None:
    state = org(member("a@example.org", external_id="id-a"))
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    with pytest.raises(PlanRefused, match="no users"):
        plan_for(state, reading(), rules)


def test_an_empty_read_into_an_empty_organization_is_fine() -> None:
    assert plan_for(org(), reading()).is_empty


def test_a_percentage_limit_allows_at_least_one_removal() -> None:
    assert RemovalLimit(percent=10).limit(5) == 1
    assert RemovalLimit(percent=10).limit(250) == 25
    assert RemovalLimit(count=0).limit(1000) == 0


def test_applying_a_plan_then_planning_again_gives_an_empty_plan() -> None:
    alice, bob, off = user("alice"), user("bob"), user("off", disabled=True)
    read = reading(alice, bob, off, group("Eng", alice), group("All", bob, group("Eng", alice)))
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    state = org(member("gone@example.org", external_id="id-gone"), member("alice@example.org"))
    first = plan_for(state, read, rules)
    assert not first.is_empty
    assert plan_for(apply_plan(state, first), read, rules).is_empty


def test_an_external_id_on_two_users_is_a_warning_and_one_of_them_is_kept() -> None:
    first = user("alice", external_id="same")
    second = user("bob", external_id="same")
    planned = plan_run(
        mirror=Mirror(), reading=reading(second, first), current=org(), rules=LENIENT
    )
    assert [i.email for i in planned.plan.invite] == ["alice@example.org"]
    assert any("external id same is on two users" in w for w in planned.warnings)


def test_a_group_may_name_members_by_user_name() -> None:
    alice = user("Alice")
    posix = DirectoryGroup(
        external_id="p", ref="cn=p", name="P", member_refs=frozenset({username_ref("alice")})
    )
    plan = plan_for(org(), reading(alice, posix))
    assert [g.member_external_ids for g in plan.create_groups] == [{alice.external_id}]


def _deprovisioned(email: str = "alice@example.org", **overrides: object) -> Member:
    values: dict[str, object] = {
        "external_id": "id-old",
        "name": "Alice",
        "status": MemberStatus.REVOKED,
        "restore_status": MemberStatus.CONFIRMED,
        "revoked_reason": RevokeReason.DEPROVISIONED,
    }
    values.update(overrides)
    return member(email, **values)  # type: ignore[arg-type]


def test_a_recreated_user_takes_over_the_member_the_sync_deprovisioned() -> None:
    old = _deprovisioned()
    planned = plan_run(
        mirror=Mirror(), reading=reading(user("alice")), current=org(old), rules=LENIENT
    )
    plan = planned.plan
    (update,) = plan.update
    assert (update.member_id, update.previous_external_id, update.external_id) == (
        old.id,
        "id-old",
        "id-alice",
    )
    assert update.to_json()["changes"]["external_id"] == {"before": "id-old", "after": "id-alice"}
    assert [(r.member_id, r.to_status) for r in plan.restore] == [(old.id, MemberStatus.CONFIRMED)]
    assert not (plan.invite or plan.revoke or plan.remove)


def test_a_recreated_user_joins_the_groups_as_the_relinked_member() -> None:
    old = _deprovisioned()
    alice = user("alice")
    staff = OrgGroup(id=7, external_id="gid-Staff", name="Staff", member_external_ids=frozenset())
    plan = plan_for(org(old, groups=(staff,)), reading(alice, group("Staff", alice)))
    (change,) = plan.update_groups
    assert change.add_member_ids == {"id-alice"} and not change.remove_member_ids


def test_an_entry_deleted_and_recreated_in_one_read_keeps_its_member() -> None:
    """Deleted and created again between two runs: the deprovisioning planned for the old id
    is withdrawn, and the member is linked to the new one."""
    old = member("alice@example.org", external_id="id-old", status=MemberStatus.CONFIRMED)
    for deprovision in (Deprovision.REVOKE, Deprovision.REMOVE):
        rules = SyncRules(
            overwrite_existing=True,
            deprovision=deprovision,
            max_removals=RemovalLimit(percent=100),
        )
        plan = plan_for(org(old), reading(user("alice")), rules)
        assert [(u.previous_external_id, u.external_id) for u in plan.update] == [
            ("id-old", "id-alice")
        ]
        assert not (plan.invite or plan.revoke or plan.remove or plan.restore)


@pytest.mark.parametrize(
    "holder",
    [
        _deprovisioned(revoked_reason=RevokeReason.ADMIN),
        _deprovisioned(revoked_reason=RevokeReason.DISABLED),
        _deprovisioned(status=MemberStatus.CONFIRMED, revoked_reason=None, restore_status=None),
        _deprovisioned(role=Role.ADMIN),
    ],
    ids=["revoked-by-an-administrator", "revoked-as-disabled", "active", "an-admin"],
)
def test_a_recreated_user_never_takes_over_an_active_or_admin_revoked_member(
    holder: Member,
) -> None:
    planned = plan_run(
        mirror=Mirror(), reading=reading(user("alice")), current=org(holder), rules=LENIENT
    )
    assert planned.plan.is_empty
    assert any("linked to id-old" in w for w in planned.warnings)


def test_relink_recreated_false_leaves_the_deprovisioned_member_and_warns() -> None:
    rules = SyncRules(max_removals=RemovalLimit(percent=100), relink_recreated=False)
    planned = plan_run(
        mirror=Mirror(), reading=reading(user("alice")), current=org(_deprovisioned()), rules=rules
    )
    assert planned.plan.is_empty
    assert any("revoked member linked to id-old" in w for w in planned.warnings)


def test_a_deprovisioned_member_whose_user_is_still_read_is_not_taken_over() -> None:
    """Two directory users at one address never arise here (the keeper rule), but an old id
    that the read still holds is not gone: it is restored, not relinked."""
    old = _deprovisioned()
    back = user("alice", external_id="id-old")
    plan = plan_for(org(old), reading(back))
    assert not plan.update and [r.member_id for r in plan.restore] == [old.id]


def test_users_false_leaves_members_alone_and_groups_false_leaves_groups_alone() -> None:
    alice = user("alice")
    gone = member("gone@example.org", external_id="id-gone")
    read = reading(alice, group("Eng", alice))
    only_groups = SyncRules(users=False, overwrite_existing=True)
    plan = plan_for(org(gone), read, only_groups)
    assert not (plan.invite or plan.revoke or plan.remove or plan.update)
    assert [g.name for g in plan.create_groups] == ["Eng"]
    only_users = SyncRules(groups=False, max_removals=RemovalLimit(percent=100))
    plan = plan_for(org(), read, only_users)
    assert [i.email for i in plan.invite] == ["alice@example.org"] and not plan.create_groups


def _twenty_users_synced() -> tuple[OrganizationState, Mirror]:
    read = reading(*(user(f"u{i}") for i in range(20)))
    assert read.snapshot is not None
    state = apply_plan(org(), plan_for(org(), read))
    previous = Mirror(users={u.external_id: u for u in read.snapshot.users})
    return state, previous


def test_a_read_that_shrinks_below_min_source_ratio_is_refused() -> None:
    state, previous = _twenty_users_synced()
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(percent=100))
    with pytest.raises(PlanRefused, match=r"yields 9 user\(s\).*0.5.*20"):
        plan_for(state, reading(*(user(f"u{i}") for i in range(9))), rules, previous)
    # exactly half is not below half
    plan = plan_for(state, reading(*(user(f"u{i}") for i in range(10))), rules, previous)
    assert len(plan.revoke) == 10


def test_min_source_ratio_zero_turns_the_shrink_guard_off() -> None:
    state, previous = _twenty_users_synced()
    rules = SyncRules(
        overwrite_existing=True, max_removals=RemovalLimit(percent=100), min_source_ratio=0
    )
    plan = plan_for(state, reading(user("u0")), rules, previous)
    assert len(plan.revoke) == 19


def test_an_approved_refused_plan_is_applied_once_with_a_warning() -> None:
    state, previous = _twenty_users_synced()
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(count=2))
    shrunk = reading(*(user(f"u{i}") for i in range(15)))
    with pytest.raises(PlanRefused) as refused:
        plan_run(mirror=previous, reading=shrunk, current=state, rules=rules)
    digest = refused.value.plan.digest()

    planned = plan_run(mirror=previous, reading=shrunk, current=state, rules=rules, approve=digest)
    assert len(planned.plan.revoke) == 5 and planned.plan.digest() == digest
    assert any("max_removals" in reason for reason in planned.approved_over)
    assert any(f"plan {digest} applied by approval" in w for w in planned.warnings)


def test_an_approval_for_another_plan_is_refused_and_says_why() -> None:
    state, previous = _twenty_users_synced()
    rules = SyncRules(overwrite_existing=True, max_removals=RemovalLimit(count=2))
    with pytest.raises(PlanRefused) as refused:
        plan_run(
            mirror=previous,
            reading=reading(*(user(f"u{i}") for i in range(14))),
            current=state,
            rules=rules,
            approve="0123456789abcdef",
        )
    assert "approved plan 0123456789abcdef is not this run's plan" in str(refused.value)


def test_an_approval_changes_nothing_for_a_plan_no_guard_refuses() -> None:
    state, previous = _twenty_users_synced()
    planned = plan_run(
        mirror=previous,
        reading=reading(*(user(f"u{i}") for i in range(20))),
        current=state,
        rules=SyncRules(),
        approve="0123456789abcdef",
    )
    assert planned.plan.is_empty and planned.approved_over == ()


def test_a_chain_of_address_changes_is_planned_in_the_order_it_can_be_applied() -> None:
    # c takes b's address, b takes a's, a moves to a fresh one: a's change must come first,
    # then b's, then c's; members whose address stays are planned before any of them
    a = member("a@example.org", external_id="id-a", name="A")
    b = member("b@example.org", external_id="id-b", name="B")
    c = member("c@example.org", external_id="id-c", name="C")
    renamed = member("d@example.org", external_id="id-d", name="D")
    plan = plan_for(
        org(c, renamed, b, a),
        reading(
            user("c", email="b@example.org", name="C"),
            user("d", email="d@example.org", name="D2"),
            user("b", email="a@example.org", name="B"),
            user("a", email="a2@example.org", name="A"),
        ),
    )
    assert [(u.external_id, u.email) for u in plan.update] == [
        ("id-d", "d@example.org"),
        ("id-a", "a2@example.org"),
        ("id-b", "a@example.org"),
        ("id-c", "b@example.org"),
    ]


def test_a_pushed_source_deletes_its_last_users_under_max_removals_only() -> None:
    state, previous = _twenty_users_synced()
    every_one = DirectoryDelta(deleted_user_ids=frozenset(previous.users))
    pushed = SyncRules(max_removals=RemovalLimit(percent=100), pushed=True)
    plan = plan_for(state, Reading(delta=every_one), pushed, previous)
    assert len(plan.revoke) == 20  # explicit deletions: no shrink or empty-read guard
    with pytest.raises(PlanRefused, match="no users"):
        plan_for(state, Reading(delta=every_one), replace(pushed, pushed=False), previous)
    with pytest.raises(PlanRefused, match="max_removals"):
        plan_for(
            state,
            Reading(delta=every_one),
            replace(pushed, max_removals=RemovalLimit(count=5)),
            previous,
        )


def test_a_pushed_sources_removals_count_with_those_of_the_window_before() -> None:
    state, previous = _twenty_users_synced()
    one = Reading(delta=DirectoryDelta(deleted_user_ids=frozenset({"id-u0"})))
    rules = SyncRules(max_removals=RemovalLimit(count=3), pushed=True)
    assert (
        len(
            plan_run(
                mirror=previous, reading=one, current=state, rules=rules, recent_removals=2
            ).plan.revoke
        )
        == 1
    )
    with pytest.raises(PlanRefused, match="after 3 in the removal_window"):
        plan_run(mirror=previous, reading=one, current=state, rules=rules, recent_removals=3)
    # a source that is read is judged by its run alone
    read = replace(rules, pushed=False)
    assert plan_run(
        mirror=previous, reading=one, current=state, rules=read, recent_removals=3
    ).plan.revoke
    # and a push that removes no one is never refused for the removals before it
    rename = Reading(delta=DirectoryDelta(users=(replace(previous.users["id-u1"], name="New"),)))
    assert plan_run(
        mirror=previous, reading=rename, current=state, rules=rules, recent_removals=9
    ).plan.update
