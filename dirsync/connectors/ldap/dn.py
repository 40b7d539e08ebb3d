"""Distinguished names (RFC 4514) in one canonical spelling, for equality only.

``normalize_dn`` makes different spellings of the same DN equal, and keeps different DNs apart:
attribute types are lower-cased (``commonName`` and ``2.5.4.3`` become ``cn``); values are
unescaped (``\\,`` and ``\\2C`` alike, multi-byte UTF-8 escapes included), NFKC-normalized,
lower-cased, stripped of leading/trailing spaces with inner runs of spaces collapsed (as LDAP's
caseIgnoreMatch does); the parts of a multi-valued RDN are sorted; the result is re-escaped one
way, so the output parses back to itself. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

# Attribute types that appear in RDNs under more than one name.
_TYPE_ALIASES: Final = {
    "2.5.4.3": "cn",
    "commonname": "cn",
    "2.5.4.11": "ou",
    "organizationalunitname": "ou",
    "2.5.4.10": "o",
    "organizationname": "o",
    "2.5.4.6": "c",
    "countryname": "c",
    "2.5.4.7": "l",
    "localityname": "l",
    "2.5.4.8": "st",
    "stateorprovincename": "st",
    "2.5.4.9": "street",
    "streetaddress": "street",
    "0.9.2342.19200300.100.1.25": "dc",
    "domaincomponent": "dc",
    "0.9.2342.19200300.100.1.1": "uid",
    "userid": "uid",
}

_TYPE: Final = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)$")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
# Escaped on output: RFC 4514's specials plus '=', so every value re-parses unambiguously.
_SPECIALS: Final = frozenset('\\,+";<>=')
# BER tags of string types whose '#hex' form is just another spelling of the string.
_BER_STRINGS: Final = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1"}
_OPTIONAL_UID: Final = re.compile(r"#'[01]*'B$")
_NEEDS_PARSER: Final = re.compile(r'[\\"#+<>;]')
_SPACES: Final = re.compile(" {2,}")


def normalize_dn(dn: str) -> str:
    """The canonical spelling of ``dn``; raises ``ValueError`` if it is not a DN."""
    if isinstance(dn, str):
        leaf, comma, parent = dn.partition(",")
        attr_type, equals, value = leaf.partition("=")
        if comma and equals and value.isascii() and value.isalnum():
            # Fastest path (an entry's own DN: uid=u000123,ou=People,...): a value of ASCII
            # letters and digits is its own lower case; the type and the parent DN (shared
            # by thousands of entries) are checked and normalized once, remembered
            try:
                return f"{_plain_type(attr_type)}={value.lower()},{_simple_parent(parent)}"
            except ValueError:
                pass
        elif dn and _NEEDS_PARSER.search(dn) is None:
            # Fast path (most other DNs): no escapes, quotes, '#' or '+', so every ','
            # separates RDNs and each RDN is one type=value. A malformed DN takes the slow
            # path below, which says precisely what is wrong.
            try:
                head = _leaf_rdn(leaf)  # unique to its entry: not worth caching
                return f"{head},{_simple_parent(parent)}" if comma else head
            except ValueError:
                pass
    return _normalize_parsed(dn)


@functools.lru_cache(maxsize=4096)
def _simple_parent(dn: str) -> str:
    """The fast path's normalization of a DN without specials, remembered."""
    if _NEEDS_PARSER.search(dn) is not None:
        raise ValueError(dn)  # for the full parser
    return ",".join(_simple_rdn(part) for part in dn.split(","))


def _normalize_parsed(dn: str) -> str:
    return ",".join("+".join(f"{t}={v}" for t, v in sorted(set(rdn))) for rdn in _parse(dn))


# ASCII letters, digits and ._@- only, not starting with a space or '#': NFKC, space folding
# and escaping leave such a value as it is, so it normalizes to its lower case
_PLAIN_VALUE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*\Z")


def _leaf_rdn(rdn: str) -> str:
    """One RDN without specials (the fast path): ``uid=Alice`` → ``uid=alice``."""
    attr_type, equals, value = rdn.partition("=")
    if not equals:
        raise ValueError(rdn)
    if _PLAIN_VALUE.match(value):
        # the leaf RDN of each entry is unique (a cache miss): this skips the byte round trip
        return f"{_plain_type(attr_type)}={value.lower()}"
    normalized = _normalize_value(bytearray(value.encode("utf-8", "surrogatepass")), rdn)
    return f"{_normalize_type(attr_type, rdn)}={normalized}"


_simple_rdn: Final = functools.lru_cache(maxsize=4096)(_leaf_rdn)


@functools.lru_cache(maxsize=256)
def _plain_type(text: str) -> str:
    """``_normalize_type`` for the few attribute types DNs use, remembered."""
    return _normalize_type(text, text)


def is_valid_dn(dn: str) -> bool:
    try:
        _parse(dn)
    except ValueError:
        return False
    return True


def strip_optional_uid(value: str) -> str:
    """``uniqueMember`` values may end in an optional UID, ``dn#'0101'B``: drop it."""
    match = _OPTIONAL_UID.search(value)
    if match is None:
        return value
    head = value[: match.start()]
    backslashes = len(head) - len(head.rstrip("\\"))
    if backslashes % 2:  # the '#' is escaped, so it belongs to the last value
        return value
    return head


