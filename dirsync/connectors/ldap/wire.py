"""A fast decoder for the LDAP messages dirsync receives (RFC 4511), straight from socket bytes.

Decoding is most of a large read's time (a general decoder builds nested objects and formatted
values for every entry: most of a sync's time at 100,000 entries). A search needs far less:
the DN, the raw values by attribute name, the controls, and the result. This module is pure
(no sockets): ``MessageBuffer`` takes bytes as they arrive and yields decoded messages as plain
dicts (``type``, ``raw_dn``, ``dn``, ``raw_attributes``, ``controls``...; results with
``result``, ``description``, ``message``).

Anything malformed raises ``WireError``; the caller treats it as a read that broke off.
"""

from __future__ import annotations

from typing import Any, Final

from dirsync.connectors.ldap import ber
from dirsync.connectors.ldap.result_codes import describe

#: protocolOp tags: [APPLICATION n], constructed (0x60 | n)
SEARCH_RESULT_ENTRY: Final = 0x64
SEARCH_RESULT_DONE: Final = 0x65
SEARCH_RESULT_REFERENCE: Final = 0x73
EXTENDED_RESPONSE: Final = 0x78
INTERMEDIATE_RESPONSE: Final = 0x79
CONTROLS: Final = 0xA0
#: the responses that are an LDAPResult and nothing more (or a little more: a bind's SASL
#: credentials, an extended response's name and value), by protocolOp tag
RESULT_OPS: Final = {
    0x61: "bindResponse",
    SEARCH_RESULT_DONE: "searchResDone",
    0x67: "modifyResponse",
    0x69: "addResponse",
    0x6B: "delResponse",
    0x6D: "modDNResponse",
    EXTENDED_RESPONSE: "extendedResp",
}
#: the largest LDAPMessage a buffer accepts: far above any real entry or page we ask for
#: (a group of a million 60-byte member DNs is 60 MB), far below what would exhaust memory
MAX_MESSAGE: Final = 256 * 1024 * 1024
#: a notice of disconnection is an extendedResponse with message id 0
UNSOLICITED_ID: Final = 0


class WireError(ValueError):
    """Bytes that are not a well-formed LDAP message."""


class Attributes(dict[str, list[bytes]]):
    """Raw values by attribute name; names are kept lower-case and looked up in any case
    (LDAP attribute descriptions are case-insensitive)."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> list[bytes]:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def __setitem__(self, key: str, values: list[bytes]) -> None:
        # a caller's own name (``email_attribute = "userPrincipalName"``) is found again by get
        dict.__setitem__(self, key.lower(), values)


def _length(data: bytes, pos: int) -> tuple[int, int]:
    """The length at ``pos`` and the position of the value after it."""
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise WireError(f"unsupported BER length form 0x{first:02x}")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _integer(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def _tlv(data: bytes, pos: int, expected: int | None = None) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at ``pos``."""
    tag = data[pos]
    if expected is not None and tag != expected:
        raise WireError(f"expected tag 0x{expected:02x}, found 0x{tag:02x}")
    size, start = _length(data, pos + 1)
    return tag, start, start + size


