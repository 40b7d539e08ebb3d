"""A TCP proxy on loopback that breaks a connection on purpose, for fault-injection tests.

It forwards bytes between a client and a real server until the server has sent ``after``
bytes on one connection, then either resets the client's connection (``mode="reset"``, an RST
in the middle of a response) or stops forwarding and holds the connection open in silence
(``mode="stall"``, which only the client's timeout can end), or turns hostile: the rest
trickles one byte every ``interval`` seconds (``mode="trickle"``: every single wait is short,
only a deadline for the whole read can end it), or an LDAPMessage announcing 1 GiB follows,
then zeros for as long as the client reads (``mode="oversized"``). ``after=None`` never breaks.
``cut()`` is a network cut on demand: every open connection is reset, on both sides, and new
ones are reset as they arrive, until ``restore()``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Literal

Mode = Literal["reset", "stall", "trickle", "oversized"]
#: an LDAPMessage (SEQUENCE) whose 4-byte long-form length announces 1 GiB
ONE_GIB_MESSAGE = b"\x30\x84\x40\x00\x00\x00"


class FaultProxy:
    def __init__(
        self,
        target_port: int,
        *,
        after: int | None = None,
        mode: Mode = "reset",
        interval: float = 0.5,
    ) -> None:
        self.target = ("127.0.0.1", target_port)
        self.after = after
        self.mode = mode
        self.interval = interval
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        #: connections broken so far
        self.broken = 0
        #: bytes sent in the hostile modes (what a client read before it gave up)
        self.hostile_bytes = 0
        #: bytes forwarded from the server as they came, on every connection
        self.forwarded = 0
        self._cut = threading.Event()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop, and end every connection: a client held in silence sees it closed."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    # a close alone waits for the pipe thread blocked in recv on it
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Reset every connection (client and server side) and refuse new ones."""
        self._cut.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        self._cut.clear()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _reset(client)
                continue
            server = self._track(socket.create_connection(self.target))
            self._track(client)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = source.recv(4096)
                if not data:
                    break
                if from_server and self.after is not None and sent + len(data) > self.after:
                    sink.sendall(data[: self.after - sent])
                    self._break(sink, data[self.after - sent :], source)
                    return
                sink.sendall(data)
                sent += len(data)
                if from_server:
                    self.forwarded += len(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _break(self, client: socket.socket, rest: bytes, server: socket.socket) -> None:
        self.broken += 1
        if self.mode == "trickle":
            self._trickle(client, rest, server)
        elif self.mode == "oversized":
            client.sendall(ONE_GIB_MESSAGE)
            zeros = bytes(64 * 1024)
            while not self._stop.is_set():
                client.sendall(zeros)  # an OSError once the client closes ends the pipe
                self.hostile_bytes += len(zeros)
        elif self.mode == "reset":
            _reset(client)
        else:
            self._stop.wait()  # hold the connection open, silent, until the proxy closes

    def _trickle(self, client: socket.socket, rest: bytes, server: socket.socket) -> None:
        """The server's bytes from here on, one at a time, ``interval`` seconds apart."""
        while not self._stop.is_set():
            for byte in rest:
                if self._stop.wait(self.interval):
                    return
                client.sendall(bytes([byte]))
                self.hostile_bytes += 1
            rest = server.recv(4096)
            if not rest:
                return


def _reset(sock: socket.socket) -> None:
    """Close with an RST: SO_LINGER with a zero timeout turns close() into one."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in [*accepted, listener]:
            sock.close()