def _parse(dn: str) -> list[list[tuple[str, str]]]:
    """``dn`` as RDNs, each a list of (normalized type, normalized and re-escaped value)."""
    if not isinstance(dn, str):
        raise ValueError(f"a DN must be a string, not {type(dn).__name__}")
    if not dn.strip():
        return []
    rdns: list[list[tuple[str, str]]] = []
    rdn: list[tuple[str, str]] = []
    pos = 0
    length = len(dn)
    while True:
        equals = dn.find("=", pos)
        if equals < 0:
            raise ValueError(f"not a DN: {dn!r} (expected type=value at position {pos})")
        attr_type = _normalize_type(dn[pos:equals], dn)
        value, pos = _parse_value(dn, equals + 1)
        rdn.append((attr_type, value))
        if pos >= length:
            rdns.append(rdn)
            return rdns
        separator = dn[pos]
        pos += 1
        if separator == ",":
            rdns.append(rdn)
            rdn = []
        # '+' continues a multi-valued RDN
        if pos >= length:
            raise ValueError(f"not a DN: {dn!r} (ends with {separator!r})")


def _normalize_type(text: str, dn: str) -> str:
    name = text.strip()
    if name[:4].lower() == "oid.":
        name = name[4:]
    if not _TYPE.match(name):
        raise ValueError(f"not a DN: {dn!r} (bad attribute type {text.strip()!r})")
    lowered = name.lower()
    return _TYPE_ALIASES.get(lowered, lowered)


def _parse_value(dn: str, pos: int) -> tuple[str, int]:
    """The value starting at ``pos``, normalized and re-escaped, and the position after it."""
    length = len(dn)
    while pos < length and dn[pos] == " ":
        pos += 1
    if pos < length and dn[pos] == "#":
        return _parse_hex_value(dn, pos)
    if pos < length and dn[pos] == '"':
        return _parse_quoted_value(dn, pos)
    raw = bytearray()
    while pos < length:
        char = dn[pos]
        if char in ",+":
            break
        if char == "\\":
            pos = _unescape(dn, pos, raw)
            continue
        if char in '";<>':
            raise ValueError(f"not a DN: {dn!r} (unescaped {char!r} at position {pos})")
        raw += char.encode("utf-8", "surrogatepass")
        pos += 1
    return _normalize_value(raw, dn), pos


def _unescape(dn: str, pos: int, raw: bytearray) -> int:
    """Decode the escape at ``dn[pos] == '\\'`` into ``raw``; return the next position."""
    following = dn[pos + 1 : pos + 3]
    if len(following) == 2 and all(c in _HEX_DIGITS for c in following):
        raw.append(int(following, 16))
        return pos + 3
    if not following:
        raise ValueError(f"not a DN: {dn!r} (ends with a lone backslash)")
    raw += following[0].encode("utf-8", "surrogatepass")
    return pos + 2


def _parse_hex_value(dn: str, pos: int) -> tuple[str, int]:
    end = pos + 1
    while end < len(dn) and dn[end] in _HEX_DIGITS:
        end += 1
    digits = dn[pos + 1 : end]
    rest = end
    while rest < len(dn) and dn[rest] == " ":
        rest += 1
    if not digits or len(digits) % 2 or (rest < len(dn) and dn[rest] not in ",+"):
        raise ValueError(f"not a DN: {dn!r} (bad #hex value at position {pos})")
    ber = bytes.fromhex(digits)
    decoded = _ber_string(ber)
    if decoded is not None:
        return _normalize_value(bytearray(decoded.encode("utf-8")), dn), rest
    # Not a plain string: keep the BER bytes. A string value starting with '#' is always
    # escaped on output, so this form can never collide with one.
    return "#" + digits.lower(), rest


def _ber_string(ber: bytes) -> str | None:
    if len(ber) < 2 or ber[0] not in _BER_STRINGS or ber[1] != len(ber) - 2:
        return None  # only short-form lengths; anything else stays as #hex
    try:
        return ber[2:].decode(_BER_STRINGS[ber[0]])
    except UnicodeDecodeError:
        return None


def _parse_quoted_value(dn: str, pos: int) -> tuple[str, int]:
    """RFC 1779 ``cn="Doe, John"``: the quotes protect specials; escapes still apply."""
    raw = bytearray()
    pos += 1
    while True:
        if pos >= len(dn):
            raise ValueError(f"not a DN: {dn!r} (unterminated quoted value)")
        char = dn[pos]
        if char == '"':
            pos += 1
            break
        if char == "\\":
            pos = _unescape(dn, pos, raw)
            continue
        raw += char.encode("utf-8", "surrogatepass")
        pos += 1
    while pos < len(dn) and dn[pos] == " ":
        pos += 1
    if pos < len(dn) and dn[pos] not in ",+":
        raise ValueError(f"not a DN: {dn!r} (text after a quoted value at position {pos})")
    return _normalize_value(raw, dn), pos


def _normalize_value(raw: bytearray, dn: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"not a DN: {dn!r} (escaped bytes are not UTF-8)") from None
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip(" ")
    return _escape(text)


_NEEDS_ESCAPE: Final = re.compile(r'[\\,+";<>=]|^#')


def _escape(value: str) -> str:
    if value.isprintable() and _NEEDS_ESCAPE.search(value) is None:
        return value  # the common case, without a loop over every character
    out = []
    for index, char in enumerate(value):
        if char in _SPECIALS or (index == 0 and char == "#"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping of a value written into a filter, e.g. a DN in ``(member=...)``.

    Every value dirsync writes into a filter goes through here, so that a name like
    ``*)(objectClass=*`` matches itself and cannot widen the search.
    """
    out = []
    for char in value:
        if char in "\\*()\x00":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)
