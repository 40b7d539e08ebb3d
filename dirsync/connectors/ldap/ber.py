"""BER encoding of the few ASN.1 values that LDAP control values need, in DER's shortest forms.

Shared by the paged-results, DirSync and syncrepl request controls; their tests check bytes.
"""

from __future__ import annotations

from typing import Final

BOOLEAN: Final = 0x01
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
ENUMERATED: Final = 0x0A
SEQUENCE: Final = 0x30


def length(size: int) -> bytes:
    """A definite length: short form below 128, else long form."""
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + length(len(body)) + body


def integer(value: int) -> bytes:
    """The shortest two's-complement encoding, as DER demands."""
    size = 1
    while not -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
        size += 1
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))
