"""One LDAP connection on a plain socket: connect, TLS, bind, send requests, read answers.

dirsync's own transport (RFC 4511 over TCP, RFC 4513 StartTLS): requests are encoded by
``messages``, answers decoded by ``wire`` straight from the socket, TLS is an
``ssl.SSLContext`` from ``tls``. Every wait on the server is bounded by ``timeout``, and the
whole conversation by an optional ``deadline`` (monotonic): each wait is cut to the time left,
so a server trickling a byte at a time is stopped at the deadline, not after it. What
goes wrong raises one of the ``TransportError`` kinds below, which the session translates
into dirsync's errors with the organization and the endpoint; nothing here knows either.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dirsync.connectors.ldap import messages
from dirsync.connectors.ldap.messages import Control, Deref, Scope
from dirsync.connectors.ldap.result_codes import SUCCESS
from dirsync.connectors.ldap.wire import MAX_MESSAGE, UNSOLICITED_ID, MessageBuffer, WireError

_CHUNK = 256 * 1024


class TransportError(Exception):
    """Something between us and the directory went wrong; the message is one line."""


class ConnectFailed(TransportError):
    """No connection: refused, unreachable, a name that does not resolve, a timeout."""


class TlsFailed(TransportError):
    """The TLS handshake failed (certificate, protocol); carries the ``ssl`` error."""

    def __init__(self, error: ssl.SSLError) -> None:
        super().__init__(str(error))
        self.error = error


class StartTlsRefused(TransportError):
    """The server answered the StartTLS request with an error."""


class ConnectionBroken(TransportError):
    """The connection broke, closed, or sent what we cannot decode."""


class NoAnswer(ConnectionBroken):
    """The server sent nothing within the timeout."""


class DeadlineExceeded(TransportError):
    """The connection's ``deadline`` passed before the answer was complete."""


