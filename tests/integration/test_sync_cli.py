"""The contract, end to end: the dirsync CLI against a real slapd and a real SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.testing.store_files import sqlite_connection
from tests.integration.conftest import LdapTree


class Dirsync:
    """Runs the CLI for one test: its own config file and store (SQLite in tmp_path unless
    ``store_url`` names another)."""

    def __init__(self, tree: LdapTree, tmp_path: Path, store_url: str | None = None) -> None:
        self.tree = tree
        self.tmp_path = tmp_path
        self.db = tmp_path / "store" / "dirsync.db"
        self.store_url = store_url or f"sqlite:///{self.db}"
        self.config = tmp_path / "dirsync.toml"
        self.source: dict[str, Any] = {
            "type": "ldap",
            "url": tree.server.ldaps_url,  # a password never crosses in clear
            "ca_file": str(tree.server.ca_file),
            "base_dn": tree.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "bind_dn": tree.server.reader_dn,
            "bind_password": tree.server.reader_password,
            "disabled_filter": "(employeeType=disabled)",
            "timeout": "10s",
        }
        self.sync: dict[str, Any] = {}
        self.org: dict[str, Any] = {}
        self.write()

    def write(self) -> None:
        lines = ["[store]", f"url = {_toml(self.store_url)}", ""]
        lines += ["[[organization]]", 'name = "acme"']
        lines += [f"{k} = {_toml(v)}" for k, v in self.org.items()]
        lines += ["", "[organization.source]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.source.items()]
        lines += ["", "[organization.sync]"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.sync.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def set(
        self,
        *,
        source: dict[str, Any] | None = None,
        sync: dict[str, Any] | None = None,
        org: dict[str, Any] | None = None,
    ) -> None:
        self.source.update(source or {})
        self.sync.update(sync or {})
        self.org.update(org or {})
        self.write()

    def run(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def json(self, *args: str, code: int = 0) -> Any:
        exit_code, out, err = self.run(*args, "--json")
        assert exit_code == code, (exit_code, out, err)
        return json.loads(out)

    def sync_json(self, *args: str, code: int = 0) -> dict[str, Any]:
        (result,) = self.json("sync", *args, code=code)
        return result  # type: ignore[no-any-return]

    def members(self) -> dict[str, dict[str, Any]]:
        return {m["email"]: m for m in self.json("members", "--org", "acme")}

    def groups(self) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.json("groups", "--org", "acme")}

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite_connection(self.db) as conn:
            rows = conn.execute(statement, params).fetchall()
            if not statement.lstrip().upper().startswith("SELECT"):
                # like every writer outside a sync, bump the version: quiet runs (no change
                # in the directory) skip planning only while the version is the one they left
                conn.execute("UPDATE organizations SET version = version + 1")
            return rows

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = [r[0] for r in self.sql("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(self.sql(f"SELECT * FROM {t}"), key=repr) for t in tables}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    return Dirsync(ldap_tree, tmp_path)


def set_disabled(tree: LdapTree, uid: str, disabled: bool) -> None:
    change = "replace: employeeType\nemployeeType: disabled" if disabled else "delete: employeeType"
    tree.server.modify_ldif(f"dn: {tree.user_dn(uid)}\nchangetype: modify\n{change}\n")


def modify(tree: LdapTree, dn: str, *changes: str) -> None:
    """One ldapmodify of ``dn``; each change is e.g. ``"replace: mail\nmail: x@y"``."""
    tree.server.modify_ldif(f"dn: {dn}\nchangetype: modify\n" + "\n-\n".join(changes) + "\n")


def company(tree: LdapTree) -> None:
    """Four people, one disabled; Engineering nested in All Staff."""
    tree.add(
        tree.person("alice", display_name="Alice Andersen"),
        tree.person("bob", display_name="Bob Brown"),
        tree.person("carol", display_name="Carol Chen"),
        tree.person("olaf", extra={"employeeType": "disabled"}),
        tree.group(
            "Engineering", [tree.user_dn("alice"), tree.user_dn("bob"), tree.user_dn("olaf")]
        ),
        tree.group("All Staff", [tree.group_dn("Engineering"), tree.user_dn("carol")]),
    )


def test_a_first_sync_invites_enabled_users_and_builds_flattened_groups(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    result = dirsync.sync_json()
    assert result["organization"] == "acme" and result["outcome"] == "applied"
    assert result["dry_run"] is False and result["error"] is None
    assert set(result["plan"]) >= {
        "invite",
        "update",
        "revoke",
        "restore",
        "remove",
        "create_groups",
        "update_groups",
        "delete_groups",
    }
    assert sorted(i["email"] for i in result["plan"]["invite"]) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert all(set(i) >= {"email", "external_id"} for i in result["plan"]["invite"])

    members = dirsync.members()
    assert set(members) == {"alice@example.org", "bob@example.org", "carol@example.org"}
    alice = members["alice@example.org"]
    assert alice["status"] == "invited" and alice["role"] == "user"
    assert alice["name"] == "Alice Andersen"
    assert alice["external_id"] == dirsync.tree.entry_uuid(dirsync.tree.user_dn("alice"))
    assert alice["groups"] == ["All Staff", "Engineering"]
    assert members["carol@example.org"]["groups"] == ["All Staff"]

    groups = dirsync.groups()
    assert groups["All Staff"]["members"] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert groups["Engineering"]["members"] == ["alice@example.org", "bob@example.org"]
    assert groups["Engineering"]["external_id"] == dirsync.tree.entry_uuid(
        dirsync.tree.group_dn("Engineering")
    )


def test_a_second_sync_with_no_change_is_unchanged(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    before = dirsync.dump()
    again = dirsync.sync_json()
    assert again["outcome"] == "unchanged"
    assert all(not entries for entries in again["plan"].values())
    after = dirsync.dump()
    assert {k: v for k, v in after.items() if k not in {"runs", "organizations"}} == {
        k: v for k, v in before.items() if k not in {"runs", "organizations"}
    }


def test_a_dry_run_prints_the_plan_and_never_creates_the_store(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    result = dirsync.sync_json("--dry-run")
    assert result["outcome"] == "dry_run" and result["dry_run"] is True
    assert len(result["plan"]["invite"]) == 3
    assert not dirsync.db.exists() and not dirsync.db.parent.exists()


def test_a_dry_run_leaves_an_existing_store_byte_for_byte(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    dirsync.tree.add(dirsync.tree.person("dave"))
    files = sorted(dirsync.db.parent.rglob("*"))  # with the lock files in dirsync.db.run/
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files if f.is_file()}
    result = dirsync.sync_json("--dry-run")
    assert [i["email"] for i in result["plan"]["invite"]] == ["dave@example.org"]
    assert sorted(dirsync.db.parent.rglob("*")) == files
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files if f.is_file()} == before


def test_an_email_or_name_change_updates_the_same_member(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    old = dirsync.members()["alice@example.org"]
    dirsync.tree.server.modify_ldif(
        f"dn: {dirsync.tree.user_dn('alice')}\nchangetype: modify\nreplace: mail\n"
        "mail: Alice.Andersen@Example.org\n-\nreplace: displayName\ndisplayName: Alice A.\n"
    )
    result = dirsync.sync_json()
    assert (
        not result["plan"]["invite"]
        and not result["plan"]["revoke"]
        and not result["plan"]["remove"]
    )
    assert [u["email"] for u in result["plan"]["update"]] == ["alice.andersen@example.org"]
    members = dirsync.members()
    assert "alice@example.org" not in members
    new = members["alice.andersen@example.org"]
    assert (new["external_id"], new["name"], new["status"]) == (
        old["external_id"],
        "Alice A.",
        "invited",
    )


def test_disabling_revokes_and_enabling_restores_the_previous_status(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    dirsync.sql("UPDATE members SET status = 'accepted' WHERE email = 'bob@example.org'")
    set_disabled(dirsync.tree, "bob", True)
    result = dirsync.sync_json()
    assert [r["email"] for r in result["plan"]["revoke"]] == ["bob@example.org"]
    bob = dirsync.members()["bob@example.org"]
    assert bob["status"] == "revoked" and bob["groups"] == []

    set_disabled(dirsync.tree, "bob", False)
    result = dirsync.sync_json()
    assert [(r["email"], r["status"]) for r in result["plan"]["restore"]] == [
        ("bob@example.org", "accepted")
    ]
    bob = dirsync.members()["bob@example.org"]
    assert bob["status"] == "accepted" and bob["groups"] == ["All Staff", "Engineering"]


def test_an_unlinked_member_is_adopted_once_and_keeps_its_status(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.sync_json("--dry-run")  # nothing written yet
    dirsync.tree.add(dirsync.tree.person("zed"))
    dirsync.sync_json()
    # an administrator had invited carol by hand before the directory was connected
    dirsync.sql(
        "UPDATE members SET external_id = NULL, status = 'confirmed' "
        "WHERE email = 'carol@example.org'"
    )
    result = dirsync.sync_json()
    assert not result["plan"]["invite"]
    assert [(u["email"], u["adopt"]) for u in result["plan"]["update"]] == [
        ("carol@example.org", True)
    ]
    carol = dirsync.members()["carol@example.org"]
    assert carol["status"] == "confirmed"
    assert carol["external_id"] == dirsync.tree.entry_uuid(dirsync.tree.user_dn("carol"))
    assert dirsync.sync_json()["outcome"] == "unchanged"


def test_absent_users_are_deprovisioned_only_with_overwrite_existing(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    # complete reads: a syncrepl delta would report carol's deletion explicitly (a tombstone)
    dirsync.set(source={"incremental": "off"}, sync={"max_removals": 5})
    dirsync.sync_json()
    dirsync.tree.server.delete_tree(dirsync.tree.user_dn("carol"))
    result = dirsync.sync_json()
    assert (
        not result["plan"]["revoke"]
        and dirsync.members()["carol@example.org"]["status"] == "invited"
    )

    dirsync.set(sync={"overwrite_existing": True})
    result = dirsync.sync_json()
    assert [r["email"] for r in result["plan"]["revoke"]] == ["carol@example.org"]
    assert dirsync.members()["carol@example.org"]["status"] == "revoked"

    dirsync.set(sync={"deprovision": "remove"})
    result = dirsync.sync_json()
    assert [r["email"] for r in result["plan"]["remove"]] == ["carol@example.org"]
    assert "carol@example.org" not in dirsync.members()


def test_owners_and_admins_are_never_revoked_by_a_sync(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.set(sync={"overwrite_existing": True, "max_removals": 10})
    dirsync.sync_json()
    dirsync.sql("UPDATE members SET role = 'owner' WHERE email = 'alice@example.org'")
    dirsync.sql("UPDATE members SET role = 'admin' WHERE email = 'bob@example.org'")
    dirsync.tree.server.delete_tree(dirsync.tree.user_dn("alice"))
    set_disabled(dirsync.tree, "bob", True)
    result = dirsync.sync_json()
    assert not result["plan"]["revoke"] and not result["plan"]["remove"]
    assert any("alice@example.org" in w for w in result["warnings"])
    members = dirsync.members()
    assert (
        members["alice@example.org"]["status"] == members["bob@example.org"]["status"] == "invited"
    )


def test_groups_follow_renames_and_membership_changes(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    company(tree)
    dirsync.sync_json()
    engineering_id = dirsync.groups()["Engineering"]["external_id"]
    tree.server.modify_ldif(
        f"dn: {tree.group_dn('Engineering')}\nchangetype: modrdn\nnewrdn: cn=R&D\ndeleteoldrdn: 1\n"
    )
    modify(tree, f"cn=R&D,{tree.groups}", f"delete: member\nmember: {tree.user_dn('bob')}")
    modify(tree, tree.group_dn("All Staff"), f"replace: member\nmember: cn=R&D,{tree.groups}")
    result = dirsync.sync_json()
    assert [g["name"] for g in result["plan"]["update_groups"]] == ["All Staff", "R&D"]
    assert not result["plan"]["create_groups"] and not result["plan"]["delete_groups"]
    groups = dirsync.groups()
    assert groups["R&D"]["external_id"] == engineering_id
    assert groups["R&D"]["members"] == ["alice@example.org"]
    assert groups["All Staff"]["members"] == ["alice@example.org"]


def test_a_plan_beyond_the_seats_is_refused_whole_with_the_shortfall(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.set(org={"seats": 2})
    code, out, _err = dirsync.run("sync")
    assert code == 3
    assert "short by 1" in out
    result = dirsync.sync_json(code=3)
    assert result["outcome"] == "refused" and "needs 3 seats" in result["error"]
    assert dirsync.members() == {}
    status = dirsync.json("status")[0]
    assert status["outcome"] == "refused"


def test_more_removals_than_max_removals_is_refused_and_changes_nothing(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(*(tree.person(f"u{i}") for i in range(10)))
    dirsync.set(sync={"overwrite_existing": True, "max_removals": 2})
    dirsync.sync_json()
    for i in range(3):
        tree.server.delete_tree(tree.user_dn(f"u{i}"))
    before = dirsync.members()
    result = dirsync.sync_json(code=3)
    assert result["outcome"] == "refused" and len(result["plan"]["revoke"]) == 3
    assert dirsync.members() == before


def test_a_shrunken_directory_is_refused_until_its_exact_plan_is_approved(
    dirsync: Dirsync,
) -> None:
    tree = dirsync.tree
    tree.add(*(tree.person(f"u{i}") for i in range(10)))
    dirsync.set(sync={"overwrite_existing": True, "max_removals": "100%"})
    dirsync.sync_json()
    for i in range(6):
        tree.server.delete_tree(tree.user_dn(f"u{i}"))
    before = dirsync.dump()

    refused = dirsync.sync_json(code=3)
    digest = refused["plan_digest"]
    assert refused["outcome"] == "refused" and len(refused["plan"]["revoke"]) == 6
    assert "min_source_ratio" in refused["error"] and f"--approve {digest}" in refused["error"]
    code, out, _err = dirsync.run("sync")
    assert code == 3 and f"--approve {digest}" in out
    wrong = dirsync.sync_json("--approve", "0000000000000000", code=3)
    assert "is not this run's plan" in wrong["error"]
    assert {k: v for k, v in dirsync.dump().items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }

    approved = dirsync.sync_json("--approve", digest)
    assert approved["outcome"] == "applied" and approved["plan_digest"] == digest
    assert any("applied by approval" in w for w in approved["warnings"])
    assert sum(m["status"] == "revoked" for m in dirsync.members().values()) == 6
    assert dirsync.sync_json()["outcome"] == "unchanged"  # the new size is the new baseline


def test_approve_without_naming_one_organization_is_a_usage_error(dirsync: Dirsync) -> None:
    text = dirsync.config.read_text()
    second = text[text.index("[[organization]]") :].replace('name = "acme"', 'name = "beta"')
    dirsync.config.write_text(text + "\n" + second)
    code, _out, err = dirsync.run("sync", "--approve", "0123456789abcdef")
    assert code == 2 and "--approve applies to one organization" in err
    assert not dirsync.db.exists()


def test_a_read_that_suddenly_yields_no_users_never_wipes_the_organization(
    dirsync: Dirsync,
) -> None:
    company(dirsync.tree)
    dirsync.set(sync={"overwrite_existing": True, "max_removals": "100%"})
    dirsync.sync_json()
    before = dirsync.members()
    dirsync.set(source={"user_filter": "(uid=nobody-matches-this)"})
    result = dirsync.sync_json(code=3)
    assert "no users" in result["error"]
    assert dirsync.members() == before


def test_users_without_mail_get_the_suffix_and_duplicates_are_warned(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(
        tree.person("kim", mail=None),
        tree.person("twin1", mail="twin@example.org"),
        tree.person("twin2", mail="twin@example.org"),
    )
    result = dirsync.sync_json()
    assert any("kim" in w and "no email" in w for w in result["warnings"])
    assert any("twin1" in w and "twin2" in w for w in result["warnings"])
    assert result["plan"]["invite"] == []
    dirsync.set(source={"email_suffix": "@corp.example"})
    result = dirsync.sync_json()
    assert [i["email"] for i in result["plan"]["invite"]] == ["kim@corp.example"]


def test_escaped_dns_and_special_group_names_sync_correctly(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(
        tree.person("doe", rdn="cn=Doe\\, John \\2B Co", mail="john.doe@example.org"),
        tree.group("Ops (*) \\ team", [f"cn=Doe\\2C John \\+ Co,{tree.people}"]),
    )
    dirsync.sync_json()
    assert dirsync.groups()["Ops (*) \\ team"]["members"] == ["john.doe@example.org"]


def test_paging_reads_every_user_across_several_pages(dirsync: Dirsync) -> None:
    tree = dirsync.tree
    tree.add(*(tree.person(f"p{i:02d}") for i in range(23)))
    dirsync.set(source={"page_size": 5})
    assert len(dirsync.sync_json()["plan"]["invite"]) == 23


def test_the_test_command_shows_users_and_groups_after_filters(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.set(source={"user_filter": "(!(uid=carol))"})
    shown = dirsync.json("test", "--org", "acme")
    assert shown["organization"] == "acme"
    users = {u["email"]: u for u in shown["users"]}
    assert set(users) == {"alice@example.org", "bob@example.org", "olaf@example.org"}
    assert users["olaf@example.org"]["disabled"] is True
    assert set(users["alice@example.org"]) >= {"email", "external_id", "name", "disabled"}
    groups = {g["name"]: g for g in shown["groups"]}
    assert groups["All Staff"]["members"] == ["alice@example.org", "bob@example.org"]
    assert isinstance(shown["warnings"], list)
    assert not dirsync.db.exists()


def test_status_reports_the_last_run_of_each_organization(dirsync: Dirsync) -> None:
    contract = ("organization", "last_started", "last_finished", "outcome", "counts", "error")
    contract += ("next_run",)  # the contract's keys; more may be added (the MSP overview's)
    assert [{k: row[k] for k in contract} for row in dirsync.json("status")] == [
        {
            "organization": "acme",
            "last_started": None,
            "last_finished": None,
            "outcome": None,
            "counts": {},
            "error": None,
            "next_run": None,
        }
    ]
    company(dirsync.tree)
    dirsync.sync_json()
    (status,) = dirsync.json("status")
    assert status["outcome"] == "applied" and status["counts"]["invite"] == 3
    assert status["last_started"].endswith("Z") and status["next_run"] > status["last_finished"]


def test_an_unreachable_directory_fails_with_exit_1_and_a_one_line_message(
    dirsync: Dirsync,
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    before = dirsync.dump()
    dirsync.set(source={"url": "ldaps://127.0.0.1:1", "timeout": "2s"})
    code, out, _err = dirsync.run("sync")
    assert code == 1
    assert "acme" in out and "127.0.0.1:1" in out
    (status,) = dirsync.json("status")
    assert status["outcome"] == "failed" and status["error"]
    after = dirsync.dump()
    assert {k: v for k, v in after.items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }


def test_a_wrong_password_fails_with_exit_1_and_never_shows_the_password(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    dirsync.set(source={"bind_password": "canary-Pa55word-xyz"})
    code, out, err = dirsync.run("sync")
    assert code == 1
    assert "canary-Pa55word-xyz" not in out + err
    result = dirsync.sync_json(code=1)
    assert result["outcome"] == "failed" and "canary" not in json.dumps(result)
    assert b"canary-Pa55word-xyz" not in dirsync.db.read_bytes()


def test_config_check_names_the_key_and_exits_2(dirsync: Dirsync) -> None:
    assert dirsync.run("config", "check")[0] == 0
    dirsync.set(source={"bogus_key": 1, "page_size": 0}, sync={"max_removals": "lots"})
    code, out, err = dirsync.run("config", "check")
    assert code == 2
    assert "organization[acme].source.bogus_key: unknown key" in err
    assert "organization[acme].source.page_size" in err
    assert "organization[acme].sync.max_removals" in err
    assert "Traceback" not in out + err
    code, _, err = dirsync.run("sync")
    assert code == 2 and "bogus_key" in err


def test_an_unknown_organization_is_a_usage_error(dirsync: Dirsync) -> None:
    code, _, err = dirsync.run("members", "--org", "nope")
    assert code == 2 and "nope" in err


def test_the_console_script_and_python_m_work_in_a_real_process(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    proc = subprocess.run(
        [sys.executable, "-m", "dirsync", "--config", str(dirsync.config), "sync", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["outcome"] == "applied"
    assert dirsync.tree.server.reader_password not in proc.stdout + proc.stderr


def test_ldaps_with_a_ca_file_and_a_password_file(
    dirsync: Dirsync, monkeypatch: pytest.MonkeyPatch
) -> None:
    company(dirsync.tree)
    (dirsync.tmp_path / "ca.pem").write_bytes(dirsync.tree.server.ca_file.read_bytes())
    (dirsync.tmp_path / "reader.pw").write_text(dirsync.tree.server.reader_password + "\n")
    source = {"url": dirsync.tree.server.ldaps_url, "ca_file": "ca.pem"}
    del dirsync.source["bind_password"]
    dirsync.set(source={**source, "bind_password_file": "reader.pw"})
    assert len(dirsync.sync_json()["plan"]["invite"]) == 3

    monkeypatch.setenv("ACME_READER_PASSWORD", dirsync.tree.server.reader_password)
    del dirsync.source["bind_password_file"]
    dirsync.set(
        source={
            "bind_password": "${ACME_READER_PASSWORD}",
            "start_tls": True,
            "url": dirsync.tree.server.url,
        }
    )
    assert dirsync.sync_json()["outcome"] == "unchanged"


def test_a_certificate_from_another_ca_fails_with_exit_1(dirsync: Dirsync) -> None:
    company(dirsync.tree)
    other = dirsync.tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    dirsync.set(source={"url": dirsync.tree.server.ldaps_url, "ca_file": str(other)})
    code, out, _err = dirsync.run("sync")
    assert code == 1 and "acme" in out and "certificate" in out.lower()
    assert not dirsync.members()


KILL_INSIDE_APPLY = """
import os, signal, sys
from dirsync.state import apply
from dirsync.cli.main import main

