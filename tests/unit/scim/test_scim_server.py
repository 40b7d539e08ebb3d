"""The SCIM endpoint's listening socket: connections accepted from it send without Nagle's delay.

A response goes out as two TLS records (headers, then body); with Nagle's algorithm on, the
second waits for the client's delayed ACK, ~40 ms for every request. asyncio turns it off
(TCP_NODELAY) on the connections it accepts, but only from a socket that says it is TCP.
"""

from __future__ import annotations

import asyncio
import socket

from dirsync.scim.server import _bind


def test_connections_accepted_on_the_endpoints_socket_have_tcp_nodelay() -> None:
    listening = _bind("127.0.0.1:0")
    port = listening.getsockname()[1]
    seen: list[int] = []

    async def accept_one() -> None:
        accepted = asyncio.Event()

        class Record(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
                accepted.set()

        server = await asyncio.get_running_loop().create_server(Record, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.wait_for(accepted.wait(), timeout=10)
            writer.close()

    asyncio.run(accept_one())
    assert len(seen) == 1 and seen[0] != 0
