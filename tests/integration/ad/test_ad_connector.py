"""The Active Directory connector against a real Samba AD DC on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dirsync.connectors.active_directory.cursor import AdCursor, parse_cursor
from dirsync.connectors.active_directory.session import AdSession
from dirsync.connectors.ldap.dn import normalize_dn
from dirsync.connectors.ldap.session import LdapSession, RawEntry
from dirsync.connectors.ldap.wire import Attributes
from dirsync.errors import (
    CursorExpired,
    SourceAuthFailed,
    SourceError,
    SourceTLSError,
    SourceUnreachable,
)
from dirsync.mapping.mirror import apply_delta, mirror_of
from dirsync.model import DirectoryGroup, DirectoryUser, Reading
from dirsync.testing.samba import SambaDC
from tests.integration.ad.conftest import DISABLED, AdOu, filetime

pytestmark = pytest.mark.samba


def users(reading: Reading) -> dict[str, DirectoryUser]:
    found = reading.snapshot.users if reading.snapshot else reading.delta.users  # type: ignore[union-attr]
    return {u.name or "": u for u in found}


def groups(reading: Reading) -> dict[str, DirectoryGroup]:
    found = reading.snapshot.groups if reading.snapshot else reading.delta.groups  # type: ignore[union-attr]
    return {g.name: g for g in found}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a full read ---------------------------------------------------------------------------------


def test_users_are_read_with_canonical_object_guids_user_names_and_emails(ad_ou: AdOu) -> None:
    (alice,) = ad_ou.users("alice")
    # no mail: the email falls back to userPrincipalName
    ad_ou.users("bob", mail=None, userPrincipalName="bob@upn.example")
    with ad_ou.dc.connection() as conn:  # a computer is objectClass=user too, but no person
        conn.add(f"CN=pc1,{ad_ou.people}", ["computer"], {"sAMAccountName": ad_ou.sam("pc1$")})

    reading = ad_ou.read()

    found = users(reading)
    assert set(found) == {"Alice", "Bob"}
    assert found["Alice"] == DirectoryUser(
        external_id=ad_ou.guid(alice),
        ref=normalize_dn(alice),
        username=ad_ou.sam("alice"),
        email=ad_ou.email("alice"),
        name="Alice",
        disabled=False,
    )
    assert found["Bob"].email == "bob@upn.example"
    assert reading.entries_read == 2 and reading.warnings == ()


def test_disabled_comes_from_user_account_control_and_optionally_an_expired_account(
    ad_ou: AdOu,
) -> None:
    ad_ou.users("carol", userAccountControl=str(DISABLED))
    past = filetime(datetime.now(UTC) - timedelta(days=1))
    future = filetime(datetime.now(UTC) + timedelta(days=30))
    ad_ou.users("dave", accountExpires=str(past))
    ad_ou.users("erin", accountExpires=str(future))

    found = users(ad_ou.read())
    assert (found["Carol"].disabled, found["Dave"].disabled, found["Erin"].disabled) == (
        True,
        True,
        False,
    )
    assert users(ad_ou.read(expired_is_disabled=False))["Dave"].disabled is False


def test_groups_name_their_members_and_nested_groups_by_dn(ad_ou: AdOu) -> None:
    alice, bob, carol = ad_ou.users("alice", "bob", "carol")
    engineering = ad_ou.group("Engineering", [alice, bob])
    ad_ou.group("All Staff", [engineering, carol])
    ad_ou.group("Empty", [])

    found = groups(ad_ou.read())
    assert found["All Staff"].member_refs == {normalize_dn(engineering), normalize_dn(carol)}
    assert found["Engineering"].external_id == ad_ou.guid(engineering)
    assert found["Empty"].member_refs == frozenset()


def test_in_chain_resolution_adds_transitive_members_and_keeps_direct_ones(ad_ou: AdOu) -> None:
    alice, bob = ad_ou.users("alice", "bob")
    inner = ad_ou.group("Inner", [alice])
    ad_ou.group("Outer", [inner, bob])

    found = groups(ad_ou.read(nested_groups_in_chain=True))
    assert found["Outer"].member_refs == {normalize_dn(x) for x in (inner, bob, alice)}


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_a_delta_resolves_the_groups_it_reads_in_chain_as_a_full_read_does(
    ad_ou: AdOu, admin: bool
) -> None:
    """Alice reaches Outer only through Inner, which group_filter leaves out: only the DC's
    in-chain answer knows it. A delta that reads Outer again must keep her."""
    alice, bob, carol = ad_ou.users("alice", "bob", "carol")
    inner = ad_ou.group("Inner", [alice])
    outer = ad_ou.group("Outer", [inner, bob])
    options = {"admin": admin, "nested_groups_in_chain": True, "group_filter": "(!(cn=Inner))"}
    full = ad_ou.read(**options)
    assert full.snapshot is not None
    ad_ou.add_member(outer, carol)

    reading = ad_ou.read(full.cursor, **options)

    assert reading.delta is not None
    (changed,) = [g for g in reading.delta.groups if g.name == "Outer"]
    assert changed.member_refs == {normalize_dn(x) for x in (inner, bob, carol, alice)}
    patched = apply_delta(mirror_of(full.snapshot)[0], reading.delta)
    again = ad_ou.read(**options).snapshot
    assert again is not None
    assert patched.groups == mirror_of(again)[0].groups


def test_ranged_member_values_are_completed_from_the_real_dc(ad_ou: AdOu) -> None:
    members = ad_ou.users(*(f"m{i}" for i in range(30)))
    big = ad_ou.group("Big", members)
    connector = ad_ou.connector()
    session = connector._open()
    with session:
        # what Windows answers for a big group: an empty member plus the first range
        (entry,) = session.paged_search(big, "(objectClass=group)", ["member"], what="groups")
        everything = entry["raw_attributes"]["member"]
        shaped = Attributes({"member": [], "member;range=0-9": everything[:10]})
        completed = session.normalize(
            {"dn": big, "raw_attributes": shaped}, "groups"
        )  # asks the DC for member;range=10-*
    raw = completed["raw_attributes"]
    assert sorted(raw["member"]) == sorted(everything)
    assert len(everything) == 30
    assert isinstance(raw, Attributes) and raw.get("MEMBER") == raw["member"]


def test_ranged_values_in_a_search_of_many_pages_are_completed_once_it_is_over(
    ad_ou: AdOu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fast reader asks for the next page before this one's entries are handed on: a range
    # fetched right then would share the connection with that page on its way
    members = ad_ou.users(*(f"m{i}" for i in range(12)))
    big = ad_ou.group("Big", members)
    for i in range(6):
        ad_ou.group(f"Small{i}", [members[i]])
    search = LdapSession.paged_search

    def windows_like(self: LdapSession, *args: Any, **kwargs: Any) -> Iterator[RawEntry]:
        for entry in search(self, *args, **kwargs):
            raw = entry["raw_attributes"]
            if normalize_dn(entry["dn"]) == normalize_dn(big):
                values = raw["member"]
                raw["member"] = []
                raw["member;range=0-4"] = values[:5]
            yield entry

    monkeypatch.setattr(LdapSession, "paged_search", windows_like)
    found = groups(ad_ou.read(page_size=2))
    assert found["Big"].member_refs == {normalize_dn(m) for m in members}
    assert {g: found[g].member_refs for g in (f"Small{i}" for i in range(6))} == {
        f"Small{i}": {normalize_dn(members[i])} for i in range(6)
    }


# -- binds, TLS and domain controllers -----------------------------------------------------


def test_a_wrong_password_is_explained_with_ads_sub_code(ad_ou: AdOu) -> None:
    with pytest.raises(SourceAuthFailed, match="the password is wrong \\(AD sub-code 52e\\)") as e:
        ad_ou.read(bind_password="not-the-password")
    assert "not-the-password" not in str(e.value)


def test_a_disabled_bind_account_is_explained(ad_ou: AdOu) -> None:
    (account,) = ad_ou.users("svc")
    ad_ou.set_password(account, "Svc-Pass-1!")
    assert set(users(ad_ou.read(bind_dn=account, bind_password="Svc-Pass-1!"))) == {"Svc"}
    ad_ou.modify(account, userAccountControl=DISABLED)
    with pytest.raises(SourceAuthFailed, match=r"the bind account is disabled \(AD sub-code 533\)"):
        ad_ou.read(bind_dn=account, bind_password="Svc-Pass-1!")


def test_a_plain_ldap_bind_works_only_when_allowed(ad_ou: AdOu) -> None:
    ad_ou.users("alice")
    reading = ad_ou.read(url=ad_ou.dc.url, allow_plain_ldap=True)
    assert set(users(reading)) == {"Alice"}
    reading = ad_ou.read(url=ad_ou.dc.url, start_tls=True)
    assert set(users(reading)) == {"Alice"}


def test_a_dc_certificate_from_another_ca_is_refused(ad_ou: AdOu, tmp_path: object) -> None:
    import trustme

    other = ad_ou.tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(SourceTLSError, match="does not verify"):
        ad_ou.read(ca_file=str(other))


def test_an_unreachable_first_dc_fails_over_to_the_next_and_says_so(ad_ou: AdOu) -> None:
    ad_ou.users("alice")
    dead = f"ldaps://127.0.0.1:{closed_port()}"
    reading = ad_ou.read(url=[dead, ad_ou.dc.ldaps_url])
    assert set(users(reading)) == {"Alice"}
    (warning,) = reading.warnings
    assert f"failed over to {ad_ou.dc.ldaps_url}" in warning and "cannot be reached" in warning
    assert parse_cursor(reading.cursor).dc == ad_ou.dc.ldaps_url  # type: ignore[arg-type]


def test_no_reachable_dc_names_every_one_tried(ad_ou: AdOu) -> None:
    first, second = closed_port(), closed_port()
    urls = [f"ldaps://127.0.0.1:{first}", f"ldaps://127.0.0.1:{second}"]
    with pytest.raises(SourceUnreachable, match="no domain controller could be reached") as e:
        ad_ou.read(url=urls)
    assert str(first) in str(e.value) and str(second) in str(e.value)


# -- incremental reads ----------------------------------------------------------------------------


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_an_account_that_may_replicate_gets_dirsync_and_others_usn_polling(
    ad_ou: AdOu, admin: bool
) -> None:
    reading = ad_ou.read(admin=admin)
    assert reading.cursor is not None
    assert parse_cursor(reading.cursor).mode == ("dirsync" if admin else "usn")


def _searches(monkeypatch: pytest.MonkeyPatch, *, hide_member_of: bool = False) -> list[str]:
    """The filters of the AD session's paged searches from now on; ``hide_member_of``: a DC
    that shows this account no ``memberOf`` values."""
    seen: list[str] = []
    search = AdSession.paged_search

    def recorded(
        self: AdSession, base: str, search_filter: str, *args: Any, **kwargs: Any
    ) -> Iterator[RawEntry]:
        seen.append(search_filter)
        for entry in search(self, base, search_filter, *args, **kwargs):
            if hide_member_of:
                entry["raw_attributes"].pop("memberOf", None)
                entry["raw_attributes"].pop("memberof", None)
            yield entry

    monkeypatch.setattr(AdSession, "paged_search", recorded)
    return seen


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_a_delta_finds_the_groups_of_changed_users_by_their_back_links(
    ad_ou: AdOu, admin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asking for groups by (member=<DN>) made Samba compare every member value of every group
    # with every DN asked for: ~20 s for 210 changed users among 20,000
    alice, carol = ad_ou.users("alice", "carol")
    team = ad_ou.group("Team", [alice, carol])
    ad_ou.group("Others", [carol])
    full = ad_ou.read(admin=admin)
    renamed = ad_ou.rename(alice, "CN=Alicia")
    ad_ou.modify(carol, mail="carol.new@example.org")
    searches = _searches(monkeypatch)

    delta = ad_ou.read(full.cursor, admin=admin).delta

    assert delta is not None
    found = {g.name: g for g in delta.groups}
    assert found["Team"].external_id == ad_ou.guid(team)
    assert found["Team"].member_refs == {normalize_dn(renamed), normalize_dn(carol)}
    assert set(found) == {"Team", "Others"}
    assert not [f for f in searches if "(member=" in f]


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_a_dc_that_hides_member_of_still_gets_a_renamed_members_groups_read_again(
    ad_ou: AdOu, admin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    (alice,) = ad_ou.users("alice")
    ad_ou.group("Team", [alice])
    full = ad_ou.read(admin=admin)
    renamed = ad_ou.rename(alice, "CN=Alicia")
    searches = _searches(monkeypatch, hide_member_of=True)

    delta = ad_ou.read(full.cursor, admin=admin).delta

    assert delta is not None
    (team,) = delta.groups
    assert team.member_refs == {normalize_dn(renamed)}
    assert [f for f in searches if "(member=" in f]


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_a_delta_has_changed_users_and_tombstones_and_nothing_else(
    ad_ou: AdOu, admin: bool
) -> None:
    alice, bob, carol, _ = ad_ou.users("alice", "bob", "carol", "dan")
    team = ad_ou.group("Team", [alice])
    full = ad_ou.read(admin=admin)
    assert ad_ou.read(full.cursor, admin=admin).entries_read == 0

    ad_ou.delete(bob)
    ad_ou.modify(carol, mail="carol.new@example.org")
    renamed = ad_ou.rename(alice, "CN=Alicia")  # her DN changes inside Team
    delta_reading = ad_ou.read(full.cursor, admin=admin)

    delta = delta_reading.delta
    assert delta is not None
    assert delta.deleted_user_ids >= {users(full)["Bob"].external_id}
    assert {u.email for u in delta.users} == {"carol.new@example.org", ad_ou.email("alice")}
    (team_now,) = delta.groups
    assert team_now.external_id == ad_ou.guid(team)
    assert team_now.member_refs == {normalize_dn(renamed)}
    assert delta_reading.entries_read == 4  # bob's tombstone, carol, alice, and Team

    quiet = ad_ou.read(delta_reading.cursor, admin=admin)
    assert quiet.delta is not None and quiet.entries_read == 0
    assert quiet.delta.users == () and quiet.delta.deleted_user_ids == frozenset()


def test_a_dc_with_a_new_invocation_id_expires_the_usn_cursor(ad_ou: AdOu) -> None:
    full = ad_ou.read()
    state = parse_cursor(full.cursor)  # type: ignore[arg-type]
    restored = AdCursor(
        mode="usn", dc=state.dc, invocation_id="00000000-0000-0000-0000-000000000001", usn=1
    )
    with pytest.raises(CursorExpired, match="invocationId"):
        ad_ou.read(restored.to_cursor())


def test_an_unreachable_pinned_dc_expires_the_cursor(ad_ou: AdOu) -> None:
    full = ad_ou.read()
    state = parse_cursor(full.cursor)  # type: ignore[arg-type]
    gone = AdCursor(
        mode="usn",
        dc=f"ldaps://127.0.0.1:{closed_port()}",
        invocation_id=state.invocation_id,
        usn=state.usn,
    )
    with pytest.raises(CursorExpired, match="cannot be reached"):
        ad_ou.read(gone.to_cursor())


def test_the_session_dc_is_a_samba_ad_dc(samba_dc: SambaDC) -> None:
    assert samba_dc.running


def test_an_account_that_cannot_read_tombstones_gets_full_reads_not_blind_deltas(
    ad_ou: AdOu,
) -> None:
    (account,) = ad_ou.users("svc")
    ad_ou.set_password(account, "Svc-Pass-1!")
    blind = {"bind_dn": account, "bind_password": "Svc-Pass-1!"}

    assert ad_ou.read(**blind).cursor is None  # "auto": silently full reads
    forced = ad_ou.read(incremental="usn", **blind)
    assert forced.cursor is None
    assert any("Deleted Objects" in w for w in forced.warnings)
    with pytest.raises(SourceError, match="Replicating Directory Changes"):
        ad_ou.read(incremental="dirsync", **blind)


def test_incremental_off_always_reads_in_full(ad_ou: AdOu) -> None:
    ad_ou.users("alice")
    full = ad_ou.read(admin=True)
    reading = ad_ou.read(full.cursor, admin=True, incremental="off")
    assert reading.is_full and reading.cursor is None and reading.entries_read == 1


def test_a_dc_requiring_strong_auth_refuses_a_plain_bind_with_a_clear_message(
    ad_ou: AdOu,
) -> None:
    dc = ad_ou.dc
    dc.reconfigure({"ldap server require strong auth": "yes"})
    try:
        with pytest.raises(SourceAuthFailed, match=r"strongerAuthRequired.*ldaps://"):
            ad_ou.read(url=dc.url, allow_plain_ldap=True)
        assert ad_ou.read(url=dc.url, start_tls=True).is_full  # encrypted: fine
    finally:
        dc.reconfigure(None)
    assert ad_ou.read(url=dc.url, allow_plain_ldap=True).is_full


@pytest.mark.parametrize("admin", [True, False], ids=["dirsync", "usn"])
def test_deletions_outside_the_user_and_group_paths_are_not_in_the_delta(
    ad_ou: AdOu, admin: bool
) -> None:
    elsewhere = f"OU=Elsewhere,{ad_ou.dn}"
    with ad_ou.dc.connection() as conn:
        conn.add(elsewhere, ["organizationalUnit"])
        conn.add(f"CN=stray,{elsewhere}", ["user"], {"sAMAccountName": ad_ou.sam("stray")})
    (alice,) = ad_ou.users("alice")
    full = ad_ou.read(admin=admin)
    ad_ou.delete(f"CN=stray,{elsewhere}")
    ad_ou.delete(alice)

    delta = ad_ou.read(full.cursor, admin=admin)
    assert delta.delta is not None
    assert delta.delta.deleted_user_ids == {users(full)["Alice"].external_id}
    assert delta.entries_read == 1


def test_a_dirsync_cookie_the_dc_does_not_accept_means_a_full_read(ad_ou: AdOu) -> None:
    full = ad_ou.read(admin=True)
    state = parse_cursor(full.cursor)  # type: ignore[arg-type]
    stale = AdCursor(mode="dirsync", dc=state.dc, cookie=b"not a cookie from this DC")
    with pytest.raises(CursorExpired):
        ad_ou.read(stale.to_cursor(), admin=True)
