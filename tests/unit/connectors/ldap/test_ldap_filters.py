"""RFC 4515 filters to RFC 4511 BER: the encodings worked out by hand, and the refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dirsync.connectors.ldap import ber
from dirsync.connectors.ldap.dn import escape_filter_value
from dirsync.connectors.ldap.filters import FilterError, encode_filter


def _ava(tag: int, name: str, value: bytes) -> bytes:
    return ber.tlv(tag, ber.octet_string(name.encode()) + ber.octet_string(value))


def test_presence_equality_and_ordering() -> None:
    assert encode_filter("(objectClass=*)") == b"\x87\x0bobjectClass"
    assert encode_filter("(uid=alice)") == _ava(0xA3, "uid", b"alice")
    assert encode_filter("(uSNChanged>=42)") == _ava(0xA5, "uSNChanged", b"42")
    assert encode_filter("(uSNChanged<=42)") == _ava(0xA6, "uSNChanged", b"42")
    assert encode_filter("(cn~=bob)") == _ava(0xA8, "cn", b"bob")


def test_and_or_not_nest_and_tolerate_whitespace_between_parts() -> None:
    inner = encode_filter("(a=1)") + encode_filter("(b=2)")
    assert encode_filter("(&(a=1)(b=2))") == ber.tlv(0xA0, inner)
    assert encode_filter("(| (a=1)\n   (b=2) )") == ber.tlv(0xA1, inner)
    assert encode_filter("(!(a=1))") == ber.tlv(0xA2, encode_filter("(a=1)"))
    assert encode_filter("  (&(a=1)(b=2))  ") == ber.tlv(0xA0, inner)


def test_substrings_have_initial_any_and_final_parts() -> None:
    body = ber.octet_string(b"cn") + ber.sequence(
        ber.tlv(0x80, b"a"), ber.tlv(0x81, b"b"), ber.tlv(0x82, b"c")
    )
    assert encode_filter("(cn=a*b*c)") == ber.tlv(0xA4, body)
    only_any = ber.octet_string(b"cn") + ber.sequence(ber.tlv(0x81, b"x"))
    assert encode_filter("(cn=*x*)") == ber.tlv(0xA4, only_any)


def test_extensible_match_with_rule_attribute_and_dn_flag() -> None:
    in_chain = "(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x)"
    assert encode_filter(in_chain) == ber.tlv(
        0xA9,
        ber.tlv(0x81, b"1.2.840.113556.1.4.1941")
        + ber.tlv(0x82, b"memberOf")
        + ber.tlv(0x83, b"cn=g,dc=x"),
    )
    assert encode_filter("(cn:dn:=Dino)") == ber.tlv(
        0xA9, ber.tlv(0x82, b"cn") + ber.tlv(0x83, b"Dino") + ber.tlv(0x84, b"\xff")
    )


def test_escapes_and_utf8_values_become_their_bytes() -> None:
    assert encode_filter("(cn=caf\\c3\\a9)") == encode_filter("(cn=café)")
    assert encode_filter("(cn=\\2a\\28\\29\\5c\\00)") == _ava(0xA3, "cn", b"*()\\\x00")


def test_a_long_value_gets_a_long_form_length() -> None:
    encoded = encode_filter("(cn=" + "x" * 300 + ")")
    assert encoded[:2] == b"\xa3\x82" and len(encoded) == 4 + 4 + 4 + 300


@pytest.mark.parametrize(
    "text",
    [
        "",
        "uid=alice",
        "(uid=alice",
        "(uid=alice))",
        "(&)",
        "(=alice)",
        "(ui d=alice)",
        "(cn=a(b)",
        "(cn=\\zz)",
        "(cn=\\4)",
        "(:=x)",
        "(!(a=1)(b=2))",
    ],
)
def test_what_is_not_a_filter_is_refused_with_a_position(text: str) -> None:
    with pytest.raises(FilterError, match="position"):
        encode_filter(text)


@given(st.text(max_size=40))
def test_any_value_escaped_for_a_filter_encodes_to_its_utf8_bytes(value: str) -> None:
    encoded = encode_filter(f"(cn={escape_filter_value(value)})")
    assert encoded == _ava(0xA3, "cn", value.encode("utf-8"))
