"""normalize_dn: one spelling per DN, so that refs compare equal exactly when the DNs are equal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.connectors.ldap.dn import (
    escape_filter_value,
    is_valid_dn,
    normalize_dn,
    strip_optional_uid,
)

BASE = "ou=people,dc=example,dc=org"


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("uid=alice,ou=People,dc=example,dc=org", f"uid=alice,{BASE}"),
        ("UID=Alice,OU=People,DC=Example,DC=ORG", f"uid=alice,{BASE}"),
        ("uid = alice , ou=People, dc=example,dc=org", f"uid=alice,{BASE}"),
        ("cn=  Alice    Andersen  ,dc=org", "cn=alice andersen,dc=org"),
        ("cn=\\ Alice\\ ,dc=org", "cn=alice,dc=org"),
        (
            "commonName=Alice,2.5.4.11=People,0.9.2342.19200300.100.1.25=org",
            "cn=alice,ou=people,dc=org",
        ),
        ("OID.2.5.4.3=Alice,dc=org", "cn=alice,dc=org"),
        ("cn=#0c05416c696365,dc=org", "cn=alice,dc=org"),  # BER UTF8String "Alice"
        ('cn="Doe, John",dc=org', "cn=doe\\, john,dc=org"),
        ("", ""),
    ],
)
def test_spellings_of_one_dn_normalize_to_one_canonical_form(spelling: str, canonical: str) -> None:
    assert normalize_dn(spelling) == canonical


@pytest.mark.parametrize(
    "spelling",
    [
        "cn=Doe\\, John+uid=jdoe,ou=People,dc=example,dc=org",
        "uid=jdoe+cn=Doe\\, John,ou=People,dc=example,dc=org",
        "UID=JDOE+CN=doe\\2C john,ou=people,dc=example,dc=org",
        "cn=Doe\\2c John+uid=jdoe,ou=People,dc=example,dc=org",
        'cn="Doe, John"+uid=jdoe,ou=People,dc=example,dc=org',
        "cn = Doe\\, John + uid = jdoe , ou=People,dc=example,dc=org",
    ],
)
def test_escapes_case_and_multi_valued_rdn_order_do_not_matter(spelling: str) -> None:
    assert normalize_dn(spelling) == f"cn=doe\\, john+uid=jdoe,{BASE}"


def test_hex_escapes_of_utf8_bytes_equal_the_characters() -> None:
    assert normalize_dn("cn=Zo\\C3\\AB \\C3\\98rsted,dc=org") == normalize_dn(
        "cn=Zoë Ørsted,dc=org"
    )
    assert normalize_dn("cn=Zoë Ørsted,dc=org") == "cn=zoë ørsted,dc=org"


def test_every_special_character_survives_a_round_trip() -> None:
    value = 'a,b+c"d\\e#f<g>h;i=j'
    escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)

    canonical = normalize_dn(f"uid={escaped},dc=org")

    assert canonical == normalize_dn("uid=a\\2Cb\\2Bc\\22d\\5Ce#f\\3Cg\\3Eh\\3Bi\\3Dj,dc=org")
    assert normalize_dn(canonical) == canonical  # the canonical form parses back to itself


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("cn=a\\,b,dc=org", "cn=a,cn=b,dc=org"),  # an escaped comma is not a separator
        ("cn=a\\+uid=b,dc=org", "cn=a+uid=b,dc=org"),  # an escaped plus is not a separator
        ("cn=\\#0c0141,dc=org", "cn=#0c0141,dc=org"),  # a string starting with '#' vs BER
        ("cn=#04024142,dc=org", "cn=ab,dc=org"),  # BER OCTET STRING is not a plain string
        ("cn=a b,dc=org", "cn=ab,dc=org"),  # an inner space is significant
        ("cn=alice,dc=org", "uid=alice,dc=org"),
        ("cn=a\\3D,dc=org", "cn=a\\3D\\3D,dc=org"),
    ],
)
def test_different_dns_never_collide(first: str, second: str) -> None:
    assert normalize_dn(first) != normalize_dn(second)


@pytest.mark.parametrize(
    "malformed",
    [
        "alice",
        "cn=alice,",
        "cn=alice+",
        "=alice,dc=org",
        "cn=alice,,dc=org",
        "c n=alice",
        "cn=alice\\",
        "cn=a\\ff,dc=org",  # escaped bytes that are not UTF-8
        "cn=#abc,dc=org",  # odd number of hex digits
        "cn=#0c01zz",
        "cn=a<b,dc=org",
        'cn="unterminated,dc=org',
        'cn="quoted"tail,dc=org',
    ],
)
def test_a_malformed_dn_raises_value_error(malformed: str) -> None:
    with pytest.raises(ValueError, match="not a DN"):
        normalize_dn(malformed)
    assert not is_valid_dn(malformed)


@pytest.mark.parametrize(
    ("value", "stripped"),
    [
        ("uid=alice,dc=org#'0101'B", "uid=alice,dc=org"),
        ("uid=alice,dc=org#''B", "uid=alice,dc=org"),
        ("uid=alice,dc=org", "uid=alice,dc=org"),
        ("uid=alice\\#'01'B", "uid=alice\\#'01'B"),  # the '#' is escaped: part of the value
        ("uid=alice\\\\#'01'B", "uid=alice\\\\"),  # an escaped backslash, then the UID
        ("uid=alice#'012'B", "uid=alice#'012'B"),  # not a bit string
    ],
)
def test_strip_optional_uid_drops_only_a_trailing_bit_string(value: str, stripped: str) -> None:
    assert strip_optional_uid(value) == stripped


@pytest.mark.parametrize(
    "dn",
    [
        "uid=alice,ou=People,dc=example,dc=org",
        "CN=  Zoë   Ørsted ,OU=People,DC=Example",
        "commonName=a=b,2.5.4.11=x",
        "cn=\uff46\uff55\uff4c\uff4c,dc=org",  # fullwidth "full": NFKC makes it plain
    ],
)
def test_the_fast_path_agrees_with_the_full_parser(dn: str) -> None:
    from dirsync.connectors.ldap.dn import _normalize_parsed

    assert normalize_dn(dn) == _normalize_parsed(dn)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["uid", "CN", "ou", " dc", "oid.2.5.4.3", "commonName", "x-Y1"]),
            st.text(alphabet="aZ09._@- #é", min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_plain_and_near_plain_values_normalize_as_the_full_parser_does(
    rdns: list[tuple[str, str]],
) -> None:
    from dirsync.connectors.ldap.dn import _normalize_parsed

    dn = ",".join(f"{t}={v}" for t, v in rdns)
    try:
        expected = _normalize_parsed(dn)
    except ValueError:
        with pytest.raises(ValueError):
            normalize_dn(dn)
        return
    assert normalize_dn(dn) == expected


def test_a_search_path_is_joined_to_the_base_unless_it_already_ends_with_it() -> None:
    from dirsync.connectors.ldap.reader import join_dn

    assert join_dn("ou=People", "dc=acme,dc=example") == "ou=People,dc=acme,dc=example"
    assert join_dn("", "dc=acme,dc=example") == "dc=acme,dc=example"
    full = "ou=People,DC=Acme,dc=example"
    assert join_dn(full, "dc=acme,dc=example") == full
    assert join_dn("ou=x,dc=notacme,dc=example", "dc=acme,dc=example") == (
        "ou=x,dc=notacme,dc=example,dc=acme,dc=example"
    )


def _backslash_escaped(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _hex_escaped(value: str) -> str:
    return "".join(f"\\{b:02X}" for b in value.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda v: v.strip() and "\x00" not in v))
def test_any_value_escaped_either_way_normalizes_to_one_dn(value: str) -> None:
    by_backslash = normalize_dn(f"cn={_backslash_escaped(value)},ou=Groups,dc=org")
    by_hex = normalize_dn(f"cn={_hex_escaped(value)},ou=Groups,dc=org")
    assert by_backslash == by_hex
    assert normalize_dn(by_backslash) == by_backslash


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_any_string_is_a_dn_or_a_value_error_never_a_crash(text: str) -> None:
    try:
        normalized = normalize_dn(text)
    except ValueError:
        assert not is_valid_dn(text)
        return
    assert normalize_dn(normalized) == normalized


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("*)(objectClass=*", "\\2a\\29\\28objectClass=\\2a"),
        ("cn=a\\2a,dc=org", "cn=a\\5c2a,dc=org"),
        ("nul\x00", "nul\\00"),
        ("plain", "plain"),
    ],
)
def test_values_written_into_a_filter_are_escaped(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


@given(st.text(alphabet="uidcnoU=,. aZ09-_@é#+\\", max_size=30))
def test_the_fast_path_and_the_full_parser_agree_on_any_text_errors_included(text: str) -> None:
    from dirsync.connectors.ldap.dn import _normalize_parsed

    try:
        expected = _normalize_parsed(text)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            normalize_dn(text)
        assert str(raised.value) == str(exc)
        return
    assert normalize_dn(text) == expected
