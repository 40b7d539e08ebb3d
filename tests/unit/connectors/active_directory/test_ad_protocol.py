"""Active Directory's wire details, pure: GUIDs, flags, bind sub-codes, BER, ranges, cursors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time

from dirsync.config.settings import parse_config
from dirsync.connectors.active_directory.controls import (
    DIRSYNC_INCREMENTAL_VALUES,
    BerError,
    DirSyncResponse,
    decode_dirsync_response,
    dirsync_request_value,
    dirsync_response,
    dirsync_rounds,
    paged_results_control,
    paged_results_cookie,
)
from dirsync.connectors.active_directory.cursor import AdCursor, parse_cursor
from dirsync.connectors.active_directory.ranges import RangeError, complete_ranges
from dirsync.connectors.active_directory.values import (
    account_disabled,
    account_expired,
    bind_failure_reason,
    guid_filter_value,
    guid_to_bytes,
    guid_to_str,
)
from dirsync.connectors.ldap import ber
from dirsync.errors import CursorExpired
from dirsync.model import Cursor

# -- objectGUID --------------------------------------------------------------------------------

# the first three fields are little-endian on the wire, the last two big-endian
GUID_BYTES = bytes.fromhex("33221100554477668899aabbccddeeff")
GUID_TEXT = "00112233-4455-6677-8899-aabbccddeeff"


def test_an_object_guid_is_formatted_in_ads_mixed_endian_canonical_form() -> None:
    assert guid_to_str(GUID_BYTES) == GUID_TEXT
    assert guid_to_bytes(GUID_TEXT) == GUID_BYTES
    assert guid_to_bytes("{" + GUID_TEXT.upper() + "}") == GUID_BYTES


def test_an_object_guid_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        guid_to_str(b"\x01\x02")


def test_a_guid_becomes_an_escaped_filter_value_in_wire_order() -> None:
    assert guid_filter_value(GUID_TEXT) == "\\33\\22\\11\\00\\55\\44\\77\\66" + "".join(
        f"\\{b:02x}" for b in bytes.fromhex("8899aabbccddeeff")
    )


# -- disabled and expired accounts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("uac", "disabled"), [(512, False), (514, True), (546, True), (None, False)]
)
def test_user_account_control_bit_2_means_disabled(uac: int | None, disabled: bool) -> None:
    assert account_disabled(uac) is disabled


def _filetime(when: datetime) -> int:
    return int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000


@freeze_time("2026-06-01T12:00:00Z")
def test_an_account_expires_date_in_the_past_means_expired_and_never_means_never() -> None:
    now = datetime.now(UTC)
    assert account_expired(_filetime(datetime(2026, 5, 31, tzinfo=UTC)), now)
    assert not account_expired(_filetime(datetime(2026, 6, 2, tzinfo=UTC)), now)
    assert not account_expired(0, now)
    assert not account_expired(0x7FFFFFFFFFFFFFFF, now)
    assert not account_expired(None, now)


# -- binds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcode", "meaning"),
    [
        ("52e", "the password is wrong"),
        ("533", "the bind account is disabled"),
        ("775", "the bind account is locked out"),
    ],
)
def test_ad_bind_sub_codes_are_explained(subcode: str, meaning: str) -> None:
    message = (
        "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, "
        f"data {subcode}, v4563"
    )
    reason = bind_failure_reason(49, message)
    assert meaning in reason and subcode in reason


def test_stronger_auth_required_says_to_use_ldaps_or_start_tls() -> None:
    reason = bind_failure_reason(8, "00002028: LdapErr: DSID-0C090259, comment: ...")
    assert "strongerAuthRequired" in reason and "ldaps://" in reason and "start_tls" in reason


# -- the DirSync control, byte by byte ------------------------------------------------------------


def test_the_dirsync_request_encodes_incremental_values_as_a_four_byte_negative_integer() -> None:
    value = dirsync_request_value(flags=DIRSYNC_INCREMENTAL_VALUES, max_bytes=0x100000, cookie=b"")
    assert value == bytes.fromhex(
        "300d"  # SEQUENCE, 13 bytes
        "020480000000"  # Flags: INTEGER -2147483648 (0x80000000 as AD's signed 32-bit)
        "0203100000"  # MaxBytes: INTEGER 1048576
        "0400"  # Cookie: empty OCTET STRING
    )


def test_a_long_cookie_gets_a_long_form_length() -> None:
    cookie = bytes(range(200))
    value = dirsync_request_value(flags=0, max_bytes=0, cookie=cookie)
    assert value[:3] == b"\x30\x81\xd1"  # 3 + 3 + 203 = 209 bytes of content
    assert value[9:12] == b"\x04\x81\xc8" and value[12:] == cookie


@pytest.mark.parametrize(
    ("number", "encoded"),
    [(0, "020100"), (127, "02017f"), (128, "02020080"), (-1, "0201ff"), (-129, "0202ff7f")],
)
def test_integers_are_encoded_in_minimal_twos_complement(number: int, encoded: str) -> None:
    assert ber.integer(number).hex() == encoded


def test_a_dirsync_response_is_decoded_with_its_more_results_flag_and_cookie() -> None:
    value = ber.sequence(ber.integer(1), ber.integer(0), ber.octet_string(b"cookie-2"))
    assert decode_dirsync_response(value) == DirSyncResponse(more_results=True, cookie=b"cookie-2")
    controls: dict[str, bytes | None] = {"1.2.840.113556.1.4.841": value}
    assert dirsync_response(controls) == DirSyncResponse(more_results=True, cookie=b"cookie-2")


@pytest.mark.parametrize(
    "garbage", [b"", b"\x30\x05\x02\x01", b"\x04\x00", b"\x30\x03\x02\x01\x00"]
)
def test_a_malformed_dirsync_response_raises_instead_of_guessing(garbage: bytes) -> None:
    with pytest.raises(BerError):
        decode_dirsync_response(garbage)


def test_dirsync_rounds_follow_more_results_with_each_new_cookie() -> None:
    answers = {
        b"c0": (["a", "b"], DirSyncResponse(more_results=True, cookie=b"c1")),
        b"c1": (["c"], DirSyncResponse(more_results=True, cookie=b"c2")),
        b"c2": ([], DirSyncResponse(more_results=False, cookie=b"c3")),
    }
    sent: list[bytes] = []

    def search(cookie: bytes) -> tuple[list[Any], DirSyncResponse | None]:
        sent.append(cookie)
        return answers[cookie]

    rounds = list(dirsync_rounds(search, b"c0"))
    assert sent == [b"c0", b"c1", b"c2"]
    assert [entries for entries, _ in rounds] == [["a", "b"], ["c"], []]
    assert rounds[-1][1] == b"c3"


def test_a_dirsync_answer_without_its_control_stops_the_read() -> None:
    with pytest.raises(BerError, match="without a DirSync control"):
        list(dirsync_rounds(lambda cookie: (["a"], None), b""))


# -- ranged member values, shaped the way Windows AD answers ---------------------------------------


def _members(low: int, high: int) -> list[bytes]:
    return [f"CN=u{i},OU=People,DC=acme,DC=example".encode() for i in range(low, high + 1)]


def test_a_group_over_1500_members_is_read_range_by_range_until_the_star() -> None:
    entry = {"cn": [b"Big"], "member": [], "member;range=0-1499": _members(0, 1499)}
    pages = {
        "member;range=1500-*": {"member;range=1500-2999": _members(1500, 2999)},
        "member;range=3000-*": {"member;range=3000-*": _members(3000, 3200)},
    }
    asked: list[str] = []

    def fetch(dn: str, attribute: str) -> dict[str, Any]:
        asked.append(attribute)
        return pages[attribute]

    complete = complete_ranges("CN=Big,DC=acme,DC=example", entry, fetch)
    assert asked == ["member;range=1500-*", "member;range=3000-*"]
    assert complete["member"] == _members(0, 3200)
    assert complete["cn"] == [b"Big"]
    assert not any(";range=" in key for key in complete)


def test_an_entry_without_ranges_is_left_as_it_is() -> None:
    entry = {"member": _members(0, 2)}
    assert complete_ranges("cn=g", entry, lambda dn, a: pytest.fail("no fetch")) is entry


@pytest.mark.parametrize(
    "answer",
    [{}, {"member;range=1600-*": _members(1600, 1700)}, {"cn": [b"x"]}],
    ids=["nothing", "a gap", "no range"],
)
def test_a_missing_or_non_contiguous_range_raises_rather_than_truncating(
    answer: dict[str, Any],
) -> None:
    entry = {"member;range=0-1499": _members(0, 1499)}
    with pytest.raises(RangeError):
        complete_ranges("cn=g", entry, lambda dn, attribute: answer)


# -- cursors and settings ------------------------------------------------------------------


def test_ad_cursors_survive_the_store_and_unreadable_ones_mean_a_full_read() -> None:
    usn = AdCursor(mode="usn", dc="ldaps://dc1", invocation_id=GUID_TEXT, usn=4711)
    dirsync = AdCursor(mode="dirsync", dc="ldaps://dc2", cookie=b"\x00\xffcookie")
    assert parse_cursor(usn.to_cursor()) == usn
    assert parse_cursor(dirsync.to_cursor()) == dirsync
    with pytest.raises(CursorExpired):
        parse_cursor(Cursor(kind="syncrepl", value="x"))
    with pytest.raises(CursorExpired):
        parse_cursor(Cursor(kind="active_directory", value="{not json"))


def _ad_config(tmp_path: Any, **source: Any) -> Any:
    raw = {
        "organization": [
            {
                "name": "acme",
                "source": {"type": "active_directory", "base_dn": "DC=acme,DC=example", **source},
            }
        ]
    }
    return parse_config(raw, base_dir=tmp_path).organization[0].source


def test_url_may_list_several_domain_controllers(tmp_path: Any) -> None:
    source = _ad_config(tmp_path, url=["ldaps://dc1.acme.example", "ldaps://dc2.acme.example:636"])
    assert source.urls == ("ldaps://dc1.acme.example", "ldaps://dc2.acme.example:636")
    assert source.for_url(source.urls[1]).url == "ldaps://dc2.acme.example:636"


def test_ad_defaults_fit_active_directory(tmp_path: Any) -> None:
    source = _ad_config(tmp_path, url="ldaps://dc1.acme.example")
    assert (source.user_object_class, source.group_object_class) == ("user", "group")
    assert source.username_attribute == "sAMAccountName"
    assert source.external_id_attribute == "objectGUID"
    assert source.email_fallback_attribute == "userPrincipalName"
    assert source.incremental == "auto"


def test_a_paged_results_control_carries_its_size_and_cookie_both_ways() -> None:
    oid, critical, value = paged_results_control(size=500, cookie=b"next")
    assert (oid, critical) == ("1.2.840.113556.1.4.319", False)
    assert value == bytes.fromhex("300a") + bytes.fromhex("020201f4") + b"\x04\x04next"
    assert paged_results_cookie({oid: value}) == b"next"
    last_page = ber.sequence(ber.integer(0), ber.octet_string(b""))
    assert paged_results_cookie({oid: last_page}) == b""
    assert paged_results_cookie(None) == b""
    with pytest.raises(BerError):
        paged_results_cookie({oid: value[:-3]})


def _connector(tmp_path: Any, **source: Any) -> Any:
    from dirsync.connectors.active_directory.connector import ActiveDirectoryConnector

    return ActiveDirectoryConnector(
        _ad_config(tmp_path, url="ldaps://dc1.acme.example", **source), organization="acme"
    )


def test_the_connector_reads_people_only_and_formats_guids(tmp_path: Any) -> None:
    connector = _connector(tmp_path, user_filter="(department=IT)")
    assert connector.settings.user_filter == "(objectCategory=person)(department=IT)"
    assert connector.decode_external_id(GUID_BYTES) == GUID_TEXT
    assert connector.decode_external_id(b"short") is None
    assert {"userAccountControl", "accountExpires", "userPrincipalName"} <= set(
        connector.user_attributes()
    )


def test_a_user_is_disabled_once_its_account_expires(tmp_path: Any) -> None:
    expires = str(_filetime(datetime(2026, 6, 1, tzinfo=UTC))).encode()
    entry = {"raw_attributes": {"userAccountControl": [b"544"], "accountExpires": [expires]}}
    connector = _connector(tmp_path)
    with freeze_time("2026-05-31T23:59:00Z"):
        assert connector.user_disabled(entry) is False
    with freeze_time("2026-06-01T00:00:01Z"):
        assert connector.user_disabled(entry) is True
        assert _connector(tmp_path, expired_is_disabled=False).user_disabled(entry) is False
    disabled = {"raw_attributes": {"userAccountControl": [b"546"]}}
    assert connector.user_disabled(disabled) is True
