"""The LDAP connector against a real slapd on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trustme

from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.dn import normalize_dn
from dirsync.connectors.ldap.session import LdapSession
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.errors import (
    ConfigError,
    SourceAuthFailed,
    SourceError,
    SourceReadIncomplete,
    SourceTLSError,
    SourceUnreachable,
)
from dirsync.model import DirectoryGroup, DirectoryUser, Reading, username_ref
from dirsync.testing.fault_proxy import silent_listener
from dirsync.testing.slapd import Slapd, free_ports
from tests.integration.conftest import ldif_record

if TYPE_CHECKING:
    from conftest import LdapTree, LimitedAccount

pytestmark = pytest.mark.slapd


def users_by_uid(reading: Reading) -> dict[str, DirectoryUser]:
    assert reading.snapshot is not None
    return {u.username or "": u for u in reading.snapshot.users}


def groups_by_name(reading: Reading) -> dict[str, DirectoryGroup]:
    assert reading.snapshot is not None
    return {g.name: g for g in reading.snapshot.groups}


# -- what is read --------------------------------------------------------------------------


def test_users_are_read_with_their_entry_uuid_dn_ref_username_email_and_name(
    ldap_tree: LdapTree,
) -> None:
    ldap_tree.add(
        ldap_tree.person("alice", cn="Alice Andersen", display_name="Alice A."),
        ldap_tree.person("bob", cn="Bob Brown"),  # no displayName: the name falls back to cn
    )

    reading = ldap_tree.read()

    users = users_by_uid(reading)
    alice_dn = ldap_tree.user_dn("alice")
    assert users["alice"] == DirectoryUser(
        external_id=ldap_tree.entry_uuid(alice_dn),
        ref=normalize_dn(alice_dn),
        username="alice",
        email="alice@example.org",
        name="Alice A.",
        disabled=False,
    )
    assert users["bob"].name == "Bob Brown"
    assert reading.is_full  # a complete read (with a syncrepl cursor for the next run)
    assert reading.entries_read == 2
    assert reading.warnings == ()


def test_groups_are_read_with_their_names_ids_and_member_refs(ldap_tree: LdapTree) -> None:
    alice, bob = ldap_tree.user_dn("alice"), ldap_tree.user_dn("bob")
    ldap_tree.add(
        ldap_tree.person("alice"),
        ldap_tree.person("bob"),
        ldap_tree.group("Engineering", [alice, bob]),
    )

    groups = groups_by_name(ldap_tree.read())

    group_dn = ldap_tree.group_dn("Engineering")
    assert groups["Engineering"] == DirectoryGroup(
        external_id=ldap_tree.entry_uuid(group_dn),
        ref=normalize_dn(group_dn),
        name="Engineering",
        member_refs=frozenset({normalize_dn(alice), normalize_dn(bob)}),
    )


def test_nested_groups_and_a_membership_cycle_come_back_as_plain_refs(
    ldap_tree: LdapTree,
) -> None:
    alice = ldap_tree.user_dn("alice")
    a, b, parent = (ldap_tree.group_dn(n) for n in ("A", "B", "Parent"))
    ldap_tree.add(
        ldap_tree.person("alice"),
        ldap_tree.group("A", [alice, b]),
        ldap_tree.group("B", [a]),
        ldap_tree.group("Parent", [a]),
    )

    groups = groups_by_name(ldap_tree.read())

    assert groups["A"].member_refs == {normalize_dn(alice), normalize_dn(b)}
    assert groups["B"].member_refs == {normalize_dn(a)}
    assert groups["Parent"].member_refs == {groups["A"].ref}
    assert normalize_dn(parent) == groups["Parent"].ref


def test_paging_reads_every_page_and_reports_progress(ldap_tree: LdapTree) -> None:
    ldap_tree.add(*(ldap_tree.person(f"user{i:02}") for i in range(23)))
    seen: list[int] = []

    reading = ldap_tree.read(
        page_size=5, progress=seen.append, disabled_filter="(employeeType=disabled)"
    )

    assert sorted(users_by_uid(reading)) == [f"user{i:02}" for i in range(23)]
    assert reading.entries_read == 23
    assert seen[:5] == [5, 10, 15, 20, 23]  # five pages of users, then the (empty) groups
    assert seen == sorted(seen)


def test_uniquemember_values_lose_their_optional_uid(ldap_tree: LdapTree) -> None:
    alice = ldap_tree.user_dn("alice")
    ldap_tree.add(
        ldap_tree.person("alice"),
        ldap_tree.group("Uniques", [f"{alice}#'0101'B"], unique=True),
    )

    groups = groups_by_name(
        ldap_tree.read(group_object_class="groupOfUniqueNames", member_attribute="uniqueMember")
    )

    assert groups["Uniques"].member_refs == {normalize_dn(alice)}


def test_a_member_dn_spelled_with_escapes_resolves_to_the_users_own_ref(
    ldap_tree: LdapTree,
) -> None:
    odd_uid = 'a,b+c"d\\e#f'
    ldap_tree.add(
        ldap_tree.person("jdoe", rdn="cn=Doe\\, John+uid=jdoe", cn="Doe, John"),
        ldap_tree.person(odd_uid),
        ldap_tree.person("zoe", rdn="cn=Zoë Ørsted", cn="Zoë Ørsted"),
        ldap_tree.group(
            "Odd",
            [
                # the same DNs as the entries', spelled differently: RDN order, case, hex
                f"UID=jdoe+CN=doe\\2C john,{ldap_tree.people.upper()}",
                f"uid=a\\2Cb\\2Bc\\22d\\5Ce#f,{ldap_tree.people}",
                f"cn=zo\\C3\\AB \\C3\\98rsted,{ldap_tree.people}",
            ],
        ),
    )

    reading = ldap_tree.read()

    refs = {u.username: u.ref for u in users_by_uid(reading).values()}
    assert groups_by_name(reading)["Odd"].member_refs == {
        refs["jdoe"],
        refs[odd_uid],
        refs["zoe"],
    }
    assert reading.warnings == ()


def test_a_group_whose_name_has_filter_special_characters_is_read(ldap_tree: LdapTree) -> None:
    name = "R&D (core) * \\ team"
    ldap_tree.add(ldap_tree.person("alice"), ldap_tree.group(name, [ldap_tree.user_dn("alice")]))

    groups = groups_by_name(ldap_tree.read())

    assert list(groups) == [name]
    assert groups[name].ref == normalize_dn(ldap_tree.group_dn(name))


def test_the_first_of_several_values_is_taken(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("multi", mail=["one@example.org", "two@example.org"]))

    user = users_by_uid(ldap_tree.read())["multi"]

    assert user.email in {"one@example.org", "two@example.org"}


# -- emails, filters, disabled users ------------------------------------------------------


@pytest.mark.parametrize("suffix", ["@corp.example", "corp.example"])
def test_a_user_without_mail_gets_an_email_from_username_and_suffix(
    ldap_tree: LdapTree, suffix: str
) -> None:
    ldap_tree.add(ldap_tree.person("kim", mail=None), ldap_tree.person("alice"))

    users = users_by_uid(ldap_tree.read(email_suffix=suffix))

    assert users["kim"].email == "kim@corp.example"
    assert users["alice"].email == "alice@example.org"  # a real mail wins over the suffix


def test_a_user_without_mail_and_no_suffix_has_no_email(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("kim", mail=None))

    assert users_by_uid(ldap_tree.read())["kim"].email is None


def test_the_user_filter_restricts_the_users_read(ldap_tree: LdapTree) -> None:
    ldap_tree.add(
        ldap_tree.person("staff"),
        ldap_tree.person("temp", extra={"employeeType": "contractor"}),
    )

    users = users_by_uid(ldap_tree.read(user_filter="(!(employeeType=contractor))"))

    assert list(users) == ["staff"]


def test_the_disabled_filter_marks_users_disabled(ldap_tree: LdapTree) -> None:
    ldap_tree.add(
        ldap_tree.person("active"),
        ldap_tree.person("gone", extra={"employeeType": "disabled"}),
    )

    users = users_by_uid(ldap_tree.read(disabled_filter="(employeeType=disabled)"))

    assert users["gone"].disabled is True
    assert users["active"].disabled is False


def test_an_entry_without_the_external_id_attribute_is_skipped_with_a_warning(
    ldap_tree: LdapTree,
) -> None:
    ldap_tree.add(
        ldap_tree.person("numbered", extra={"employeeNumber": "1001"}),
        ldap_tree.person("unnumbered"),
    )

    reading = ldap_tree.read(external_id_attribute="employeeNumber")

    users = users_by_uid(reading)
    assert list(users) == ["numbered"]
    assert users["numbered"].external_id == "1001"
    assert any("unnumbered" in w and "employeeNumber" in w for w in reading.warnings)


def test_undecodable_bytes_are_replaced_with_a_warning(ldap_tree: LdapTree) -> None:
    photo = b"\xff\xd8\xffJPEG"
    ldap_tree.add(ldap_tree.person("pic", extra={"jpegPhoto": photo}))  # type: ignore[dict-item]

    reading = ldap_tree.read(name_attribute="jpegPhoto")

    assert users_by_uid(reading)["pic"].name == "\ufffd\ufffd\ufffdJPEG"
    assert any("jpegPhoto" in w and "UTF-8" in w for w in reading.warnings)


def test_anonymous_bind_reads_when_the_server_allows_it(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("alice"))

    assert list(users_by_uid(ldap_tree.read(bind_dn=None))) == ["alice"]


def test_probe_binds_and_names_the_server(ldap_tree: LdapTree) -> None:
    connector = LdapConnector(ldap_tree.settings(), organization="acme")

    info = connector.probe()
    connector.close()

    assert info.url == ldap_tree.server.url
    assert info.vendor == "OpenLDAP"
    assert ("pagedResults", "yes") in info.details


# -- TLS ------------------------------------------------------------------------------------


def test_ldaps_with_the_test_ca_works(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("alice"))

    reading = ldap_tree.read(url=ldap_tree.server.ldaps_url, ca_file=str(ldap_tree.server.ca_file))

    assert list(users_by_uid(reading)) == ["alice"]


def test_start_tls_with_the_test_ca_works(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("alice"))

    reading = ldap_tree.read(start_tls=True, ca_file=str(ldap_tree.server.ca_file))

    assert list(users_by_uid(reading)) == ["alice"]


@pytest.fixture
def other_ca_file(tmp_path: Path) -> str:
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_a_certificate_from_another_ca_is_refused(
    ldap_tree: LdapTree, other_ca_file: str, mode: str
) -> None:
    overrides = {"url": ldap_tree.server.ldaps_url} if mode == "ldaps" else {"start_tls": True}

    with pytest.raises(SourceTLSError, match="does not verify") as caught:
        ldap_tree.read(ca_file=other_ca_file, **overrides)

    assert "acme" in str(caught.value)
    port = ldap_tree.server.ldaps_port if mode == "ldaps" else ldap_tree.server.port
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_verification_is_on_by_default_without_a_ca_file(ldap_tree: LdapTree) -> None:
    with pytest.raises(SourceTLSError):
        ldap_tree.read(url=ldap_tree.server.ldaps_url)


def test_tls_verify_false_accepts_any_certificate(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("alice"))

    reading = ldap_tree.read(url=ldap_tree.server.ldaps_url, tls_verify=False)

    assert list(users_by_uid(reading)) == ["alice"]


# -- failures -------------------------------------------------------------------------------


def test_a_wrong_password_is_an_auth_failure_that_never_shows_the_password(
    ldap_tree: LdapTree,
) -> None:
    password = "Wr0ng-but-secret"

    with pytest.raises(SourceAuthFailed) as caught:
        ldap_tree.read(bind_password=password)

    message = str(caught.value)
    assert message.endswith(
        f"the directory refused the bind as {ldap_tree.server.reader_dn}: invalid credentials"
    )
    assert "acme" in message and f"127.0.0.1:{ldap_tree.server.port}" in message
    assert password not in message and password not in repr(caught.value.__cause__)


def test_a_closed_port_is_unreachable(ldap_tree: LdapTree) -> None:
    port = free_ports(1)[0]

    with pytest.raises(SourceUnreachable, match=f"127.0.0.1:{port}"):
        ldap_tree.read(url=f"ldap://127.0.0.1:{port}")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with silent_listener() as port:
        yield port


def test_a_server_that_never_answers_times_out_as_unreachable(
    ldap_tree: LdapTree, silent_server: int
) -> None:
    with pytest.raises(SourceUnreachable):
        ldap_tree.read(url=f"ldap://127.0.0.1:{silent_server}", timeout="1s")


def test_a_missing_search_base_is_a_clear_error(ldap_tree: LdapTree) -> None:
    with pytest.raises(SourceError, match=r"ou=Nowhere.*does not exist") as caught:
        ldap_tree.read(user_path="ou=Nowhere")

    assert not isinstance(caught.value, SourceReadIncomplete)


def test_an_invalid_filter_is_a_config_error(ldap_tree: LdapTree) -> None:
    with pytest.raises(ConfigError, match="user"):
        ldap_tree.read(user_filter="(uid~~x)")


def test_a_size_limited_search_is_incomplete_not_short(
    ldap_tree: LdapTree, limited_account: LimitedAccount
) -> None:
    ldap_tree.add(*(ldap_tree.person(f"user{i:02}") for i in range(limited_account.size + 5)))

    with pytest.raises(SourceReadIncomplete, match="sizeLimitExceeded"):
        ldap_tree.read(
            bind_dn=limited_account.dn, bind_password=limited_account.password, page_size=3
        )


def test_a_referral_in_the_subtree_makes_the_read_incomplete(ldap_tree: LdapTree) -> None:
    ldap_tree.add(ldap_tree.person("alice"))
    manage_dsa_it = ("2.16.840.1.113730.3.4.2", True, None)  # store the referral itself
    with ldap_tree.server.connection() as conn:
        conn.add(
            f"ou=Elsewhere,{ldap_tree.people}",
            ["referral", "extensibleObject"],
            {"ou": "Elsewhere", "ref": "ldap://127.0.0.1:1/ou=Elsewhere,dc=example,dc=org"},
            controls=[manage_dsa_it],
        )

    with pytest.raises(SourceReadIncomplete, match="referral"):
        ldap_tree.read()


def test_a_connection_lost_during_the_read_is_incomplete(tmp_path: Path) -> None:
    with Slapd() as server:
        server.add_ldif(
            "".join(
                f"dn: uid=u{i},{server.base_dn}\nobjectClass: inetOrgPerson\n"
                f"uid: u{i}\ncn: u{i}\nsn: u{i}\n\n"
                for i in range(10)
            )
        )
        settings = {
            "type": "ldap",
            "url": server.url,
            "base_dn": server.base_dn,
            "bind_dn": server.admin_dn,
            "bind_password": server.admin_password,
            "start_tls": True,
            "ca_file": str(server.ca_file),
            "page_size": 2,
        }
        connector = LdapConnector(
            LdapSourceSettings.model_validate(settings, context={"base_dir": tmp_path}),
            organization="acme",
        )

        def stop_server_after_the_first_page(count: int) -> None:
            server.stop()

        # the second page is asked for before the first is handed on, so it may have
        # arrived before the server stopped: the read breaks off after the first or second
        with pytest.raises(SourceReadIncomplete, match=r"after [24] entries"):
            connector.read(None, progress=stop_server_after_the_first_page)
        connector.close()


def test_posix_groups_name_their_members_by_user_name(ldap_tree: LdapTree) -> None:
    ldap_tree.add(
        ldap_tree.person("alice"),
        ldif_record(
            f"cn=staff,{ldap_tree.groups}",
            {
                "objectClass": "posixGroup",
                "cn": "staff",
                "gidNumber": "5000",
                "memberUid": ["alice", "Ghost"],
            },
        ),
    )
    reading = ldap_tree.read(group_object_class="posixGroup", member_attribute="memberUid")
    assert reading.snapshot is not None
    (group,) = reading.snapshot.groups
    assert group.member_refs == {username_ref("alice"), username_ref("ghost")}


def test_a_posix_group_may_name_members_by_dn_in_member_uid(ldap_tree: LdapTree) -> None:
    ldap_tree.add(
        ldap_tree.person("alice"),
        ldap_tree.person("bob"),
        ldif_record(
            f"cn=staff,{ldap_tree.groups}",
            {
                "objectClass": "posixGroup",
                "cn": "staff",
                "gidNumber": "5000",
                "memberUid": [ldap_tree.user_dn("alice").upper(), "bob"],
            },
        ),
    )
    reading = ldap_tree.read(group_object_class="posixGroup", member_attribute="memberUid")
    assert reading.snapshot is not None
    (group,) = reading.snapshot.groups
    alice = {u.username: u for u in reading.snapshot.users}["alice"]
    assert group.member_refs == {alice.ref, username_ref("bob")}


def test_a_paged_search_left_early_does_not_disturb_the_next_search(ldap_tree: LdapTree) -> None:
    # the session asks for the next page before handing on this one: a caller that stops
    # after the first page leaves that request outstanding; it is abandoned, and whatever the
    # server had already sent for it is skipped by the next search
    ldap_tree.add(*(ldap_tree.person(f"user{i:02}") for i in range(7)))
    session = LdapSession(ldap_tree.settings(page_size=3), organization="acme")
    session.open()
    try:
        search = ("(objectClass=inetOrgPerson)", ["uid"])
        first = session.paged_search(ldap_tree.people, *search, what="users")
        assert next(first)["raw_attributes"]["uid"]
        first.close()
        again = session.paged_search(ldap_tree.people, *search, what="users")
        uids = sorted(e["raw_attributes"]["uid"][0].decode() for e in again)
        assert uids == [f"user{i:02}" for i in range(7)]
    finally:
        session.close()
