"""``[daemon] scim_listen``: the SCIM endpoint served over HTTPS by uvicorn, in a thread.

The socket is bound here, before uvicorn starts, so that a taken port or an unreadable
certificate is a clear one-line error at start-up (systemd then retries) rather than a thread
that quietly died. uvicorn's own logging and access log are off: ``dirsync.scim.app`` logs one
line per request through structlog, without the token.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from dirsync.errors import DirsyncError

#: how long start-up waits for uvicorn to accept connections (seconds)
STARTUP_TIMEOUT = 15.0


class ScimServerError(DirsyncError):
    """The SCIM endpoint cannot listen (port taken, certificate or key unusable): exit 1."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScimServer:
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def close(self) -> None:
        """Stop accepting, let requests in progress finish, and wait (briefly) for that."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it each response (headers, then body: two TLS records) waits ~40 ms for the
    # client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ScimServerError(
            f"cannot serve SCIM on {listen} ([daemon] scim_listen): {exc.strerror}"
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve(app: ASGIApp, listen: str, *, cert_file: Path, key_file: Path) -> ScimServer:
    """Serve ``app`` over HTTPS on ``host:port`` (port 0: any free port) until ``close``."""
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    try:
        config.load()  # the TLS context: a bad certificate or key fails here, in this thread
    except (OSError, ssl.SSLError) as exc:
        raise ScimServerError(
            f"cannot use scim_cert_file {cert_file} and scim_key_file {key_file}: "
            f"{getattr(exc, 'strerror', None) or exc.__class__.__name__}"
        ) from exc
    sock = _bind(listen)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="scim")
    thread.daemon = True
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise ScimServerError(f"the SCIM endpoint on {listen} stopped as it started")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise ScimServerError(f"the SCIM endpoint on {listen} did not start in time")
        time.sleep(0.02)
    address = sock.getsockname()
    return ScimServer(host=address[0], port=address[1], server=server, thread=thread)
