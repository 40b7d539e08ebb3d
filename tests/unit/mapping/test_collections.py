"""The organization side of the pure core: collections, group access and re-invitations."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dirsync.config.settings import parse_config
from dirsync.errors import ConfigError
from dirsync.mapping.pipeline import plan_run
from dirsync.model import Mirror, Reading
from dirsync.organization import Member, MemberStatus, OrganizationState, OrgGroup, Permission
from dirsync.plan import CONTRACT_KEYS, Plan
from dirsync.rules import CollectionRule, RemovalLimit, SyncRules
from dirsync.testing.builders import (
    apply_plan,
    collection,
    collection_rule,
    group,
    member,
    org,
    reading,
    user,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")
MARKETING = group("Marketing", ALICE, BOB)
SALES = group("Sales", CAROL)
DIRECTORY = reading(ALICE, BOB, CAROL, MARKETING, SALES)


def rules(*collections: object, **changes: object) -> SyncRules:
    return SyncRules(
        max_removals=RemovalLimit(percent=100),
        collections=collections,  # type: ignore[arg-type]  # CollectionRule values
        **changes,
    )


def planned(
    current: OrganizationState, read: Reading, given: SyncRules, now: datetime = NOW
) -> tuple[Plan, tuple[str, ...]]:
    run = plan_run(mirror=Mirror(), reading=read, current=current, rules=given, now=now)
    return run.plan, run.warnings


def test_a_configured_collection_is_created_with_access_for_groups_named_or_by_id() -> None:
    social = collection_rule("Social Media", "Marketing", "gid-Sales", permission=Permission.EDIT)
    plan, warnings = planned(org(), DIRECTORY, rules(social))
    (create,) = plan.create_collections
    assert (create.name, create.external_id) == ("Social Media", "col-social media")
    assert [(a.group_name, a.group_external_id, a.permission) for a in create.access] == [
        ("Marketing", "gid-Marketing", Permission.EDIT),
        ("Sales", "gid-Sales", Permission.EDIT),
    ]
    assert warnings == ()
    assert plan.to_json()["create_collections"][0]["access"][0] == {
        "group": "Marketing",
        "group_external_id": "gid-Marketing",
        "permission": "edit",
    }


def test_a_group_the_directory_does_not_have_is_a_warning_not_a_failure() -> None:
    finance = collection_rule("Finance Systems", "Finance", "Sales")
    plan, warnings = planned(org(), DIRECTORY, rules(finance))
    assert [a.group_name for a in plan.create_collections[0].access] == ["Sales"]
    assert len(warnings) == 1 and "'Finance'" in warnings[0] and "Finance Systems" in warnings[0]


def test_an_unchanged_collection_is_left_alone_and_applying_twice_is_stable() -> None:
    social = collection_rule("Social Media", "Marketing", permission=Permission.EDIT)
    state = org()
    first, _ = planned(state, DIRECTORY, rules(social))
    state = apply_plan(state, first)
    again, _ = planned(state, DIRECTORY, rules(social))
    assert again.is_empty


def test_access_follows_the_config_permission_rename_and_group_list() -> None:
    groups = (
        OrgGroup(id=1, external_id="gid-Marketing", name="Marketing"),
        OrgGroup(id=2, external_id="gid-Sales", name="Sales"),
    )
    stored = collection("Social", ("gid-Marketing", Permission.READ), external_id="col-s")
    state = org(groups=groups, collections=(stored,))
    wanted = collection_rule(
        "Social Media", "Sales", permission=Permission.MANAGE, external_id="col-s"
    )
    plan, _ = planned(state, DIRECTORY, rules(wanted))
    assert not plan.create_collections
    (update,) = plan.update_collections
    assert update.collection_id == stored.id
    shown = update.to_json()
    assert shown["previous_name"] == "Social"
    assert [(g["group"], g["permission"]) for g in shown["grant"]] == [("Sales", "manage")]
    assert [g["group"] for g in shown["withdraw"]] == ["Marketing"]


def test_a_permission_change_alone_is_an_update() -> None:
    stored = collection("Social", ("gid-Marketing", Permission.READ), external_id="col-s")
    wanted = collection_rule("Social", "Marketing", permission=Permission.EDIT, external_id="col-s")
    plan, _ = planned(org(collections=(stored,)), DIRECTORY, rules(wanted))
    assert [g["permission"] for g in plan.update_collections[0].to_json()["grant"]] == ["edit"]


def test_collections_not_created_by_the_config_are_never_touched() -> None:
    manual = collection("Board", ("gid-Sales", Permission.MANAGE), managed=False)
    plan, warnings = planned(org(collections=(manual,)), DIRECTORY, rules())
    assert not plan.create_collections and not plan.update_collections and warnings == ()
    clash = collection_rule("Board papers", "Marketing", external_id=manual.external_id or "")
    plan, warnings = planned(org(collections=(manual,)), DIRECTORY, rules(clash))
    assert not plan.create_collections and not plan.update_collections
    assert any("not created by the config" in w for w in warnings)


def test_a_collection_dropped_from_the_config_is_kept() -> None:
    stored = collection("Old", ("gid-Sales", Permission.READ))
    plan, _ = planned(org(collections=(stored,)), DIRECTORY, rules())
    assert not plan.create_collections and not plan.update_collections


def test_with_groups_off_collections_name_the_organizations_own_groups() -> None:
    groups = (OrgGroup(id=1, external_id="g-own", name="Marketing"),)
    social = collection_rule("Social", "Marketing")
    plan, _ = planned(org(groups=groups), DIRECTORY, rules(social, groups=False))
    assert [a.group_external_id for a in plan.create_collections[0].access] == ["g-own"]


def test_a_plan_without_the_additive_kinds_keeps_the_digest_it_had_before_them() -> None:
    plan, _ = planned(org(), DIRECTORY, rules())
    assert set(plan.to_json()) >= {*CONTRACT_KEYS, "create_collections", "reinvite"}
    contract_only = {k: v for k, v in plan.to_json().items() if k in CONTRACT_KEYS}
    canonical = json.dumps(contract_only, sort_keys=True, separators=(",", ":"))
    assert plan.digest() == hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- re-invitations ----------------------------------------------------------------------------


def invited(uid: str, days_ago: float, **extra: object) -> Member:
    return member(
        f"{uid}@example.org",
        external_id=f"id-{uid}",
        status=MemberStatus.INVITED,
        invited_at=NOW - timedelta(days=days_ago),
        **extra,
    )


def test_invitations_older_than_reinvite_after_are_sent_again() -> None:
    old, fresh = invited("alice", 8), invited("bob", 2)
    state = org(old, fresh)
    plan, _ = planned(state, reading(ALICE, BOB), rules(reinvite_after=timedelta(days=7)))
    assert [r.email for r in plan.reinvite] == ["alice@example.org"]
    assert plan.reinvite[0].to_json()["invited_at"] == "2026-11-17T12:00:00Z"


def test_without_reinvite_after_nothing_is_sent_again() -> None:
    state = org(invited("alice", 80))
    plan, _ = planned(state, reading(ALICE), rules())
    assert plan.reinvite == ()


def test_disabled_unlinked_and_accepted_members_are_not_reinvited() -> None:
    state = org(
        invited("alice", 30),
        member(
            "bob@example.org",
            external_id=None,
            status=MemberStatus.INVITED,
            invited_at=NOW - timedelta(days=30),
        ),
        member(
            "carol@example.org",
            external_id="id-carol",
            status=MemberStatus.ACCEPTED,
            invited_at=NOW - timedelta(days=30),
        ),
    )
    read = reading(user("alice", disabled=True), BOB, CAROL)
    plan, _ = planned(state, read, rules(reinvite_after=timedelta(days=7)))
    assert plan.reinvite == ()
    assert [r.email for r in plan.revoke] == ["alice@example.org"]


# -- the config ------------------------------------------------------------------------------


def config_with(tmp_path: Path, **organization: object) -> dict[str, object]:
    source = {"type": "ldap", "url": "ldap://127.0.0.1:389", "base_dn": "dc=example,dc=org"}
    return {"organization": [{"name": "acme", "source": source, **organization}]}


def test_the_config_turns_collections_and_reinvite_after_into_rules(tmp_path: Path) -> None:
    raw = config_with(
        tmp_path,
        sync={"reinvite_after": "7d"},
        collection=[
            {
                "name": "Social",
                "external_id": "col-s",
                "groups": ["Marketing"],
                "permission": "edit",
            }
        ],
    )
    (acme,) = parse_config(raw, base_dir=tmp_path).organization
    given = acme.rules()
    assert given.reinvite_after == timedelta(days=7)
    assert given.collections == (
        CollectionRule(
            name="Social", external_id="col-s", groups=("Marketing",), permission=Permission.EDIT
        ),
    )


def test_a_collection_external_id_used_twice_names_the_key(tmp_path: Path) -> None:
    twice = {"name": "A", "external_id": "col-a"}
    raw = config_with(tmp_path, collection=[twice, {**twice, "name": "B"}])
    with pytest.raises(ConfigError, match=r"organization\[acme\].*'col-a' is used twice"):
        parse_config(raw, base_dir=tmp_path)
    raw = config_with(tmp_path, sync={"reinvite_after": "soon"})
    with pytest.raises(ConfigError, match=r"organization\[acme\]\.sync\.reinvite_after"):
        parse_config(raw, base_dir=tmp_path)
