"""Incremental LDAP reads against real slapd: syncrepl (syncprov) and the modifyTimestamp
fallback on a server without syncprov."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.delta import fingerprint
from dirsync.connectors.ldap.syncrepl import Cookies
from dirsync.errors import CursorExpired
from dirsync.mapping.mirror import apply_delta, mirror_of, update_mirror
from dirsync.model import Cursor, DirectoryDelta, Reading
from dirsync.testing.ldap_admin import MODIFY_ADD, MODIFY_REPLACE
from dirsync.testing.slapd import Slapd, SlapdError
from tests.integration.conftest import LdapTree

DISABLED = "(employeeType=disabled)"


def _company(tree: LdapTree) -> None:
    tree.add(
        tree.person("alice"),
        tree.person("bob"),
        tree.person("carol"),
        tree.person("dave"),
        tree.group("eng", [tree.user_dn("alice"), tree.user_dn("bob")]),
        # carol (deleted below) is in no group: memberof/refint repair a deleted member's
        # groups with internal writes that syncprov does not see (see README)
        tree.group("all", [tree.group_dn("eng"), tree.user_dn("dave")]),
    )


def _change_everything(tree: LdapTree) -> None:
    """An add, a modify, a disable, a delete and a membership change."""
    tree.add(tree.person("erin"))
    server = tree.server
    server.modify(tree.user_dn("alice"), {"mail": [(MODIFY_REPLACE, ["al@example.org"])]})
    server.modify(tree.user_dn("bob"), {"employeeType": [(MODIFY_REPLACE, ["disabled"])]})
    server.delete(tree.user_dn("carol"))
    server.modify(tree.group_dn("eng"), {"member": [(MODIFY_ADD, [tree.user_dn("dave")])]})


def _delta(reading: Reading) -> DirectoryDelta:
    assert reading.delta is not None, "expected a delta read"
    return reading.delta


@pytest.fixture
def connector(ldap_tree: LdapTree) -> Iterator[LdapConnector]:
    settings = ldap_tree.settings(disabled_filter=DISABLED)
    connector = LdapConnector(settings, organization="acme")
    yield connector
    connector.close()


def test_a_full_read_on_syncprov_takes_a_syncrepl_cursor(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    reading = connector.read(None)
    assert reading.is_full and reading.cursor is not None
    assert reading.cursor.kind == "ldap-syncrepl"


def test_a_syncrepl_delta_carries_each_kind_of_change_and_patches_to_a_full_read(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    carol = ldap_tree.entry_uuid(ldap_tree.user_dn("carol"))
    first = connector.read(None)
    assert first.snapshot is not None and first.cursor is not None
    _change_everything(ldap_tree)

    reading = connector.read(first.cursor)
    delta = _delta(reading)
    users = {u.username: u for u in delta.users}
    assert set(users) == {"alice", "bob", "erin"}
    assert users["alice"].email == "al@example.org"
    assert users["bob"].disabled is True and users["erin"].disabled is False
    # syncprov also names, as deleted, entries changed elsewhere that this search does not
    # select (eng, to the users' search): ids that match no user, so they change nothing
    assert carol in delta.deleted_user_ids
    assert not delta.deleted_user_ids & {u.external_id for u in first.snapshot.users} - {carol}
    eng = {g.name: g for g in delta.groups}["eng"]
    assert ldap_tree.user_dn("dave").lower() in {r.lower() for r in eng.member_refs}

    patched = apply_delta(mirror_of(first.snapshot)[0], delta)
    full = connector.read(None)
    assert full.snapshot is not None
    assert patched == mirror_of(full.snapshot)[0]


def test_a_syncrepl_deletion_names_the_deleted_entry_uuid(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    carol = ldap_tree.entry_uuid(ldap_tree.user_dn("carol"))
    first = connector.read(None)
    ldap_tree.server.delete(ldap_tree.user_dn("carol"))
    delta = _delta(connector.read(first.cursor))
    assert delta.deleted_user_ids == frozenset({carol})
    assert delta.users == ()


def test_a_no_change_syncrepl_read_reads_nothing_and_keeps_its_cursor(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    first = connector.read(None)
    reading = connector.read(first.cursor)
    assert _delta(reading) == DirectoryDelta()
    assert reading.entries_read == 0
    assert reading.cursor == first.cursor


def test_a_delta_never_removes_a_user_it_does_not_name_as_deleted(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    first = connector.read(None)
    assert first.snapshot is not None
    ldap_tree.server.modify(
        ldap_tree.user_dn("dave"), {"mail": [(MODIFY_REPLACE, ["d@example.org"])]}
    )
    reading = connector.read(first.cursor)
    update = update_mirror(mirror_of(first.snapshot)[0], reading)
    assert update.complete is False
    assert {u.username for u in update.mirror.users.values()} == {"alice", "bob", "carol", "dave"}


@pytest.mark.parametrize(
    "cookie",
    [
        b"rid=000,csn=20000101000000.000000Z#000000#000#000000",  # older than the session log
        b"garbage",  # not a cookie this server ever gave
    ],
)
def test_an_expired_or_unknown_cookie_asks_for_a_full_read(
    ldap_tree: LdapTree, connector: LdapConnector, cookie: bytes
) -> None:
    _company(ldap_tree)
    stale = Cookies(users=cookie, groups=cookie).cursor(fingerprint(connector.settings))
    with pytest.raises(CursorExpired):
        connector.read(stale)


def test_an_unreadable_cursor_asks_for_a_full_read(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    value = json.dumps({"u": "%%%", "g": "", "s": fingerprint(connector.settings)})
    with pytest.raises(CursorExpired):
        connector.read(Cursor(kind="ldap-syncrepl", value=value))


def test_a_cursor_taken_with_other_read_settings_gives_a_full_read(
    ldap_tree: LdapTree, connector: LdapConnector
) -> None:
    _company(ldap_tree)
    first = connector.read(None)
    narrower = LdapConnector(
        ldap_tree.settings(disabled_filter=DISABLED, user_filter="(uid=a*)"), organization="acme"
    )
    try:
        reading = narrower.read(first.cursor)
    finally:
        narrower.close()
    assert reading.snapshot is not None
    assert [u.username for u in reading.snapshot.users] == ["alice"]


def test_incremental_off_always_reads_in_full_without_a_cursor(ldap_tree: LdapTree) -> None:
    _company(ldap_tree)
    reading = ldap_tree.read(incremental="off")
    assert reading.is_full and reading.cursor is None


# -- a server without syncprov: the modifyTimestamp fallback --------------------------------


@pytest.fixture(scope="module")
def plain_slapd() -> Iterator[Slapd]:
    server = Slapd(anonymous_read=True, syncprov=False)
    try:
        server.start()
    except (SlapdError, OSError) as exc:
        server.stop()
        pytest.fail(f"the test slapd without syncprov could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def plain_tree(plain_slapd: Slapd, tmp_path: Path) -> LdapTree:
    tree = LdapTree(plain_slapd, f"ou=t{tmp_path.name[-12:]},{plain_slapd.base_dn}", tmp_path)
    name = tree.base_dn.split(",", 1)[0].split("=", 1)[1]
    plain_slapd.add_ldif(
        f"dn: {tree.base_dn}\nobjectClass: organizationalUnit\nou: {name}\n\n"
        f"dn: {tree.people}\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: {tree.groups}\nobjectClass: organizationalUnit\nou: Groups\n"
    )
    return tree


def _rescan(cursor: Cursor) -> Cursor:
    """The same cursor, with its last id scan long ago (so the next read scans)."""
    data = json.loads(cursor.value)
    data["scanned"] = "2000-01-01T00:00:00+00:00"
    return Cursor(kind=cursor.kind, value=json.dumps(data))


def test_without_syncprov_auto_falls_back_to_modify_timestamps(plain_tree: LdapTree) -> None:
    _company(plain_tree)
    connector = LdapConnector(plain_tree.settings(disabled_filter=DISABLED), organization="acme")
    try:
        first = connector.read(None)
        assert first.cursor is not None and first.cursor.kind == "ldap-modify-timestamp"
        assert first.snapshot is not None
        _change_everything(plain_tree)
        delta = _delta(connector.read(first.cursor))
        users = {u.username: u for u in delta.users}
        assert {"alice", "bob", "erin"} <= set(users)
        assert users["alice"].email == "al@example.org" and users["bob"].disabled is True
        assert delta.deleted_user_ids == frozenset() and delta.present_user_ids is None
        # without an id scan, carol's deletion is not seen: she stays in the mirror
        update = update_mirror(mirror_of(first.snapshot)[0], connector.read(first.cursor))
        assert "carol" in {u.username for u in update.mirror.users.values()}
    finally:
        connector.close()


def test_the_id_scan_finds_deletions_and_the_patched_mirror_equals_a_full_read(
    plain_tree: LdapTree,
) -> None:
    _company(plain_tree)
    connector = LdapConnector(plain_tree.settings(disabled_filter=DISABLED), organization="acme")
    try:
        first = connector.read(None)
        assert first.snapshot is not None and first.cursor is not None
        _change_everything(plain_tree)
        reading = connector.read(_rescan(first.cursor))
        delta = _delta(reading)
        assert delta.present_user_ids is not None and len(delta.present_user_ids) == 4
        update = update_mirror(mirror_of(first.snapshot)[0], reading)
        assert update.complete is True
        full = connector.read(None)
        assert full.snapshot is not None
        assert update.mirror == mirror_of(full.snapshot)[0]
    finally:
        connector.close()


def test_incremental_syncrepl_on_a_server_without_syncprov_reads_in_full_with_a_warning(
    plain_tree: LdapTree,
) -> None:
    _company(plain_tree)
    reading = plain_tree.read(incremental="syncrepl")
    assert reading.is_full and reading.cursor is None
    assert any("syncprov" in w for w in reading.warnings)
