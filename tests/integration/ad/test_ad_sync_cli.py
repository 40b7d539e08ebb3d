"""The contract end to end against Active Directory: the dirsync CLI, a real Samba DC, SQLite."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.integration.ad.conftest import DISABLED, ENABLED, READER_PASSWORD, AdOu
from tests.integration.test_sync_cli import Dirsync

pytestmark = pytest.mark.samba


class AdDirsync(Dirsync):
    """The CLI driver of test_sync_cli.py, configured for one test's OU of the Samba DC."""

    def __init__(self, ou: AdOu, tmp_path: Path) -> None:
        self.tree = ou  # type: ignore[assignment]
        self.ou = ou
        self.tmp_path = tmp_path
        self.db = tmp_path / "store" / "dirsync.db"
        self.store_url = f"sqlite:///{self.db}"
        self.config = tmp_path / "dirsync.toml"
        self.source: dict[str, Any] = {
            "type": "active_directory",
            "url": ou.dc.ldaps_url,
            "ca_file": str(ou.dc.ca_file),
            "base_dn": ou.dn,
            "user_path": "OU=People",
            "group_path": "OU=Groups",
            "bind_dn": ou.dc.reader_dn,  # type: ignore[attr-defined]
            "bind_password": READER_PASSWORD,
            "timeout": "20s",
        }
        self.sync: dict[str, Any] = {"max_removals": 5}
        self.org: dict[str, Any] = {}
        self.write()

    def as_admin(self) -> None:
        """Bind as the Administrator, who may replicate changes: DirSync."""
        self.set(
            source={"bind_dn": self.ou.dc.admin_dn, "bind_password": self.ou.dc.admin_password}
        )


@pytest.fixture(params=["dirsync", "usn"])
def ad(request: pytest.FixtureRequest, ad_ou: AdOu, tmp_path: Path) -> AdDirsync:
    driver = AdDirsync(ad_ou, tmp_path)
    if request.param == "dirsync":
        driver.as_admin()
    return driver


def company(ou: AdOu) -> dict[str, str]:
    """Four people, olaf disabled; Engineering nested in All Staff; dan in no group."""
    alice, bob, carol, dan = ou.users("alice", "bob", "carol", "dan")
    (olaf,) = ou.users("olaf", userAccountControl=str(DISABLED))
    engineering = ou.group("Engineering", [alice, bob, olaf])
    ou.group("All Staff", [engineering, carol])
    return {"alice": alice, "bob": bob, "carol": carol, "dan": dan, "olaf": olaf}


def emails(ou: AdOu, *names: str) -> list[str]:
    return sorted(ou.email(n) for n in names)


def test_a_full_ad_sync_invites_enabled_users_and_flattens_nested_groups(ad: AdDirsync) -> None:
    dns = company(ad.ou)
    result = ad.sync_json()
    assert result["outcome"] == "applied" and result["error"] is None
    assert sorted(i["email"] for i in result["plan"]["invite"]) == emails(
        ad.ou, "alice", "bob", "carol", "dan"
    )
    members = ad.members()
    alice = members[ad.ou.email("alice")]
    assert alice["external_id"] == ad.ou.guid(dns["alice"])
    assert alice["groups"] == ["All Staff", "Engineering"] and alice["name"] == "Alice"
    groups = ad.groups()
    assert groups["All Staff"]["members"] == emails(ad.ou, "alice", "bob", "carol")
    assert groups["Engineering"]["external_id"] == ad.ou.guid(ad.ou.group_dn("Engineering"))


def test_an_incremental_run_without_changes_reads_nothing_and_is_unchanged(ad: AdDirsync) -> None:
    company(ad.ou)
    ad.sync_json()
    again = ad.sync_json()
    assert again["outcome"] == "unchanged" and again["entries_read"] == 0
    assert all(not entries for entries in again["plan"].values())


def test_disabling_revokes_and_enabling_restores_on_incremental_runs(ad: AdDirsync) -> None:
    dns = company(ad.ou)
    ad.sync_json()
    ad.ou.modify(dns["bob"], userAccountControl=DISABLED)
    result = ad.sync_json()
    assert [r["email"] for r in result["plan"]["revoke"]] == [ad.ou.email("bob")]
    assert 1 <= result["entries_read"] <= 2  # bob (and a group naming him), not everyone
    assert ad.members()[ad.ou.email("bob")]["status"] == "revoked"

    ad.ou.modify(dns["bob"], userAccountControl=ENABLED)
    result = ad.sync_json()
    assert [r["email"] for r in result["plan"]["restore"]] == [ad.ou.email("bob")]
    bob = ad.members()[ad.ou.email("bob")]
    assert bob["status"] == "invited" and bob["groups"] == ["All Staff", "Engineering"]


