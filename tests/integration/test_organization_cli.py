"""The organization side end to end: the CLI against the real slapd and a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from dirsync.cli.admin import os_user
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, _toml, company, modify, set_disabled


class OrgDirsync(Dirsync):
    """``Dirsync`` with collections for acme, and more organizations after it."""

    def __init__(self, tree: LdapTree, tmp_path: Path) -> None:
        self.collections: list[dict[str, Any]] = []
        self.others: list[str] = []
        super().__init__(tree, tmp_path)

    def write(self) -> None:
        super().write()
        lines: list[str] = []
        for c in getattr(self, "collections", []):
            lines += ["", "[[organization.collection]]"]
            lines += [f"{k} = {_toml(v)}" for k, v in c.items()]
        text = self.config.read_text() + "\n".join(lines) + "\n"
        self.config.write_text(text + "".join(getattr(self, "others", [])))

    def add_organization(self, name: str, tree: LdapTree, **org: Any) -> None:
        source = {**self.source, "base_dn": tree.base_dn}
        lines = ["", "[[organization]]", f"name = {_toml(name)}"]
        lines += [f"{k} = {_toml(v)}" for k, v in org.items()]
        lines += ["", "[organization.source]"]
        lines += [f"{k} = {_toml(v)}" for k, v in source.items()]
        self.others.append("\n".join(lines) + "\n")
        self.write()

    def collections_json(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.json("collections", "--org", "acme")}

    def member(self, *args: str) -> tuple[int, str, str]:
        return self.run("member", args[0], "--org", "acme", *args[1:])


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> OrgDirsync:
    return OrgDirsync(ldap_tree, tmp_path)


SOCIAL = {
    "name": "Social Media",
    "external_id": "col-social",
    "groups": ["Engineering"],
    "permission": "edit",
}
WIKI = {
    "name": "Company Wiki",
    "external_id": "col-wiki",
    "groups": ["All Staff", "Finance"],
    "permission": "read",
}


def test_collections_are_created_and_their_access_follows_group_membership_across_syncs(
    dirsync: OrgDirsync,
) -> None:
    tree = dirsync.tree
    company(tree)
    dirsync.collections = [SOCIAL, WIKI]
    dirsync.write()
    dry = dirsync.sync_json("--dry-run")
    assert sorted(c["name"] for c in dry["plan"]["create_collections"]) == [
        "Company Wiki",
        "Social Media",
    ]
    assert any("'Finance'" in w for w in dry["warnings"])
    code, out, _ = dirsync.run("sync", "--dry-run")
    assert code == 0 and "create collection" in out and "Engineering (edit)" in out

    result = dirsync.sync_json()
    assert len(result["plan"]["create_collections"]) == 2
    shown = dirsync.collections_json()
    assert shown["Social Media"] == {
        "name": "Social Media",
        "external_id": "col-social",
        "managed": True,
        "groups": [{"name": "Engineering", "permission": "edit"}],
        "members": ["alice@example.org", "bob@example.org"],
    }
    assert shown["Company Wiki"]["members"] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]

    # bob leaves Engineering, carol joins: access follows, the collections themselves stay
    modify(
        tree,
        tree.group_dn("Engineering"),
        f"delete: member\nmember: {tree.user_dn('bob')}",
        f"add: member\nmember: {tree.user_dn('carol')}",
    )
    result = dirsync.sync_json()
    assert not result["plan"]["create_collections"] and not result["plan"]["update_collections"]
    assert dirsync.collections_json()["Social Media"]["members"] == [
        "alice@example.org",
        "carol@example.org",
    ]

    # a disabled user loses access with the group membership
    set_disabled(tree, "alice", True)
    dirsync.sync_json()
    assert dirsync.collections_json()["Social Media"]["members"] == ["carol@example.org"]

    # the config changes the permission and the groups: one update, the rest is unchanged
    dirsync.collections = [{**SOCIAL, "permission": "manage", "groups": ["All Staff"]}, WIKI]
    dirsync.write()
    result = dirsync.sync_json()
    (update,) = result["plan"]["update_collections"]
    assert [(g["group"], g["permission"]) for g in update["grant"]] == [("All Staff", "manage")]
    assert [g["group"] for g in update["withdraw"]] == ["Engineering"]
    social = dirsync.collections_json()["Social Media"]
    assert social["groups"] == [{"name": "All Staff", "permission": "manage"}]
    assert social["members"] == ["carol@example.org"]  # alice is disabled, bob left
    assert dirsync.sync_json()["outcome"] == "unchanged"
    code, out, _ = dirsync.run("collections", "--org", "acme")
    assert code == 0 and "Social Media" in out and "All Staff (manage)" in out


def test_a_collection_not_created_by_the_config_is_never_touched(dirsync: OrgDirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    dirsync.sql(
        "INSERT INTO collections (organization_id, external_id, name, managed, created_at) "
        "VALUES (1, 'col-board', 'Board', 0, '2026-01-01 00:00:00.000000')"
    )
    dirsync.collections = [{**SOCIAL, "external_id": "col-board"}]
    dirsync.write()
    result = dirsync.sync_json()
    assert not result["plan"]["update_collections"] and not result["plan"]["create_collections"]
    assert any("not created by the config" in w for w in result["warnings"])
    assert dirsync.collections_json()["Board"]["groups"] == []


def test_every_member_command_and_its_refusals_through_the_cli(dirsync: OrgDirsync) -> None:
    company(dirsync.tree)
    code, _, err = dirsync.member("accept", "alice@example.org")
    assert code == 2 and "no members in the store yet" in err and not dirsync.db.exists()
    dirsync.collections = [SOCIAL]
    dirsync.write()
    dirsync.sync_json()
    alice = "alice@example.org"
    code, _, err = dirsync.member("confirm", alice)
    assert code == 2 and "only an accepted member can be confirmed" in err
    assert dirsync.member("accept", alice)[0] == 0
    code, out, _ = dirsync.member("confirm", "Alice@Example.org")
    assert code == 0 and "confirmed" in out
    assert dirsync.member("set-role", alice, "owner")[0] == 0
    assert dirsync.members()[alice]["status"] == "confirmed"
    assert dirsync.members()[alice]["role"] == "owner"

    for refused in (("revoke", alice), ("remove", alice), ("set-role", alice, "admin")):
        code, _, err = dirsync.member(*refused)
        assert code == 2 and "last confirmed owner" in err, refused
    code, _, err = dirsync.member("accept", "nobody@example.org")
    assert code == 2 and "nobody@example.org" in err

    bob = "bob@example.org"
    assert dirsync.member("accept", bob)[0] == 0
    assert dirsync.member("revoke", bob)[0] == 0
    assert dirsync.members()[bob]["status"] == "revoked"
    assert dirsync.collections_json()["Social Media"]["members"] == [alice]  # revoked: no access
    assert dirsync.sync_json()["plan"]["restore"] == []  # a sync never undoes an admin revoke
    changed = dirsync.json("member", "restore", "--org", "acme", bob)
    assert changed["after"]["status"] == "accepted" and changed["changed"] is True
    assert dirsync.member("set-role", bob, "manager")[0] == 0
    assert dirsync.member("remove", "carol@example.org")[0] == 0
    assert "carol@example.org" not in dirsync.members()
    assert dirsync.members()[bob]["role"] == "manager"
    assert dirsync.sync_json()["plan"]["update"] == []  # the sync never changes a role


def test_an_admin_action_is_one_event_with_the_os_user_and_before_after(
    dirsync: OrgDirsync,
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    started = datetime.now(UTC).isoformat()
    dirsync.member("accept", "bob@example.org")
    events = dirsync.json("events", "--org", "acme", "--since", started)
    assert events == [
        {
            "at": events[0]["at"],
            "organization": "acme",
            "actor": f"admin:{os_user()}",
            "action": "member.accept",
            "target": "bob@example.org",
            "before": {"status": "invited", "role": "user"},
            "after": {"status": "accepted", "role": "user"},
        }
    ]
    code, _, err = dirsync.run("events", "--org", "acme", "--since", "last tuesday")
    assert code == 2 and "ISO 8601" in err


def test_the_audit_trail_of_a_sync_run_names_the_run_and_each_change(dirsync: OrgDirsync) -> None:
    company(dirsync.tree)
    dirsync.collections = [SOCIAL]
    dirsync.write()
    run = dirsync.sync_json()
    events = dirsync.json("events", "--org", "acme")
    assert {e["actor"] for e in events} == {f"sync:{run['run_id']}"}
    assert sorted((e["action"], e["target"]) for e in events) == [
        ("collection.create", "Social Media"),
        ("group.create", "All Staff"),
        ("group.create", "Engineering"),
        ("member.invite", "alice@example.org"),
        ("member.invite", "bob@example.org"),
        ("member.invite", "carol@example.org"),
    ]
    created = next(e for e in events if e["action"] == "collection.create")
    assert created["before"] is None
    assert created["after"]["access"] == [{"group": "Engineering", "permission": "edit"}]
    code, out, _ = dirsync.run("events", "--org", "acme")
    assert code == 0 and "collection.create" in out


def test_invitations_pending_too_long_are_counted_and_sent_again(dirsync: OrgDirsync) -> None:
    company(dirsync.tree)
    dirsync.set(sync={"reinvite_after": "7d"})
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with freeze_time(start, tick=True):
        dirsync.sync_json()
    dirsync.member("accept", "carol@example.org")
    with freeze_time(start + timedelta(days=6), tick=True):
        (status,) = dirsync.json("status")
        assert status["pending_invitations"] == 2 and status["stale_invitations"] == 0
        assert dirsync.sync_json()["plan"]["reinvite"] == []
    with freeze_time(start + timedelta(days=8), tick=True):
        (status,) = dirsync.json("status")
        assert status["stale_invitations"] == 2 and status["reinvite_after"] == "604800s"
        invited = dirsync.json("members", "--org", "acme", "--status", "invited")
        assert [m["email"] for m in invited] == ["alice@example.org", "bob@example.org"]
        assert invited[0]["invited_at"].startswith("2026-11-02T09:00")
        result = dirsync.sync_json()
        assert [r["email"] for r in result["plan"]["reinvite"]] == [
            "alice@example.org",
            "bob@example.org",
        ]
        (status,) = dirsync.json("status")
        assert status["stale_invitations"] == 0
        assert dirsync.sync_json()["plan"]["reinvite"] == []
    events = [
        e for e in dirsync.json("events", "--org", "acme") if e["action"] == "member.reinvite"
    ]
    assert len(events) == 2 and events[0]["after"]["invited_at"].startswith("2026-11-10T09:00")


def second_directory(ldap_tree: LdapTree) -> LdapTree:
    """Another subtree of the session's slapd: a second client's directory."""
    base = ldap_tree.base_dn.replace("ou=", "ou=x", 1)
    other = LdapTree(ldap_tree.server, base, ldap_tree.tmp_path)
    name = base.split(",", 1)[0].removeprefix("ou=")
    ldap_tree.server.add_ldif(
        f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}\n\n"
        f"dn: {other.people}\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: {other.groups}\nobjectClass: organizationalUnit\nou: Groups\n"
    )
    return other


def test_the_overview_covers_three_organizations_fed_by_two_directories(
    dirsync: OrgDirsync,
) -> None:
    company(dirsync.tree)
    other = second_directory(dirsync.tree)
    other.add(
        other.person("xena", mail="xena@globex.example"),
        other.person("yuri", mail="yuri@globex.example"),
    )
    dirsync.set(org={"seats": 10})
    dirsync.add_organization("globex", other, seats=5)
    dirsync.add_organization("initech", dirsync.tree)  # a second client on the first directory
    (acme, globex, initech) = dirsync.json("sync")
    assert [r["outcome"] for r in (acme, globex, initech)] == ["applied"] * 3
    dirsync.member("accept", "alice@example.org")

    rows = {r["organization"]: r for r in dirsync.json("status")}
    assert list(rows) == ["acme", "globex", "initech"]
    for row in rows.values():
        assert set(row) >= {
            "organization",
            "last_started",
            "last_finished",
            "outcome",
            "counts",
            "error",
            "next_run",
        }
        assert row["outcome"] == "applied" and row["last_sync_age_seconds"] >= 0
    assert rows["acme"]["seats"] == {"used": 3, "total": 10}
    assert rows["acme"]["members"] == {"invited": 2, "accepted": 1, "confirmed": 0, "revoked": 0}
    assert rows["globex"]["seats"] == {"used": 2, "total": 5}
    assert rows["globex"]["pending_invitations"] == 2
    assert rows["initech"]["seats"] == {"used": 3, "total": 0}
    assert rows["initech"]["warnings"] == [] and rows["initech"]["stale_invitations"] is None

    code, out, _ = dirsync.run("status")
    assert code == 0
    assert all(name in out for name in ("acme", "globex", "initech"))
    assert "3/10" in out and "2/5" in out and "3/unlimited" in out
    (only,) = dirsync.json("status", "--org", "globex")
    assert only["seats"] == {"used": 2, "total": 5}


def test_the_report_exports_members_with_groups_and_collections(dirsync: OrgDirsync) -> None:
    company(dirsync.tree)
    dirsync.tree.add(dirsync.tree.person("eve", display_name="=HYPERLINK(evil)"))
    dirsync.collections = [SOCIAL, {**WIKI, "groups": ["All Staff", "Engineering"]}]
    dirsync.write()
    dirsync.sync_json()
    code, out, _ = dirsync.run("report", "--org", "acme", "--format", "csv")
    assert code == 0
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["alice@example.org"]["groups"] == "All Staff; Engineering"
    assert rows["alice@example.org"]["collections"] == "Company Wiki (read); Social Media (edit)"
    assert rows["carol@example.org"]["collections"] == "Company Wiki (read)"
    assert rows["eve@example.org"]["name"] == "'=HYPERLINK(evil)"  # never run as a formula
    document = json.loads(dirsync.run("report", "--org", "acme", "--format", "json")[1])
    assert document["organization"] == "acme"
    by_email = {m["email"]: m for m in document["members"]}
    assert by_email["bob@example.org"]["collections"] == [
        {"name": "Company Wiki", "permission": "read"},
        {"name": "Social Media", "permission": "edit"},
    ]
    assert set(by_email["bob@example.org"]) >= {
        "email",
        "external_id",
        "name",
        "status",
        "role",
        "groups",
        "collections",
    }
