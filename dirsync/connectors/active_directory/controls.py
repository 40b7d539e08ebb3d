"""Active Directory LDAP controls, BER-encoded by hand: pure functions, no I/O.

The flags are a 32-bit two's-complement INTEGER: an encoder that turns
``LDAP_DIRSYNC_INCREMENTAL_VALUES`` (0x80000000) into a 5-byte positive INTEGER (as pyasn1 did
for ldap3) gets ``unavailableCriticalExtension`` from Windows AD. So the request value is built
here, byte by byte (MS-ADTS 3.1.1.3.4.1.3):

    DirSyncRequestValue  ::= SEQUENCE { Flags INTEGER, MaxBytes INTEGER, Cookie OCTET STRING }
    DirSyncResponseValue ::= SEQUENCE { MoreResults INTEGER, unused INTEGER,
                                        CookieServer OCTET STRING }
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from dirsync.connectors.ldap import ber
from dirsync.connectors.ldap.messages import Control
from dirsync.connectors.ldap.wire import WireError, decode_paged_cookie, encode_paged_control

DIRSYNC_OID: Final = "1.2.840.113556.1.4.841"
PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
SHOW_DELETED_OID: Final = "1.2.840.113556.1.4.417"
TREE_DELETE_OID: Final = "1.2.840.113556.1.4.805"
#: LDAP_MATCHING_RULE_IN_CHAIN, for filters like (memberOf:1.2.840.113556.1.4.1941:=<dn>)
IN_CHAIN_RULE: Final = "1.2.840.113556.1.4.1941"

DIRSYNC_OBJECT_SECURITY: Final = 0x00000001
DIRSYNC_ANCESTORS_FIRST_ORDER: Final = 0x00000800
DIRSYNC_PUBLIC_DATA_ONLY: Final = 0x00002000
DIRSYNC_INCREMENTAL_VALUES: Final = 0x80000000

__all__ = ["Control"]


def as_int32(flags: int) -> int:
    """Flags as the signed 32-bit integer AD expects (0x80000000 → -2147483648)."""
    flags &= 0xFFFFFFFF
    return flags - (1 << 32) if flags & 0x80000000 else flags


def dirsync_request_value(*, flags: int, max_bytes: int, cookie: bytes) -> bytes:
    return ber.sequence(
        ber.integer(as_int32(flags)), ber.integer(max_bytes), ber.octet_string(cookie)
    )


def dirsync_control(*, flags: int, max_bytes: int, cookie: bytes) -> Control:
    """The DirSync request control (critical: without it the answer would be a plain search)."""
    return (
        DIRSYNC_OID,
        True,
        dirsync_request_value(flags=flags, max_bytes=max_bytes, cookie=cookie),
    )


def paged_results_control(*, size: int, cookie: bytes) -> Control:
    """RFC 2696: ``SEQUENCE { size INTEGER, cookie OCTET STRING }``."""
    return (PAGED_RESULTS_OID, False, encode_paged_control(size, cookie))


def paged_results_cookie(controls: dict[str, bytes | None] | None) -> bytes:
    """The next page's cookie out of a result's controls (empty: the last page)."""
    try:
        return decode_paged_cookie((controls or {}).get(PAGED_RESULTS_OID))
    except WireError as exc:
        raise BerError(str(exc)) from exc


def show_deleted_control() -> Control:
    return (SHOW_DELETED_OID, True, None)


def tree_delete_control() -> Control:
    return (TREE_DELETE_OID, True, None)


class BerError(ValueError):
    """A control value that is not the BER it should be."""


def _read_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, body, next offset) of the element at ``offset``."""
    try:
        tag = data[offset]
        first = data[offset + 1]
        offset += 2
        if first & 0x80:
            count = first & 0x7F
            if count == 0 or count > 4:
                raise BerError("unsupported BER length")
            size = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        else:
            size = first
    except IndexError:
        raise BerError("truncated BER element") from None
    end = offset + size
    if end > len(data):
        raise BerError("truncated BER element")
    return tag, data[offset:end], end


@dataclass(frozen=True, slots=True, kw_only=True)
class DirSyncResponse:
    more_results: bool
    cookie: bytes


def decode_dirsync_response(value: bytes) -> DirSyncResponse:
    tag, body, _ = _read_tlv(value, 0)
    if tag != ber.SEQUENCE:
        raise BerError("the DirSync response is not a SEQUENCE")
    items = []
    offset = 0
    while offset < len(body):
        item_tag, item, offset = _read_tlv(body, offset)
        items.append((item_tag, item))
    if [t for t, _ in items] != [ber.INTEGER, ber.INTEGER, ber.OCTET_STRING]:
        raise BerError("the DirSync response is not (INTEGER, INTEGER, OCTET STRING)")
    more = int.from_bytes(items[0][1], "big", signed=True)
    return DirSyncResponse(more_results=more != 0, cookie=items[2][1])


def dirsync_response(controls: dict[str, bytes | None] | None) -> DirSyncResponse | None:
    """The DirSync response control out of a result's controls (None: the DC sent none)."""
    controls = controls or {}
    if DIRSYNC_OID not in controls:
        return None
    return decode_dirsync_response(controls[DIRSYNC_OID] or b"")


#: one DirSync round: the cookie to send → (entries, response control or None)
DirSyncRound = Callable[[bytes], tuple[list[Any], DirSyncResponse | None]]


def dirsync_rounds(
    search: DirSyncRound, cookie: bytes, *, max_rounds: int = 100_000
) -> Iterator[tuple[list[Any], bytes]]:
    """Run DirSync rounds until the server stops setting MoreResults.

    Yields each round's entries with the cookie that follows them; the last cookie is where
    the next incremental read starts. A round without the response control cannot say where
    to go on, so it raises (a silently stalled cookie would repeat or lose changes).
    """
    for _ in range(max_rounds):
        entries, response = search(cookie)
        if response is None:
            raise BerError("the server answered a DirSync search without a DirSync control")
        cookie = response.cookie or cookie
        yield entries, cookie
        if not response.more_results:
            return
    raise BerError(f"DirSync still had more results after {max_rounds} rounds")