def test_a_user_deleted_in_ad_is_deprovisioned_by_the_next_incremental_run(ad: AdDirsync) -> None:
    dns = company(ad.ou)
    ad.sync_json()
    assert ad.sync["max_removals"] and "overwrite_existing" not in ad.sync
    ad.ou.delete(dns["dan"])
    result = ad.sync_json()
    assert result["outcome"] == "applied"
    assert [r["email"] for r in result["plan"]["revoke"]] == [ad.ou.email("dan")]
    assert result["entries_read"] == 1  # dan's tombstone, nothing else
    assert ad.members()[ad.ou.email("dan")]["status"] == "revoked"

    ad.ou.delete(dns["bob"])  # in Engineering, nested in All Staff: he leaves both
    result = ad.sync_json()
    assert [r["email"] for r in result["plan"]["revoke"]] == [ad.ou.email("bob")]
    assert result["warnings"] == []
    assert ad.groups()["All Staff"]["members"] == emails(ad.ou, "alice", "carol")


def test_a_renamed_user_updates_the_same_member_and_keeps_the_groups(ad: AdDirsync) -> None:
    dns = company(ad.ou)
    ad.sync_json()
    before = ad.members()[ad.ou.email("alice")]
    ad.ou.modify(dns["alice"], sAMAccountName=ad.ou.sam("alicia"), mail="alicia@new.example")
    ad.ou.rename(dns["alice"], "CN=Alicia")
    result = ad.sync_json()
    assert [u["email"] for u in result["plan"]["update"]] == ["alicia@new.example"]
    assert not result["plan"]["invite"] and not result["plan"]["revoke"]
    after = ad.members()["alicia@new.example"]
    assert after["external_id"] == before["external_id"]
    assert after["groups"] == ["All Staff", "Engineering"]
    assert ad.ou.email("alice") not in ad.members()


def test_a_restored_dc_with_a_new_invocation_id_gets_a_full_read(
    ad_ou: AdOu, tmp_path: Path
) -> None:
    company(ad_ou)
    ad = AdDirsync(ad_ou, tmp_path)  # the reader: uSNChanged polling
    first = ad.sync_json()
    ((kind, value),) = ad.sql("SELECT kind, value FROM cursors")
    stored, cursor = _ad_cursor(value)
    assert kind == "active_directory" and cursor["mode"] == "usn"
    cursor["invocation_id"] = "00000000-0000-0000-0000-000000000001"  # as after a restore
    if "cursor" in stored:  # the store may wrap the connector's cursor with its own keys
        stored["cursor"] = json.dumps(cursor)
    else:
        stored = cursor
    ad.sql("UPDATE cursors SET value = ?", json.dumps(stored))

    again = ad.sync_json()
    assert again["outcome"] == "unchanged"
    assert again["entries_read"] == first["entries_read"]  # everything, read in full
    ((_, value),) = ad.sql("SELECT kind, value FROM cursors")
    assert _ad_cursor(value)[1]["invocation_id"] != cursor["invocation_id"]


