"""The LDAP requests dirsync sends (RFC 4511), encoded as BER LDAPMessages; pure.

A read needs few: a simple bind, StartTLS (an extended request), a search with request
controls, abandon and unbind. Responses are decoded by ``wire``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

from dirsync.connectors.ldap import ber
from dirsync.connectors.ldap.filters import encode_filter

#: protocolOp tags, [APPLICATION n]
BIND_REQUEST: Final = 0x60
UNBIND_REQUEST: Final = 0x42
SEARCH_REQUEST: Final = 0x63
ABANDON_REQUEST: Final = 0x50
EXTENDED_REQUEST: Final = 0x77
_CONTROLS: Final = 0xA0
_SIMPLE_AUTH: Final = 0x80
_EXTENDED_NAME: Final = 0x80
_EXTENDED_VALUE: Final = 0x81

START_TLS_OID: Final = "1.3.6.1.4.1.1466.20037"
#: the attribute list that asks for no attributes at all (RFC 4511 § 4.5.1.8)
NO_ATTRIBUTES: Final = "1.1"

#: a request control: (OID, criticality, BER value or None)
Control = tuple[str, bool, bytes | None]


class Scope(enum.IntEnum):
    BASE = 0
    ONE_LEVEL = 1
    SUBTREE = 2


class Deref(enum.IntEnum):
    NEVER = 0
    IN_SEARCHING = 1
    FINDING_BASE = 2
    ALWAYS = 3


def message(message_id: int, operation: bytes, controls: Sequence[Control] = ()) -> bytes:
    """LDAPMessage: SEQUENCE { messageID, protocolOp, controls [0] OPTIONAL }."""
    parts = [ber.integer(message_id), operation]
    if controls:
        parts.append(ber.tlv(_CONTROLS, b"".join(_control(c) for c in controls)))
    return ber.sequence(*parts)


def _control(control: Control) -> bytes:
    oid, critical, value = control
    parts = [ber.octet_string(oid.encode("ascii"))]
    if critical:  # DEFAULT FALSE: absent when false
        parts.append(ber.tlv(ber.BOOLEAN, b"\xff"))
    if value is not None:
        parts.append(ber.octet_string(value))
    return ber.sequence(*parts)


def simple_bind(name: str, password: bytes) -> bytes:
    """BindRequest, version 3, simple authentication (empty name and password: anonymous)."""
    return ber.tlv(
        BIND_REQUEST,
        ber.integer(3) + ber.octet_string(name.encode("utf-8")) + ber.tlv(_SIMPLE_AUTH, password),
    )


def unbind() -> bytes:
    return bytes([UNBIND_REQUEST, 0])


def abandon(message_id: int) -> bytes:
    """AbandonRequest: the message id as a primitive [APPLICATION 16] INTEGER."""
    return bytes([ABANDON_REQUEST]) + ber.integer(message_id)[1:]


def extended(oid: str, value: bytes | None = None) -> bytes:
    body = ber.tlv(_EXTENDED_NAME, oid.encode("ascii"))
    if value is not None:
        body += ber.tlv(_EXTENDED_VALUE, value)
    return ber.tlv(EXTENDED_REQUEST, body)


def search(
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    scope: Scope = Scope.SUBTREE,
    deref: Deref = Deref.ALWAYS,
) -> bytes:
    """SearchRequest without size or time limit; no attributes asked for means none sent
    back (``1.1``), not all. Raises ``FilterError`` for a filter that is not RFC 4515."""
    names = list(attributes) or [NO_ATTRIBUTES]
    return ber.tlv(
        SEARCH_REQUEST,
        ber.octet_string(base.encode("utf-8"))
        + ber.tlv(ber.ENUMERATED, bytes([scope]))
        + ber.tlv(ber.ENUMERATED, bytes([deref]))
        + ber.integer(0)  # sizeLimit: the server's own
        + ber.integer(0)  # timeLimit: the server's own; ours is the socket's
        + ber.tlv(ber.BOOLEAN, b"\x00")  # typesOnly
        + encode_filter(search_filter)
        + ber.sequence(*(ber.octet_string(name.encode("utf-8")) for name in names)),
    )
