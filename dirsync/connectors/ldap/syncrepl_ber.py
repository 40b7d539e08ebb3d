"""The BER of RFC 4533 (LDAP Content Synchronization): the controls and messages we exchange.

Pure bytes in, values out. We build the Sync Request control value ourselves and
parse the Sync State and Sync Done controls and the Sync Info intermediate message, so their
bytes are ours to test (a library's BER encoder has surprised us before: see the DirSync trap
in the design notes).

    syncRequestValue ::= SEQUENCE { mode ENUMERATED, cookie OCTET STRING OPTIONAL,
                                    reloadHint BOOLEAN DEFAULT FALSE }
    syncStateValue   ::= SEQUENCE { state ENUMERATED, entryUUID OCTET STRING,
                                    cookie OCTET STRING OPTIONAL }
    syncDoneValue    ::= SEQUENCE { cookie OCTET STRING OPTIONAL,
                                    refreshDeletes BOOLEAN DEFAULT FALSE }
    syncInfoValue    ::= CHOICE { newcookie [0], refreshDelete [1], refreshPresent [2],
                                  syncIdSet [3] }
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Final

from dirsync.connectors.ldap import ber

SYNC_REQUEST_OID: Final = "1.3.6.1.4.1.4203.1.9.1.1"
SYNC_STATE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.2"
SYNC_DONE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.3"
SYNC_INFO_OID: Final = "1.3.6.1.4.1.4203.1.9.1.4"
#: the result code of a search whose cookie the server can no longer serve incrementally
E_SYNC_REFRESH_REQUIRED: Final = 4096

_SET: Final = 0x31


class BerError(ValueError):
    """Bytes that are not the structure RFC 4533 says they are."""


class SyncMode(enum.IntEnum):
    REFRESH_ONLY = 1
    REFRESH_AND_PERSIST = 3


class SyncStateKind(enum.IntEnum):
    PRESENT = 0
    ADD = 1
    MODIFY = 2
    DELETE = 3


class SyncInfoKind(enum.IntEnum):
    NEW_COOKIE = 0
    REFRESH_DELETE = 1
    REFRESH_PRESENT = 2
    SYNC_ID_SET = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncState:
    state: SyncStateKind
    entry_uuid: bytes
    cookie: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDone:
    cookie: bytes | None = None
    refresh_deletes: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncInfo:
    kind: SyncInfoKind
    cookie: bytes | None = None
    refresh_done: bool = True
    #: for a syncIdSet: True = the UUIDs are deleted entries, False = present ones
    refresh_deletes: bool = False
    uuids: tuple[bytes, ...] = ()


# -- encoding --------------------------------------------------------------------------------


def encode_sync_request(
    mode: SyncMode = SyncMode.REFRESH_ONLY,
    cookie: bytes | None = None,
    *,
    reload_hint: bool = False,
) -> bytes:
    """The Sync Request control value; the DEFAULT reloadHint FALSE is left out (DER)."""
    body = ber.tlv(ber.ENUMERATED, bytes([int(mode)]))
    if cookie is not None:
        body += ber.octet_string(cookie)
    if reload_hint:
        body += ber.tlv(ber.BOOLEAN, b"\xff")
    return ber.tlv(ber.SEQUENCE, body)


# -- decoding --------------------------------------------------------------------------------


class _Reader:
    """Consumes TLVs from a bytes value."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)

    def peek_tag(self) -> int | None:
        return None if self.done else self.data[self.pos]

    def read(self, expected: int | None = None) -> tuple[int, bytes]:
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise BerError("truncated: a tag and a length were expected")
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first & 0x80:
            count = first & 0x7F
            if count == 0 or count > 4:
                raise BerError(f"unsupported length form 0x{first:02x}")
            if pos + count > len(data):
                raise BerError("truncated length")
            size = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        else:
            size = first
        if pos + size > len(data):
            raise BerError(f"truncated: 0x{tag:02x} claims {size} bytes, {len(data) - pos} remain")
        if expected is not None and tag != expected:
            raise BerError(f"expected tag 0x{expected:02x}, found 0x{tag:02x}")
        self.pos = pos + size
        return tag, data[pos : pos + size]

    def optional(self, tag: int) -> bytes | None:
        return self.read(tag)[1] if self.peek_tag() == tag else None

    def boolean(self, default: bool) -> bool:
        value = self.optional(ber.BOOLEAN)
        if value is None:
            return default
        if len(value) != 1:
            raise BerError("a BOOLEAN is one byte")
        return value != b"\x00"

    def finish(self) -> None:
        if not self.done:
            raise BerError(f"{len(self.data) - self.pos} unexpected trailing bytes")


def _sequence(data: bytes, tag: int = ber.SEQUENCE) -> _Reader:
    outer = _Reader(data)
    _, body = outer.read(tag)
    outer.finish()
    return _Reader(body)


def _enumerated(reader: _Reader) -> int:
    value = reader.read(ber.ENUMERATED)[1]
    if not value or len(value) > 4:
        raise BerError("bad ENUMERATED length")
    return int.from_bytes(value, "big", signed=True)


def decode_sync_state(data: bytes) -> SyncState:
    reader = _sequence(data)
    try:
        state = SyncStateKind(_enumerated(reader))
    except ValueError as exc:
        raise BerError(f"unknown sync state: {exc}") from None
    entry_uuid = reader.read(ber.OCTET_STRING)[1]
    cookie = reader.optional(ber.OCTET_STRING)
    reader.finish()
    return SyncState(state=state, entry_uuid=entry_uuid, cookie=cookie)


def decode_sync_done(data: bytes) -> SyncDone:
    reader = _sequence(data)
    cookie = reader.optional(ber.OCTET_STRING)
    refresh_deletes = reader.boolean(False)
    reader.finish()
    return SyncDone(cookie=cookie, refresh_deletes=refresh_deletes)


def decode_sync_info(data: bytes) -> SyncInfo:
    outer = _Reader(data)
    tag, body = outer.read()
    outer.finish()
    if tag == 0x80:  # [0] IMPLICIT OCTET STRING
        return SyncInfo(kind=SyncInfoKind.NEW_COOKIE, cookie=body)
    if tag in (0xA1, 0xA2):
        reader = _Reader(body)
        cookie = reader.optional(ber.OCTET_STRING)
        refresh_done = reader.boolean(True)
        reader.finish()
        kind = SyncInfoKind.REFRESH_DELETE if tag == 0xA1 else SyncInfoKind.REFRESH_PRESENT
        return SyncInfo(kind=kind, cookie=cookie, refresh_done=refresh_done)
    if tag == 0xA3:
        reader = _Reader(body)
        cookie = reader.optional(ber.OCTET_STRING)
        refresh_deletes = reader.boolean(False)
        uuids = _Reader(reader.read(_SET)[1])
        reader.finish()
        ids = []
        while not uuids.done:
            ids.append(uuids.read(ber.OCTET_STRING)[1])
        return SyncInfo(
            kind=SyncInfoKind.SYNC_ID_SET,
            cookie=cookie,
            refresh_deletes=refresh_deletes,
            uuids=tuple(ids),
        )
    raise BerError(f"unknown syncInfoValue choice 0x{tag:02x}")


def uuid_text(value: bytes) -> str:
    """A syncUUID (16 bytes) in entryUUID's text form: lower-case 8-4-4-4-12."""
    if len(value) != 16:
        raise BerError(f"a syncUUID is 16 bytes, not {len(value)}")
    return str(uuid.UUID(bytes=value))