@dataclass(slots=True)
class Answer:
    """Every response to one request, in order, and its final result."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    #: the (lower-cased) attribute names of every entry received on this connection
    attribute_names: frozenset[str] = frozenset()

    @property
    def controls(self) -> dict[str, bytes | None]:
        controls: dict[str, bytes | None] = self.result.get("controls") or {}
        return controls


class Connection:
    """A connected (and maybe encrypted) socket to one directory server."""

    def __init__(
        self, sock: socket.socket, *, max_message: int = MAX_MESSAGE, deadline: float | None = None
    ) -> None:
        self.sock = sock
        #: ``time.monotonic()`` after which no wait on the server starts or goes on
        self.deadline = deadline
        self._timeout = sock.gettimeout()
        #: messages decoded on this connection (how far a read got when it is cut off)
        self.received = 0
        self._ids = itertools.count(1)
        self._buffer = MessageBuffer(max_message)
        #: messages read while waiting for another request's answer, by message id
        self._early: dict[int, list[dict[str, Any]]] = {}
        #: requests abandoned before their answer was read: what still comes for them is dropped
        self._abandoned: set[int] = set()
        self.encrypted = isinstance(sock, ssl.SSLSocket)

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        max_message: int = MAX_MESSAGE,
        deadline: float | None = None,
    ) -> Connection:
        """Connect to ``host:port``; with ``tls``, complete an LDAPS handshake first."""
        wait = timeout if deadline is None else min(timeout, _left(deadline))
        try:
            sock = socket.create_connection((host, port), timeout=wait)
        except OSError as exc:
            if deadline is not None and _left(deadline) <= 0:
                raise DeadlineExceeded("the deadline passed while connecting") from exc
            raise ConnectFailed(_os_reason(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = _handshake(sock, tls, host, deadline)
        sock.settimeout(timeout)
        return cls(sock, max_message=max_message, deadline=deadline)

    def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        """RFC 4513 § 3: ask for TLS on this connection, then handshake as for LDAPS."""
        result = self.call(messages.extended(messages.START_TLS_OID))
        if result.get("result") != SUCCESS:
            raise StartTlsRefused(
                f"{result.get('description')} ({result.get('result')})"
                + (f": {result['message']}" if result.get("message") else "")
            )
        self.sock = _handshake(self.sock, context, host, self.deadline)
        self.encrypted = True

    def bind(self, name: str, password: bytes) -> dict[str, Any]:
        """A simple bind; its result (the caller decides what a refusal means)."""
        return self.call(messages.simple_bind(name, password))

    def call(self, operation: bytes, controls: Sequence[Control] = ()) -> dict[str, Any]:
        """Send a request that is answered by one result, and return that result."""
        return self.receive(self.send(operation, controls)).result

    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        controls: Sequence[Control] = (),
        scope: Scope = Scope.SUBTREE,
        deref: Deref = Deref.ALWAYS,
    ) -> Answer:
        """One search: every response up to its searchResDone. Raises ``FilterError`` for a
        filter that is not RFC 4515 (before anything is sent)."""
        return self.receive(
            self.send_search(
                base, search_filter, attributes, controls=controls, scope=scope, deref=deref
            )
        )

    def send_search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        controls: Sequence[Control] = (),
        scope: Scope = Scope.SUBTREE,
        deref: Deref = Deref.ALWAYS,
    ) -> int:
        """``search``'s first half: send it, return its message id for ``receive`` (so the
        server can work on the next page while the caller converts this one)."""
        request = messages.search(base, search_filter, attributes, scope=scope, deref=deref)
        return self.send(request, controls)

    def send(self, operation: bytes, controls: Sequence[Control] = ()) -> int:
        message_id = next(self._ids)
        if self.deadline is not None:
            self._bound_wait()
        try:
            self.sock.sendall(messages.message(message_id, operation, controls))
        except OSError as exc:
            raise ConnectionBroken(f"sending failed: {_os_reason(exc)}") from exc
        return message_id

    def receive(self, message_id: int) -> Answer:
        """Every response to ``message_id`` up to its final result; answers to other
        requests that arrive meanwhile are kept for their own ``receive``."""
        answer = Answer()
        for response in self._early.pop(message_id, ()):
            if self._add(answer, response):
                return answer
        while True:
            if self.deadline is not None:
                self._bound_wait()
            try:
                chunk = self.sock.recv(_CHUNK)
            except TimeoutError as exc:
                if self.deadline is not None and _left(self.deadline) <= 0:
                    raise DeadlineExceeded("the deadline passed while waiting") from exc
                raise NoAnswer("no answer within the timeout") from exc
            except OSError as exc:
                raise ConnectionBroken(f"receiving failed: {_os_reason(exc)}") from exc
            if not chunk:
                raise ConnectionBroken("the server closed the connection")
            try:
                decoded = self._buffer.feed(chunk)
            except WireError as exc:
                raise ConnectionBroken(f"undecodable response: {exc}") from exc
            self.received += len(decoded)
            done = False
            for got_id, response in decoded:
                if got_id == UNSOLICITED_ID:
                    text = response.get("message") or "notice of disconnection"
                    raise ConnectionBroken(f"the server ended the session: {text}")
                if got_id in self._abandoned:
                    if "result" in response:
                        self._abandoned.discard(got_id)
                elif got_id != message_id:
                    self._early.setdefault(got_id, []).append(response)
                elif not done:
                    done = self._add(answer, response)
                else:  # cannot happen: nothing follows a final result
                    raise ConnectionBroken("a response followed its request's final result")
            if done:
                answer.attribute_names = frozenset(self._buffer.names.values())
                return answer

    def _bound_wait(self) -> None:
        """Refuse to wait past the deadline; cut the next wait to the time left."""
        assert self.deadline is not None
        left = _left(self.deadline)
        if left <= 0:
            raise DeadlineExceeded("the deadline passed")
        if self._timeout is None or left < self._timeout:
            self.sock.settimeout(left)
            self._timeout = left

    @staticmethod
    def _add(answer: Answer, response: dict[str, Any]) -> bool:
        """Add one response; True when it was the final result."""
        if "result" in response:
            answer.result = response
            return True
        answer.responses.append(response)
        return False

    def abandon(self, message_id: int) -> None:
        """Tell the server to stop working on a request; what it already sent for it (it may
        have finished) is dropped as it arrives."""
        early = self._early.pop(message_id, [])
        if not any("result" in response for response in early):
            self._abandoned.add(message_id)
        self.send(messages.abandon(message_id))

    def close(self) -> None:
        """Unbind (best effort: the connection may be gone) and close the socket."""
        with contextlib.suppress(OSError, TransportError):
            self.send(messages.unbind())
        with contextlib.suppress(OSError):
            self.sock.close()


def _handshake(
    sock: socket.socket, context: ssl.SSLContext, host: str, deadline: float | None
) -> ssl.SSLSocket:
    """``_wrap``, and a handshake cut off by the deadline (not by the timeout) says so."""
    try:
        wrapped = _wrap(sock, context, host)
    except ConnectionBroken as exc:
        if deadline is not None and _left(deadline) <= 0:
            raise DeadlineExceeded("the deadline passed during the TLS handshake") from exc
        raise
    if deadline is not None and _left(deadline) <= 0:
        wrapped.close()
        raise DeadlineExceeded("the deadline passed during the TLS handshake")
    return wrapped


def _wrap(sock: socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """The TLS handshake; ``server_hostname`` is what OpenSSL checks the certificate
    against (an IP address string is matched against the IP-address SANs)."""
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLError as exc:
        sock.close()
        raise TlsFailed(exc) from exc
    except OSError as exc:  # a timeout or a reset during the handshake
        sock.close()
        raise ConnectionBroken(f"the TLS handshake broke off: {_os_reason(exc)}") from exc


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve ({exc.strerror})"
    return exc.strerror or str(exc) or type(exc).__name__