fatal_stage, config = sys.argv[1], sys.argv[2]

def die(stage: str) -> None:
    if stage == fatal_stage:
        os.kill(os.getpid(), signal.SIGKILL)

apply._fault_hook = die
sys.argv = ["dirsync", "--config", config, "sync"]
main()
"""


@pytest.mark.parametrize(
    "stage", ["after_members", "after_groups", "after_mirror", "before_commit"]
)
def test_a_process_killed_inside_apply_leaves_the_store_as_it_was(
    dirsync: Dirsync, stage: str
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    dirsync.tree.add(dirsync.tree.person("dave"))
    set_disabled(dirsync.tree, "bob", True)
    before = dirsync.dump()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_INSIDE_APPLY, stage, str(dirsync.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    after = dirsync.dump()
    runs_before, runs_after = before.pop("runs"), after.pop("runs")
    assert after == before
    (killed,) = set(runs_after) - set(runs_before)
    assert killed[4] == "running"  # the history shows a run that never finished

    result = dirsync.sync_json()
    assert [i["email"] for i in result["plan"]["invite"]] == ["dave@example.org"]
    assert [r["email"] for r in result["plan"]["revoke"]] == ["bob@example.org"]
    outcomes = dict(dirsync.sql("SELECT id, outcome FROM runs"))
    assert outcomes[killed[0]] == "interrupted"
    assert outcomes[result["run_id"]] == "applied"


def test_an_unexpected_error_is_one_line_and_exit_1_not_a_traceback(
    dirsync: Dirsync, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("dirsync.cli.commands.run_organization", broken)
    code, out, err = dirsync.run("sync")
    assert code == 1
    assert "dirsync: internal error: RuntimeError: simulated bug" in err
    assert out == ""