def _ad_cursor(value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the stored JSON, the AD cursor inside it)."""
    stored = json.loads(value)
    inner = json.loads(stored["cursor"]) if "cursor" in stored else stored
    return stored, inner


def test_dirsync_test_shows_what_active_directory_yields(ad_ou: AdOu, tmp_path: Path) -> None:
    company(ad_ou)
    ad = AdDirsync(ad_ou, tmp_path)
    shown = ad.json("test", "--org", "acme")
    users = {u["email"]: u for u in shown["users"]}
    assert set(users) == set(emails(ad_ou, "alice", "bob", "carol", "dan", "olaf"))
    assert users[ad_ou.email("olaf")]["disabled"] is True
    groups = {g["name"]: g for g in shown["groups"]}
    assert set(groups) == {"Engineering", "All Staff"}
    assert not ad.db.exists()


def test_an_unreachable_first_dc_fails_over_and_the_run_says_so(
    ad_ou: AdOu, tmp_path: Path
) -> None:
    company(ad_ou)
    ad = AdDirsync(ad_ou, tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"ldaps://127.0.0.1:{sock.getsockname()[1]}"
    ad.set(source={"url": [dead, ad_ou.dc.ldaps_url]})
    result = ad.sync_json()
    assert result["outcome"] == "applied"
    assert any(f"failed over to {ad_ou.dc.ldaps_url}" in w for w in result["warnings"])


class CuttingProxy:
    """A TCP proxy to the DC's LDAPS port that drops both sides after ``limit`` bytes from
    the server: a DC that goes away in the middle of a read."""

    def __init__(self, target: int, limit: int | None = None) -> None:
        self.target = target
        self.limit = limit
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(4096):
                if counted:
                    if self.limit is not None and self.sent + len(data) > self.limit:
                        break  # the DC "goes away": both sides are cut
                    self.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass  # a side went away: close both below
        for sock in (source, sink):
            with contextlib.suppress(OSError):  # the other pipe may have closed it already
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_dc_that_goes_away_mid_read_fails_the_run_and_changes_nothing(
    ad_ou: AdOu, tmp_path: Path
) -> None:
    company(ad_ou)
    ad_ou.users(*(f"p{i}" for i in range(16)))
    ad = AdDirsync(ad_ou, tmp_path)
    ad.set(source={"page_size": 2})
    ad.sync_json()
    before = ad.dump()
    ad_ou.users("zoe")  # a change the broken read must not half-apply

    measuring = CuttingProxy(636)
    ad.set(source={"url": f"ldaps://127.0.0.1:{measuring.port}"})
    ad.sync_json("--dry-run", "--full")  # how many bytes a complete full read takes
    measuring.close()
    cutting = CuttingProxy(636, limit=measuring.sent // 2)
    ad.set(source={"url": f"ldaps://127.0.0.1:{cutting.port}"})
    try:
        result = ad.sync_json("--full", code=1)
    finally:
        cutting.close()
    assert result["outcome"] == "failed"
    assert "broke off" in result["error"] or "dropped" in result["error"]
    after = ad.dump()
    assert {k: v for k, v in after.items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }


def test_a_group_of_3000_members_is_synced_completely(ad_ou: AdOu, tmp_path: Path) -> None:
    ad_ou.keep = True  # deleting 3,000 users takes ~45 s; the session's DC is discarded anyway
    names = [f"u{i:04d}" for i in range(3000)]
    dns = ad_ou.users(*names)
    ad_ou.group("Everyone", dns)
    ad = AdDirsync(ad_ou, tmp_path)
    ad.set(source={"page_size": 1000})
    result = ad.sync_json()
    assert result["outcome"] == "applied" and len(result["plan"]["invite"]) == 3000
    (everyone,) = ad.json("groups", "--org", "acme")
    assert everyone["name"] == "Everyone" and len(everyone["members"]) == 3000
    assert everyone["members"] == emails(ad_ou, *names)


# -- TLS to the domain controller ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_tls_to_the_dc_by_address_and_by_name_reads_it(
    ad_ou: AdOu, tmp_path: Path, mode: str, host: str
) -> None:
    ad_ou.users("alice")
    driver = AdDirsync(ad_ou, tmp_path)
    url = f"ldaps://{host}:636" if mode == "ldaps" else f"ldap://{host}:389"
    driver.set(source={"url": url, "start_tls": mode == "start_tls"})

    result = driver.sync_json("--dry-run")

    assert result["outcome"] == "dry_run"
    assert [i["email"] for i in result["plan"]["invite"]] == [ad_ou.email("alice")]


@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_a_dc_certificate_from_another_ca_is_exit_1_and_one_line(
    ad_ou: AdOu, tmp_path: Path, mode: str
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    driver = AdDirsync(ad_ou, tmp_path)
    url = ad_ou.dc.ldaps_url if mode == "ldaps" else "ldap://127.0.0.1:389"
    driver.set(source={"url": url, "start_tls": mode == "start_tls", "ca_file": str(other)})

    code, out, err = driver.run("sync", "--json")

    (result,) = json.loads(out)
    assert code == 1 and result["outcome"] == "failed", (out, err)
    assert "\n" not in result["error"] and "Traceback" not in out + err
    assert "the server certificate does not verify" in result["error"]
    assert "check ca_file" in result["error"]
