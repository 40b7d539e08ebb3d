"""The fast search-response decoder, checked against messages ldap3's own encoder builds."""

from __future__ import annotations

import pytest
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    AttributeDescription,
    AttributeValue,
    LDAPMessage,
    LDAPResult,
    MessageID,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    ResultCode,
    SearchResultDone,
    SearchResultEntry,
    Vals,
)
from ldap3.utils.asn1 import encode

from dirsync.connectors import ldap_wire as wire


def _entry_message(message_id: int, dn: str, attributes: dict[str, list[bytes]]) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    partials = PartialAttributeList()
    for index, (name, values) in enumerate(attributes.items()):
        partial = PartialAttribute()
        partial["type"] = AttributeDescription(name)
        vals = Vals()
        for position, value in enumerate(values):
            vals.setComponentByPosition(position, AttributeValue(value))
        partial["vals"] = vals
        partials.setComponentByPosition(index, partial)
    entry["attributes"] = partials
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchResEntry", entry)
    return bytes(encode(message))


def _done_message(message_id: int, code: int, text: str) -> bytes:
    done = SearchResultDone()
    done["resultCode"] = ResultCode(code)
    done["matchedDN"] = LDAPDN("")
    done["diagnosticMessage"] = LDAPResult()["diagnosticMessage"].clone(text)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchResDone", done)
    return bytes(encode(message))


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
