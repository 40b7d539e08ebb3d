"""The RFC 4533 control and message bytes we build and parse."""

from __future__ import annotations

import uuid

import pytest

from dirsync.connectors.ldap import syncrepl_ber as ber

COOKIE = b"rid=000,csn=20261125104805.245560Z#000000#000#000000"
UUID_A = uuid.UUID("70385aee-7d09-1041-9e89-7f3454a9b940")
UUID_B = uuid.UUID("7047eee6-7d09-1041-9258-d18ea9452e86")


def test_a_refresh_only_request_without_a_cookie_is_just_the_mode() -> None:
    assert ber.encode_sync_request() == bytes.fromhex("3003 0a01 01")


def test_a_refresh_only_request_carries_the_cookie_as_an_octet_string() -> None:
    value = ber.encode_sync_request(ber.SyncMode.REFRESH_ONLY, b"abc")
    assert value == bytes.fromhex("3008 0a0101 0403") + b"abc"


def test_a_reload_hint_is_encoded_as_ber_true() -> None:
    value = ber.encode_sync_request(ber.SyncMode.REFRESH_AND_PERSIST, b"", reload_hint=True)
    assert value == bytes.fromhex("3008 0a0103 0400 0101ff")


def test_a_long_cookie_uses_the_long_length_form() -> None:
    cookie = b"x" * 200
    value = ber.encode_sync_request(cookie=cookie)
    assert value[:6] == bytes.fromhex("3081ce 0a0101")
    assert value[6:9] == bytes.fromhex("0481c8")
    assert value[9:] == cookie


def test_a_sync_state_gives_the_state_the_uuid_and_the_optional_cookie() -> None:
    body = bytes.fromhex("0a0103 0410") + UUID_A.bytes
    state = ber.decode_sync_state(bytes([0x30, len(body)]) + body)
    assert state == ber.SyncState(state=ber.SyncStateKind.DELETE, entry_uuid=UUID_A.bytes)
    assert ber.uuid_text(state.entry_uuid) == str(UUID_A)
    body += bytes([0x04, len(COOKIE)]) + COOKIE
    with_cookie = ber.decode_sync_state(bytes([0x30, len(body)]) + body)
    assert with_cookie.state == ber.SyncStateKind.DELETE and with_cookie.cookie == COOKIE


def test_sync_done_defaults_refresh_deletes_to_false() -> None:
    body = bytes([0x04, len(COOKIE)]) + COOKIE
    assert ber.decode_sync_done(bytes([0x30, len(body)]) + body) == ber.SyncDone(cookie=COOKIE)
    assert ber.decode_sync_done(bytes.fromhex("3003 0101ff")) == ber.SyncDone(refresh_deletes=True)
    assert ber.decode_sync_done(bytes.fromhex("3000")) == ber.SyncDone()


def test_a_sync_id_set_lists_the_deleted_uuids() -> None:
    uuids = bytes([0x04, 16]) + UUID_A.bytes + bytes([0x04, 16]) + UUID_B.bytes
    body = bytes([0x04, len(COOKIE)]) + COOKIE + bytes.fromhex("0101ff")
    body += bytes([0x31, len(uuids)]) + uuids
    info = ber.decode_sync_info(bytes([0xA3, len(body)]) + body)
    assert info.kind == ber.SyncInfoKind.SYNC_ID_SET
    assert info.cookie == COOKIE and info.refresh_deletes is True
    assert [ber.uuid_text(u) for u in info.uuids] == [str(UUID_A), str(UUID_B)]


def test_a_sync_id_set_without_refresh_deletes_lists_present_entries() -> None:
    uuids = bytes([0x04, 16]) + UUID_A.bytes
    body = bytes([0x31, len(uuids)]) + uuids
    info = ber.decode_sync_info(bytes([0xA3, len(body)]) + body)
    assert info.refresh_deletes is False and info.uuids == (UUID_A.bytes,)


def test_new_cookie_refresh_delete_and_refresh_present_infos_decode() -> None:
    new = ber.decode_sync_info(bytes([0x80, 3]) + b"abc")
    assert new == ber.SyncInfo(kind=ber.SyncInfoKind.NEW_COOKIE, cookie=b"abc")
    delete = ber.decode_sync_info(bytes.fromhex("a103 010100"))
    assert delete.kind == ber.SyncInfoKind.REFRESH_DELETE and delete.refresh_done is False
    present = ber.decode_sync_info(bytes.fromhex("a200"))
    assert present.kind == ber.SyncInfoKind.REFRESH_PRESENT and present.refresh_done is True


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("30"),  # no length
        bytes.fromhex("3005 0a0101"),  # claims more than there is
        bytes.fromhex("3003 0a0109 00"),  # trailing bytes after the sequence
        bytes.fromhex("3003 0a0109"),  # an unknown state
        bytes.fromhex("3180"),  # indefinite length
    ],
)
def test_malformed_sync_states_raise_a_ber_error(data: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_sync_state(data)


def test_an_unknown_sync_info_choice_raises_a_ber_error() -> None:
    with pytest.raises(ber.BerError):
        ber.decode_sync_info(bytes.fromhex("a400"))


def test_a_sync_uuid_must_be_sixteen_bytes() -> None:
    with pytest.raises(ber.BerError):
        ber.uuid_text(b"short")
