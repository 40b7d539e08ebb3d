"""What a delta run must get right on a slapd configured like production ones (memberof +
refint + syncprov), read through the CLI: renames and moves, offboarding through an access
group named by a ``memberOf`` filter, entries deleted and created again, posixGroup
``memberUid`` values that hold DNs. Each ends with the same memberships in the default delta
mode as with ``--full``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dirsync.connectors.ldap import holders
from tests.integration.conftest import ldif_record
from tests.integration.test_sync_cli import Dirsync, dirsync, modify

__all__ = ["dirsync"]  # the fixture, shared with test_sync_cli


def _memberships(dirsync: Dirsync) -> dict[str, tuple[str, list[str]]]:
    return {e: (m["status"], m["groups"]) for e, m in dirsync.members().items()}


def _sync(dirsync: Dirsync, *args: str) -> tuple[dict[str, Any], str]:
    code, out, err = dirsync.run("sync", "--json", *args)
    assert code == 0, (out, err)
    (result,) = json.loads(out)
    return result, err


def _full_plan_is_empty(dirsync: Dirsync) -> None:
    """After the delta run, a full read finds nothing left to do."""
    full = dirsync.sync_json("--dry-run", "--full")
    assert all(not entries for entries in full["plan"].values()), full["plan"]


def _team(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(
        f"dn: ou=Sub,{tree.people}\nobjectClass: organizationalUnit\nou: Sub\n",
        tree.person("ann"),
        tree.person("ben"),
        tree.group("Eng", [tree.user_dn("ann"), tree.user_dn("ben")]),
        tree.group("All", [tree.group_dn("Eng")]),
    )
    assert dirsync.sync_json()["outcome"] == "applied"


@pytest.mark.parametrize(
    "change",
    ["newrdn: uid=anna\ndeleteoldrdn: 1", "newrdn: uid=ann\ndeleteoldrdn: 1\nnewsuperior: SUB"],
    ids=["rename", "move"],
)
def test_a_renamed_or_moved_user_keeps_her_groups(dirsync: Dirsync, change: str) -> None:
    _team(dirsync)
    tree = dirsync.tree
    before = _memberships(dirsync)
    assert before["ann@example.org"][1] == ["All", "Eng"]
    change = change.replace("SUB", f"ou=Sub,{tree.people}")
    tree.server.modify_ldif(f"dn: {tree.user_dn('ann')}\nchangetype: modrdn\n{change}\n")

    result, _ = _sync(dirsync)

    assert not result["plan"]["update_groups"], result["plan"]
    assert not any("match no user" in w for w in result["warnings"]), result["warnings"]
    assert _memberships(dirsync) == before
    _full_plan_is_empty(dirsync)


def test_a_big_delta_reads_every_group_once_and_keeps_renamed_users_in_them(
    dirsync: Dirsync, monkeypatch: pytest.MonkeyPatch
) -> None:
    _team(dirsync)
    tree = dirsync.tree
    before = _memberships(dirsync)
    monkeypatch.setattr(holders, "_ALL_GROUPS_ABOVE", 1)  # as for thousands of changed entries
    for uid in ("ann", "ben"):
        tree.server.modify_ldif(
            f"dn: {tree.user_dn(uid)}\nchangetype: modrdn\nnewrdn: uid={uid}2\ndeleteoldrdn: 1\n"
        )
    result, _ = _sync(dirsync)
    assert not result["plan"]["update_groups"], result["plan"]
    assert _memberships(dirsync) == before
    _full_plan_is_empty(dirsync)


def test_a_renamed_group_stays_nested_in_its_parent(dirsync: Dirsync) -> None:
    _team(dirsync)
    tree = dirsync.tree
    tree.server.modify_ldif(
        f"dn: {tree.group_dn('Eng')}\nchangetype: modrdn\nnewrdn: cn=Engineering\ndeleteoldrdn: 1\n"
    )
    _sync(dirsync)
    groups = dirsync.groups()
    assert groups["All"]["members"] == ["ann@example.org", "ben@example.org"]
    assert groups["Engineering"]["members"] == ["ann@example.org", "ben@example.org"]
    _full_plan_is_empty(dirsync)


def _access_group(dirsync: Dirsync) -> str:
    """ann and ben are synced because they are in an access group outside group_path."""
    tree = dirsync.tree
    roles = f"ou=Roles,{tree.base_dn}"
    access = f"cn=dirsync-users,{roles}"
    tree.add(
        f"dn: {roles}\nobjectClass: organizationalUnit\nou: Roles\n",
        tree.person("ann"),
        tree.person("ben"),
        tree.person("outsider"),
        tree.group("Eng", [tree.user_dn("ann"), tree.user_dn("ben")]),
        ldif_record(
            access,
            {
                "objectClass": "groupOfNames",
                "cn": "dirsync-users",
                "member": [tree.user_dn("ann"), tree.user_dn("ben")],
            },
        ),
    )
    dirsync.set(source={"user_filter": f"(memberOf={access})"}, sync={"overwrite_existing": True})
    first = dirsync.sync_json()
    assert sorted(i["email"] for i in first["plan"]["invite"]) == [
        "ann@example.org",
        "ben@example.org",
    ]
    return access


def test_leaving_the_access_group_of_a_member_of_filter_offboards_on_the_next_delta_run(
    dirsync: Dirsync,
) -> None:
    access = _access_group(dirsync)
    tree = dirsync.tree
    modify(tree, access, f"delete: member\nmember: {tree.user_dn('ben')}")

    result, log = _sync(dirsync)

    assert [r["email"] for r in result["plan"]["revoke"]] == ["ben@example.org"]
    assert dirsync.members()["ben@example.org"]["status"] == "revoked"
    expired = [json.loads(line) for line in log.splitlines() if "sync.cursor_expired" in line]
    assert expired and access in expired[0]["reason"] and "memberOf" in expired[0]["reason"]
    _full_plan_is_empty(dirsync)


def test_joining_the_access_group_onboards_and_an_unrelated_change_stays_a_delta(
    dirsync: Dirsync,
) -> None:
    access = _access_group(dirsync)
    tree = dirsync.tree
    modify(tree, access, f"add: member\nmember: {tree.user_dn('outsider')}")
    result, _ = _sync(dirsync)
    assert [i["email"] for i in result["plan"]["invite"]] == ["outsider@example.org"]

    modify(tree, tree.user_dn("ann"), "replace: mail\nmail: ann.new@example.org")
    result, log = _sync(dirsync)
    assert [u["email"] for u in result["plan"]["update"]] == ["ann.new@example.org"]
    assert "sync.cursor_expired" not in log
    runs = dirsync.sql("SELECT full FROM runs ORDER BY started_at")
    assert [bool(full) for (full,) in runs] == [True, True, False]
    _full_plan_is_empty(dirsync)


def _recreate(dirsync: Dirsync, uid: str) -> None:
    tree = dirsync.tree
    tree.server.modify_ldif(f"dn: {tree.user_dn(uid)}\nchangetype: delete\n")
    tree.add(tree.person(uid))


@pytest.mark.parametrize("between_runs", [False, True], ids=["in-one-delta", "a-run-apart"])
def test_a_user_deleted_and_created_again_takes_her_member_back(
    dirsync: Dirsync, between_runs: bool
) -> None:
    _team(dirsync)
    tree = dirsync.tree
    dirsync.set(sync={"overwrite_existing": True, "max_removals": 10})
    dirsync.sql("UPDATE members SET status = 'confirmed' WHERE email = 'ann@example.org'")
    old_id = dirsync.members()["ann@example.org"]["external_id"]
    if between_runs:
        tree.server.modify_ldif(f"dn: {tree.user_dn('ann')}\nchangetype: delete\n")
        _sync(dirsync)
        assert dirsync.members()["ann@example.org"]["status"] == "revoked"
        tree.add(tree.person("ann"))
    else:
        _recreate(dirsync, "ann")

    result, _ = _sync(dirsync)

    ann = dirsync.members()["ann@example.org"]
    assert ann["external_id"] != old_id and ann["status"] == "confirmed"
    (update,) = result["plan"]["update"]
    assert update["changes"]["external_id"] == {"before": old_id, "after": ann["external_id"]}
    assert len(result["plan"]["restore"]) == (1 if between_runs else 0)
    assert not result["plan"]["invite"] and not result["plan"]["revoke"]
    # refint took the old entry out of Eng; the new one is in no group until added
    assert ann["groups"] == []
    events = [e for e in dirsync.json("events", "--org", "acme") if e["target"] == ann["email"]]
    relinked = [e for e in events if e["action"] == "member.update"][-1]
    assert relinked["before"]["external_id"] == old_id
    assert relinked["after"]["external_id"] == ann["external_id"]
    _full_plan_is_empty(dirsync)


def test_a_member_an_administrator_revoked_is_not_taken_over_by_a_recreated_user(
    dirsync: Dirsync,
) -> None:
    _team(dirsync)
    old_id = dirsync.members()["ann@example.org"]["external_id"]
    code, out, err = dirsync.run("member", "revoke", "--org", "acme", "ann@example.org")
    assert code == 0, (out, err)
    _recreate(dirsync, "ann")

    result, _ = _sync(dirsync)

    assert not result["plan"]["update"] and not result["plan"]["restore"]
    assert any("linked to " + old_id in w for w in result["warnings"]), result["warnings"]
    ann = dirsync.members()["ann@example.org"]
    assert (ann["external_id"], ann["status"]) == (old_id, "revoked")


def test_relink_recreated_false_keeps_the_old_behaviour(dirsync: Dirsync) -> None:
    _team(dirsync)
    dirsync.set(sync={"overwrite_existing": True, "relink_recreated": False})
    old_id = dirsync.members()["ann@example.org"]["external_id"]
    _recreate(dirsync, "ann")
    result, _ = _sync(dirsync)
    assert not result["plan"]["update"] and not result["plan"]["invite"]
    assert dirsync.members()["ann@example.org"]["external_id"] == old_id


def test_a_posix_group_naming_members_by_dn_in_member_uid_syncs_them(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(
        tree.person("ann"),
        tree.person("ben"),
        ldif_record(
            f"cn=staff,{tree.groups}",
            {
                "objectClass": "posixGroup",
                "cn": "staff",
                "gidNumber": "5000",
                "memberUid": [tree.user_dn("ann"), "ben"],
            },
        ),
    )
    dirsync.set(source={"group_object_class": "posixGroup", "member_attribute": "memberUid"})
    result = dirsync.sync_json()
    assert not any("match no user" in w for w in result["warnings"]), result["warnings"]
    assert dirsync.groups()["staff"]["members"] == ["ann@example.org", "ben@example.org"]


@pytest.mark.parametrize("between_runs", [False, True], ids=["in-one-delta", "a-run-apart"])
def test_a_user_created_again_is_back_in_the_posix_group_that_names_her_dn(
    dirsync: Dirsync, between_runs: bool
) -> None:
    # memberUid compares exactly, and refint leaves it alone: the group still holds the DN as
    # it was written, capitals and all, and the delta must find the group by that spelling
    tree = dirsync.tree
    dn = f"cn=Ann Lee,{tree.people}"
    staff = f"cn=staff,{tree.groups}"
    posix = {"objectClass": "posixGroup", "cn": "staff", "gidNumber": "5000"}
    tree.add(
        tree.person("ann", rdn="cn=Ann Lee"),
        tree.person("ben"),
        ldif_record(staff, {**posix, "memberUid": [dn, "ben"]}),
    )
    dirsync.set(
        source={"group_object_class": "posixGroup", "member_attribute": "memberUid"},
        sync={"overwrite_existing": True, "max_removals": 10},
    )
    dirsync.sync_json()
    assert dirsync.groups()["staff"]["members"] == ["ann@example.org", "ben@example.org"]
    tree.server.modify_ldif(f"dn: {dn}\nchangetype: delete\n")
    if between_runs:
        _sync(dirsync)
        assert dirsync.groups()["staff"]["members"] == ["ben@example.org"]
    tree.add(tree.person("ann", rdn="cn=Ann Lee"))

    result, _ = _sync(dirsync)

    assert dirsync.members()["ann@example.org"]["status"] == "invited"
    assert dirsync.groups()["staff"]["members"] == ["ann@example.org", "ben@example.org"]
    assert not any("match no user" in w for w in result["warnings"]), result["warnings"]
    _full_plan_is_empty(dirsync)