def decode_entry(
    data: bytes, pos: int, end: int, names: dict[bytes, str] | None = None
) -> dict[str, Any]:
    """A SearchResultEntry's body: objectName, then the attributes (the hot path).

    ``names`` remembers each attribute description's lower-cased text (a page repeats the
    same few names on every entry); ``MessageBuffer`` passes one per buffer.
    """
    if data[pos] != 0x04:
        raise WireError("an entry must start with its DN")
    size = data[pos + 1]
    if size < 0x80:
        pos += 2
    else:
        size, pos = _length(data, pos + 1)
    raw_dn = data[pos : pos + size]
    pos += size
    if data[pos] != 0x30:
        raise WireError("an entry's attributes must be a SEQUENCE")
    size = data[pos + 1]
    if size < 0x80:
        pos += 2
    elif size == 0x81:  # the usual form for a user's attributes
        size = data[pos + 2]
        pos += 3
    else:
        size, pos = _length(data, pos + 1)
    attributes = Attributes()
    # dict's own methods: Attributes overrides get/__contains__ to lower-case their argument
    setdefault = attributes.setdefault
    if names is None:
        names = {}
    name_of = names.get
    list_end = pos + size
    length = _length
    # lengths inline where short (the hot loop of a big read); long forms via _length
    while pos < list_end:
        size = data[pos + 1]  # PartialAttribute: SEQUENCE
        if size < 0x80:
            pos += 2
        else:
            size, pos = length(data, pos + 1)
        attribute_end = pos + size
        size = data[pos + 1]  # the attribute description: OCTET STRING
        if size < 0x80:
            pos += 2
        else:
            size, pos = length(data, pos + 1)
        raw_name = data[pos : pos + size]
        name = name_of(raw_name)
        if name is None:
            name = names[raw_name] = raw_name.decode("utf-8", "replace").lower()
        pos += size
        size = data[pos + 1]  # vals: SET OF OCTET STRING
        if size < 0x80:
            pos += 2
        else:
            size, pos = length(data, pos + 1)
        values_end = pos + size
        size = values_end - pos - 2
        if 0 <= size < 0x80 and data[pos + 1] == size:
            # one short value (most attributes): no loop
            values = [data[pos + 2 : values_end]]
            pos = values_end
        else:
            values = []
            append = values.append
            while pos < values_end:
                size = data[pos + 1]
                if size < 0x80:
                    pos += 2
                else:
                    size, pos = length(data, pos + 1)
                append(data[pos : pos + size])
                pos += size
        if pos != attribute_end:
            raise WireError("an attribute's values overrun it")
        # a name sent twice gets its values appended to the first list
        first = setdefault(name, values)
        if first is not values:
            first += values
    if pos != list_end or list_end > end:
        raise WireError("an entry's attributes overrun it")
    return {
        "type": "searchResEntry",
        "raw_dn": raw_dn,
        "dn": raw_dn.decode("utf-8", "replace"),
        "raw_attributes": attributes,
    }


def decode_result(data: bytes, pos: int, end: int) -> dict[str, Any]:
    """An LDAPResult (searchResDone, extendedResponse...): code, matched DN, message."""
    _, start, stop = _tlv(data, pos, 0x0A)
    code = _integer(data[start:stop])
    _, start, pos = _tlv(data, stop, 0x04)
    matched = data[start:pos].decode("utf-8", "replace")
    _, start, stop = _tlv(data, pos, 0x04)
    message = data[start:stop].decode("utf-8", "replace")
    result: dict[str, Any] = {
        "result": code,
        "description": describe(code),
        "dn": matched,
        "message": message,
    }
    pos = stop
    while pos < end:
        tag, start, stop = _tlv(data, pos)
        if tag == 0xA3:  # referral [3]: URIs
            result["referrals"] = _strings(data, start, stop)
        elif tag == 0x8A:  # extendedResponse responseName [10]
            result["responseName"] = data[start:stop].decode("ascii", "replace")
        elif tag == 0x8B:  # extendedResponse responseValue [11]
            result["responseValue"] = data[start:stop]
        pos = stop
    return result


def _strings(data: bytes, pos: int, end: int) -> list[str]:
    values = []
    while pos < end:
        _, start, pos = _tlv(data, pos)
        values.append(data[start:pos].decode("utf-8", "replace"))
    return values


def decode_controls(data: bytes, pos: int, end: int) -> dict[str, bytes | None]:
    """Controls by OID, each with its raw value (criticality does not matter in a response)."""
    controls: dict[str, bytes | None] = {}
    while pos < end:
        _, start, pos = _tlv(data, pos, 0x30)
        _, oid_start, cursor = _tlv(data, start, 0x04)
        oid = data[oid_start:cursor].decode("ascii", "replace")
        value = None
        while cursor < pos:
            tag, value_start, value_end = _tlv(data, cursor)
            if tag == 0x04:
                value = data[value_start:value_end]
            cursor = value_end
        controls[oid] = value
    return controls


