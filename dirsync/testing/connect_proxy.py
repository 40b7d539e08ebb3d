"""A minimal HTTP CONNECT proxy on 127.0.0.1 for tests: it records every tunnel it opens.

Only CONNECT to loopback is served (TLS stays end to end between client and server), so a
test can prove that a client really goes through the configured proxy.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
from types import TracebackType

HOST = "127.0.0.1"


class _Tunnel(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        proxy: ConnectProxy = self.server.proxy  # type: ignore[attr-defined]
        request = self.rfile.readline(65537).decode("latin-1").split()
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # the request's headers: not needed
        if len(request) < 2 or request[0] != "CONNECT" or not request[1].startswith(HOST + ":"):
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        port = int(request[1].rsplit(":", 1)[1])
        try:
            upstream = socket.create_connection((HOST, port), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with proxy.lock:
            proxy.tunnels.append(request[1])
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        _pipe(self.connection, upstream)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    with upstream, selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]  # sockets only
                if not data:
                    return
                key.data.sendall(data)


class ConnectProxy:
    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.lock = threading.Lock()
        server = socketserver.ThreadingTCPServer((HOST, 0), _Tunnel)
        server.daemon_threads = True
        server.proxy = self  # type: ignore[attr-defined]  # the handler finds its proxy here
        self._server = server
        self.url = f"http://{HOST}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
