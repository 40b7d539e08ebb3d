"""LDAP search filters (RFC 4515 text) encoded as the BER ``Filter`` of RFC 4511 § 4.5.1.

Pure: text in, bytes out. A filter that is not RFC 4515 raises ``FilterError`` naming the
position, which the session turns into a config error for the key that holds it. Values
are UTF-8 with ``\\XX`` escapes (``dn.escape_filter_value`` writes them); whitespace
between the parts of an ``&``/``|`` list is tolerated (filters written over several lines).
"""

from __future__ import annotations

from typing import Final

from dirsync.connectors.ldap import ber

AND: Final = 0xA0
OR: Final = 0xA1
NOT: Final = 0xA2
EQUALITY: Final = 0xA3
SUBSTRINGS: Final = 0xA4
GREATER_OR_EQUAL: Final = 0xA5
LESS_OR_EQUAL: Final = 0xA6
PRESENT: Final = 0x87
APPROX: Final = 0xA8
EXTENSIBLE: Final = 0xA9
#: SubstringFilter's choices, context-specific primitive
_INITIAL, _ANY, _FINAL = 0x80, 0x81, 0x82
#: MatchingRuleAssertion's fields
_RULE, _TYPE, _VALUE, _DN_ATTRIBUTES = 0x81, 0x82, 0x83, 0x84

_OPERATORS: Final = {"~=": APPROX, ">=": GREATER_OR_EQUAL, "<=": LESS_OR_EQUAL}
_HEX: Final = frozenset("0123456789abcdefABCDEF")


class FilterError(ValueError):
    """Text that is not an RFC 4515 search filter."""


def encode_filter(text: str) -> bytes:
    """The BER encoding of one filter; the whole text must be that filter."""
    parser = _Parser(text.strip())
    encoded = parser.filter()
    if parser.pos != len(parser.text):
        raise parser.error("text after the end of the filter")
    return encoded


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> FilterError:
        return FilterError(f"{what} at position {self.pos + 1}")

    def expect(self, char: str) -> None:
        if self.text[self.pos : self.pos + 1] != char:
            found = self.text[self.pos : self.pos + 1] or "the end"
            raise self.error(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def filter(self) -> bytes:
        self.expect("(")
        kind = self.text[self.pos : self.pos + 1]
        if kind in ("&", "|"):
            self.pos += 1
            items = self.filter_list()
            encoded = ber.tlv(AND if kind == "&" else OR, b"".join(items))
        elif kind == "!":
            self.pos += 1
            self.skip_spaces()
            encoded = ber.tlv(NOT, self.filter())
            self.skip_spaces()
        else:
            encoded = self.item()
        self.expect(")")
        return encoded

    def filter_list(self) -> list[bytes]:
        items = []
        self.skip_spaces()
        while self.text[self.pos : self.pos + 1] == "(":
            items.append(self.filter())
            self.skip_spaces()
        if not items:
            raise self.error("an empty '&' or '|' list")
        return items

    def skip_spaces(self) -> None:
        while self.text[self.pos : self.pos + 1].isspace():
            self.pos += 1

    def item(self) -> bytes:
        end = self.text.find(")", self.pos)
        if end < 0:
            raise self.error("no ')' closes this filter")
        body = self.text[self.pos : end]
        start = self.pos
        self.pos = end
        if 0 <= body.find(":=") == body.find("=") - 1:
            return self.extensible(body, start)
        equals = body.find("=")
        if equals <= 0:
            self.pos = start
            raise self.error(f"{body!r} is not 'attribute=value'")
        attribute, value = body[:equals], body[equals + 1 :]
        operator = EQUALITY
        if attribute[-1] in "~><":
            operator = _OPERATORS.get(attribute[-1] + "=", EQUALITY)
            attribute = attribute[:-1]
        name = ber.octet_string(self.oid_or_name(attribute, start))
        if operator != EQUALITY:
            return ber.tlv(operator, name + ber.octet_string(self.value(value, start)))
        if value == "*":
            return ber.tlv(PRESENT, self.oid_or_name(attribute, start))
        if "*" in value:
            return self.substrings(name, value, start)
        return ber.tlv(EQUALITY, name + ber.octet_string(self.value(value, start)))

    def substrings(self, name: bytes, value: str, start: int) -> bytes:
        parts = value.split("*")
        encoded = []
        if parts[0]:
            encoded.append(ber.tlv(_INITIAL, self.value(parts[0], start)))
        for middle in parts[1:-1]:
            if middle:
                encoded.append(ber.tlv(_ANY, self.value(middle, start)))
        if parts[-1]:
            encoded.append(ber.tlv(_FINAL, self.value(parts[-1], start)))
        return ber.tlv(SUBSTRINGS, name + ber.sequence(*encoded))

    def extensible(self, body: str, start: int) -> bytes:
        left, value = body.split(":=", 1)
        pieces = left.split(":")
        attribute, options = pieces[0], pieces[1:]
        dn_attributes = False
        if options and options[0].lower() == "dn":
            dn_attributes = True
            options = options[1:]
        if len(options) > 1 or (not attribute and not options):
            self.pos = start
            raise self.error(f"{body!r} is not an extensible match")
        fields = b""
        if options:
            fields += ber.tlv(_RULE, self.oid_or_name(options[0], start))
        if attribute:
            fields += ber.tlv(_TYPE, self.oid_or_name(attribute, start))
        fields += ber.tlv(_VALUE, self.value(value, start))
        if dn_attributes:
            fields += ber.tlv(_DN_ATTRIBUTES, b"\xff")
        return ber.tlv(EXTENSIBLE, fields)

    def oid_or_name(self, text: str, start: int) -> bytes:
        """An attribute description or matching rule (name or OID, with options)."""
        if not text or not all(c.isascii() and (c.isalnum() or c in "-.;_") for c in text):
            self.pos = start
            raise self.error(f"{text!r} is not an attribute name")
        return text.encode("ascii")

    def value(self, text: str, start: int) -> bytes:
        """An assertion value: UTF-8, each ``\\XX`` the byte XX; a bare ``(`` or ``*`` is an
        error (the caller has split on ``*`` where it means substrings)."""
        if "(" in text or "*" in text:
            self.pos = start
            raise self.error(f"{text!r} has an unescaped '(' or '*'; write \\28 or \\2a")
        if "\\" not in text:
            return text.encode("utf-8")
        out = bytearray()
        i = 0
        while i < len(text):
            char = text[i]
            if char != "\\":
                out += char.encode("utf-8")
                i += 1
                continue
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                self.pos = start
                raise self.error(f"{text!r} has a '\\' not followed by two hex digits")
            out.append(int(pair, 16))
            i += 3
        return bytes(out)