def decode_message(
    data: bytes, pos: int, end: int, names: dict[bytes, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """One LDAPMessage between ``pos`` and ``end``: (message id, response dict)."""
    size = data[pos + 1]
    if data[pos] == 0x02 and size < 0x80:  # lengths inline where short (once per entry)
        start = pos + 2
        pos = start + size
        message_id = int.from_bytes(data[start:pos], "big", signed=True)
    else:
        _, start, pos = _tlv(data, pos, 0x02)
        message_id = _integer(data[start:pos])
    op, size = data[pos], data[pos + 1]
    if size < 0x80:
        start = pos + 2
        stop = start + size
    elif size == 0x81:
        start = pos + 3
        stop = start + data[pos + 2]
    else:
        op, start, stop = _tlv(data, pos)
    if op == SEARCH_RESULT_ENTRY:
        # on its own copy: positions within an entry are mostly small ints, which Python
        # keeps ready-made, where positions within a 256 KiB chunk are allocated per step
        response = decode_entry(data[start:stop], 0, stop - start, names)
    elif op in RESULT_OPS:
        response = decode_result(data, start, stop)
        response["type"] = RESULT_OPS[op]
    elif op == SEARCH_RESULT_REFERENCE:
        response = {"type": "searchResRef", "uri": _strings(data, start, stop)}
    elif op == INTERMEDIATE_RESPONSE:
        response = {"type": "intermediateResponse", "name": None, "value": None}
        cursor = start
        while cursor < stop:
            tag, value_start, cursor = _tlv(data, cursor)
            if tag == 0x80:
                response["name"] = data[value_start:cursor].decode("ascii", "replace")
            elif tag == 0x81:
                response["value"] = data[value_start:cursor]
    else:
        raise WireError(f"unexpected protocolOp 0x{op:02x}")
    if stop < end and data[stop] == CONTROLS:
        _, start, control_end = _tlv(data, stop)
        response["controls"] = decode_controls(data, start, control_end)
    return message_id, response


class MessageBuffer:
    """Bytes in, complete messages out; keeps a partial message for the next ``feed``.

    A message that spans many chunks is joined once, when its last byte has arrived (so a
    large message costs linear time, not a copy per chunk); one announced larger than
    ``max_message`` is refused before it is read.
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._chunks: list[bytes] = []
        self._pending = 0
        #: bytes the partial message at the head needs before it can be decoded (0: unknown)
        self._needed = 0
        #: attribute description as sent → its lower-cased text, for every entry fed so far
        self.names: dict[bytes, str] = {}

    def feed(self, chunk: bytes) -> list[tuple[int, dict[str, Any]]]:
        if self._needed and self._pending + len(chunk) < self._needed:
            self._chunks.append(chunk)
            self._pending += len(chunk)
            return []
        if self._chunks:
            self._chunks.append(chunk)
            data = b"".join(self._chunks)
        else:
            data = chunk
        messages = []
        pos, total = 0, len(data)
        self._needed = 0
        while total - pos >= 2:
            if data[pos] != 0x30:
                raise WireError(f"an LDAPMessage starts with 0x30, not 0x{data[pos]:02x}")
            first = data[pos + 1]
            if first < 0x80:
                size, start = first, pos + 2
            elif total - pos < 2 + (first & 0x7F):
                break  # the length itself is still incomplete
            elif first == 0x81:
                size, start = data[pos + 2], pos + 3
            else:
                size, start = _length(data, pos + 1)
                if size > self.max_message:
                    raise WireError(
                        f"the server announced a message of {size:,} bytes; "
                        f"the limit is {self.max_message:,}"
                    )
            end = start + size
            if end > total:
                self._needed = end - pos
                break
            try:
                messages.append(decode_message(data, start, end, self.names))
            except IndexError as exc:
                # the hot loop indexes without bounds checks; a length that points past the
                # message lands here: a damaged message, not a bug
                raise WireError("a length inside an LDAPMessage overruns it") from exc
            pos = end
        rest = data[pos:] if pos < total else b""
        self._chunks = [rest] if rest else []
        self._pending = len(rest)
        return messages

    @property
    def pending(self) -> int:
        return self._pending


def encode_paged_control(size: int, cookie: bytes | None) -> bytes:
    """RFC 2696 realSearchControlValue: SEQUENCE { size INTEGER, cookie OCTET STRING }."""
    return ber.sequence(ber.integer(size), ber.octet_string(cookie or b""))


def decode_paged_cookie(value: bytes | None) -> bytes:
    """The cookie of a paged-results response control (empty: the last page)."""
    if not value:
        return b""
    try:
        _, start, end = _tlv(value, 0, 0x30)
        _, _, pos = _tlv(value, start, 0x02)
        _, start, stop = _tlv(value, pos, 0x04)
    except IndexError as exc:
        raise WireError("the paged-results control value is cut short") from exc
    if stop > end or stop > len(value):
        raise WireError("the paged-results cookie overruns its control")
    return value[start:stop]
