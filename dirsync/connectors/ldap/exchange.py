"""One search over a bound ldap3 connection, its responses read with our own decoder.

Part of the ldap3 seam (``session.py`` calls it and translates what it raises): ldap3
encodes and sends the request (filter parsing, controls), then we read the answer from the
connection's socket with ``wire`` instead of ldap3's decoder, which spends most of a
large read formatting values we never look at. Only for connections without a SASL security
layer (simple or anonymous binds, with or without TLS): a SASL layer wraps every message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.results import RESULT_CODES
from ldap3.operation.search import search_operation

from dirsync.connectors.ldap.wire import UNSOLICITED_ID, MessageBuffer, WireError

_CHUNK = 256 * 1024

#: a request control: (OID, criticality, BER value or None)
Control = tuple[str, bool, bytes | None]


class ExchangeError(RuntimeError):
    """The connection broke, closed, or sent something we could not decode."""


@dataclass(slots=True)
class SearchAnswer:
    """Every response to one search request, in order, and its final result."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    #: the (lower-cased) attribute names of every entry received
    attribute_names: frozenset[str] = frozenset()

    @property
    def controls(self) -> dict[str, bytes | None]:
        controls: dict[str, bytes | None] = self.result.get("controls") or {}
        return controls


def supported(conn: Any) -> bool:
    """Whether this connection's messages are plain BER on the socket (no SASL layer)."""
    return conn.authentication in (ldap3.SIMPLE, ldap3.ANONYMOUS) and conn.socket is not None


def search(
    conn: Any,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    controls: Sequence[Control] = (),
    scope: str = ldap3.SUBTREE,
    deref: str = ldap3.DEREF_ALWAYS,
) -> SearchAnswer:
    """Send one search and read every response up to its searchResDone.

    ldap3's filter errors (``LDAPInvalidFilterError``) propagate for the caller to translate;
    everything that goes wrong on the wire raises ``ExchangeError``. (syncprov refuses any
    ``deref`` but ``DEREF_NEVER`` with a Sync Request control.)
    """
    message_id = send(
        conn, base, search_filter, attributes, controls=controls, scope=scope, deref=deref
    )
    return receive(conn, message_id)


def send(
    conn: Any,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    controls: Sequence[Control] = (),
    scope: str = ldap3.SUBTREE,
    deref: str = ldap3.DEREF_ALWAYS,
) -> int:
    """``search``'s first half: send the request, return its message id for ``receive``
    (so a caller can have the server work on one page while it converts the last)."""
    request = search_operation(
        base,
        search_filter,
        scope,
        deref,  # default: ldap3's own, so both readers see the same entries
        list(attributes) or [ldap3.NO_ATTRIBUTES],
        0,
        0,
        False,
        conn.auto_escape,
        conn.auto_encode,
        None,
        None,
        check_names=False,
    )
    message_id: int = conn.strategy.send("searchRequest", request, list(controls) or None)
    return message_id


def receive(conn: Any, message_id: int) -> SearchAnswer:
    """``search``'s second half: every response to ``message_id`` up to its searchResDone;
    answers to other (abandoned) requests are skipped."""
    try:
        return _receive(conn.socket, message_id)
    finally:
        conn.strategy._outstanding.pop(message_id, None)  # we read its answer, not ldap3


def _receive(sock: Any, message_id: int) -> SearchAnswer:
    answer = SearchAnswer()
    buffer = MessageBuffer()
    while True:
        try:
            chunk = sock.recv(_CHUNK)
        except OSError as exc:
            raise ExchangeError(f"receiving failed: {exc}") from exc
        if not chunk:
            raise ExchangeError("the server closed the connection")
        try:
            messages = buffer.feed(chunk)
        except (WireError, IndexError) as exc:
            raise ExchangeError(f"undecodable response: {exc}") from exc
        for got_id, response in messages:
            if got_id == UNSOLICITED_ID:
                message = response.get("message") or "notice of disconnection"
                raise ExchangeError(f"the server ended the session: {message}")
            if got_id != message_id:
                continue  # an answer to an abandoned earlier request
            if response["type"] == "searchResDone":
                code = response["result"]
                response["description"] = RESULT_CODES.get(code, "unknown")
                answer.result = response
                answer.attribute_names = frozenset(buffer.names.values())
                return answer
            answer.responses.append(response)
