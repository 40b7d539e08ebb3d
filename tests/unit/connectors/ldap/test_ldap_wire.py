"""The search-response decoder, on messages encoded as slapd encodes them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.connectors.ldap import ber, messages, wire

_SET_OF = 0x31


def _entry_message(
    message_id: int, dn: str, attributes: dict[str, list[bytes]] | list[tuple[str, list[bytes]]]
) -> bytes:
    items = attributes.items() if isinstance(attributes, dict) else attributes
    partials = [
        ber.sequence(
            ber.octet_string(name.encode()),
            ber.tlv(_SET_OF, b"".join(ber.octet_string(value) for value in values)),
        )
        for name, values in items
    ]
    entry = ber.octet_string(dn.encode()) + ber.sequence(*partials)
    return messages.message(message_id, ber.tlv(wire.SEARCH_RESULT_ENTRY, entry))


def _done_message(message_id: int, code: int, text: str) -> bytes:
    result = ber.tlv(ber.ENUMERATED, bytes([code])) + ber.octet_string(b"")
    result += ber.octet_string(text.encode())
    return messages.message(message_id, ber.tlv(wire.SEARCH_RESULT_DONE, result))


def test_the_test_encoder_makes_rfc_4511s_bytes() -> None:
    # worked out by hand from RFC 4511: message id 2, searchResDone success; an entry dc=x
    assert _done_message(2, 0, "") == bytes.fromhex("300c02010265070a010004000400")
    assert _entry_message(2, "dc=x", {"dc": [b"x"]}) == bytes.fromhex(
        "3018 020102 6413 0404 64633d78 300b 3009 04026463 3103 040178".replace(" ", "")
    )


def test_an_entry_decodes_to_its_dn_and_raw_values_by_case_insensitive_name() -> None:
    big = b"v" * 300  # a long-form length
    data = _entry_message(7, "uid=a,ou=People,dc=x", {"entryUUID": [b"id-1"], "cn": [b"A", big]})
    [(message_id, entry)] = wire.MessageBuffer().feed(data)
    assert message_id == 7
    assert entry["type"] == "searchResEntry" and entry["dn"] == "uid=a,ou=People,dc=x"
    assert entry["raw_dn"] == b"uid=a,ou=People,dc=x"
    assert entry["raw_attributes"].get("ENTRYUUID") == [b"id-1"]
    assert entry["raw_attributes"]["cn"] == [b"A", big]
    assert "EntryUuid" in entry["raw_attributes"]


def test_a_value_set_under_any_case_of_a_name_is_found_under_any_other() -> None:
    # Active Directory's session sets its email fallback under the configured name
    data = _entry_message(1, "cn=b,dc=x", {"userPrincipalName": [b"b@upn.example"]})
    [(_, entry)] = wire.MessageBuffer().feed(data)
    raw = entry["raw_attributes"]
    raw["Mail"] = raw["USERPRINCIPALNAME"]
    assert raw.get("mail") == raw["MAIL"] == [b"b@upn.example"]
    assert sorted(raw) == ["mail", "userprincipalname"]


def test_messages_split_across_chunks_come_out_whole_and_in_order() -> None:
    data = _entry_message(3, "cn=one", {"cn": [b"one"]}) + _done_message(3, 0, "")
    buffer = wire.MessageBuffer()
    messages = []
    for start in range(0, len(data), 5):
        messages += buffer.feed(data[start : start + 5])
    assert [m["type"] for _, m in messages] == ["searchResEntry", "searchResDone"]
    assert messages[1][1]["result"] == 0 and buffer.pending == 0


def test_a_done_message_gives_the_result_code_and_diagnostic_message() -> None:
    [(_, done)] = wire.MessageBuffer().feed(_done_message(9, 4, "size limit exceeded"))
    assert done["type"] == "searchResDone"
    assert done["result"] == 4 and done["message"] == "size limit exceeded"


def test_the_paged_results_control_round_trips_its_cookie() -> None:
    value = wire.encode_paged_control(1000, b"\x01\x02cookie")
    assert value == bytes.fromhex("300e 020203e8 0408 0102") + b"cookie"
    assert wire.decode_paged_cookie(value) == b"\x01\x02cookie"
    assert wire.decode_paged_cookie(wire.encode_paged_control(500, None)) == b""


def test_bytes_that_are_not_an_ldap_message_raise_a_wire_error() -> None:
    with pytest.raises(wire.WireError):
        wire.MessageBuffer().feed(b"\x04\x03abc")


def _page() -> bytes:
    return b"".join(
        [
            _entry_message(2, "uid=alice,ou=People,dc=example,dc=org", {"mail": [b"a@x.org"]}),
            _entry_message(2, "cn=a\\2a,ou=Groups,dc=example,dc=org", {"member": [b"x", b"y"]}),
            _done_message(2, 0, ""),
        ]
    )


def _feed_all(chunks: list[bytes]) -> list[tuple[int, dict[str, object]]]:
    buffer = wire.MessageBuffer()
    messages = []
    for chunk in chunks:
        messages.extend(buffer.feed(chunk))
    return messages


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_damaged_page_is_a_wire_error_or_whole_messages_never_a_crash(
    data: st.DataObject,
) -> None:
    """Bit flips, cuts and garbage: the decoder yields messages or raises WireError, which the
    session turns into an incomplete read. Nothing else may escape."""
    page = bytearray(_page())
    for _ in range(data.draw(st.integers(0, 4))):
        page[data.draw(st.integers(0, len(page) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(page)))
    damaged = bytes(page[:cut]) + data.draw(st.binary(max_size=40))
    sizes = data.draw(st.lists(st.integers(1, 64), max_size=20))
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(damaged[pos : pos + size])
        pos += size
    chunks.append(damaged[pos:])
    try:
        messages = _feed_all(chunks)
    except wire.WireError:
        return
    for message_id, message in messages:
        assert isinstance(message_id, int) and isinstance(message, dict)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_any_paged_results_control_value_is_a_cookie_or_a_wire_error(value: bytes) -> None:
    try:
        cookie = wire.decode_paged_cookie(value)
    except wire.WireError:
        return
    assert isinstance(cookie, bytes)


def test_an_undamaged_page_split_anywhere_decodes_whole() -> None:
    page = _page()
    for cut in range(1, len(page)):
        messages = _feed_all([page[:cut], page[cut:]])
        assert [m[1].get("type") for m in messages][-1] == "searchResDone"
        assert len(messages) == 3


attribute_names = st.sampled_from(["cn", "CN", "member", "entryUUID", "mail", "x-Ä"])
value_bytes = st.one_of(
    st.binary(max_size=3),
    st.binary(max_size=3),
    st.binary(min_size=120, max_size=300),  # around the short/long length forms
)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 2**31 - 1),
    st.one_of(st.text(max_size=200), st.just("cn=" + "x" * 70_000)),  # three-byte lengths
    st.lists(st.tuples(attribute_names, st.lists(value_bytes, max_size=4)), max_size=6),
    st.integers(1, 500),
)
def test_any_entry_decodes_to_its_values_by_lower_case_name_however_it_is_chunked(
    message_id: int, dn: str, attributes: list[tuple[str, list[bytes]]], chunk: int
) -> None:
    """Names sent twice (in any case) merge in order; one value, many or none; every length
    form: what was encoded comes back, split into chunks of any size."""
    expected: dict[str, list[bytes]] = {}
    for name, values in attributes:
        expected.setdefault(name.lower(), []).extend(values)
    data = _entry_message(message_id, dn, attributes) + _done_message(message_id, 0, "")

    messages = _feed_all([data[i : i + chunk] for i in range(0, len(data), chunk)])

    [(got_id, got), (_, done)] = messages
    assert got_id == message_id and done["type"] == "searchResDone"
    assert got["raw_dn"] == dn.encode("utf-8") and dict(got["raw_attributes"]) == expected
