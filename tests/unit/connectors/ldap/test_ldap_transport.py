"""The LDAP requests we send, byte by byte, and the connection against a scripted server on
loopback: what a broken, closing or oversized answer becomes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from freezegun import freeze_time

from dirsync.connectors.ldap import ber, messages, wire
from dirsync.connectors.ldap.client import (
    ConnectFailed,
    Connection,
    ConnectionBroken,
    DeadlineExceeded,
    NoAnswer,
)
from dirsync.connectors.ldap.messages import Deref, Scope


def test_a_simple_bind_is_version_3_with_the_name_and_password() -> None:
    request = messages.message(1, messages.simple_bind("cn=r,dc=x", b"pw"))
    assert request == bytes.fromhex(
        "3017 020101 6012 020103 0409 636e3d722c64633d78 8002 7077".replace(" ", "")
    )


def test_a_search_asks_for_no_attributes_with_1_1_and_sends_controls() -> None:
    paged = ("1.2.840.113556.1.4.319", True, wire.encode_paged_control(500, None))
    request = messages.message(
        3,
        messages.search("dc=x", "(uid=a)", [], scope=Scope.BASE, deref=Deref.NEVER),
        [paged],
    )
    op = (
        ber.octet_string(b"dc=x")
        + bytes.fromhex("0a0100 0a0100 020100 020100 010100".replace(" ", ""))
        + ber.tlv(0xA3, ber.octet_string(b"uid") + ber.octet_string(b"a"))
        + ber.sequence(ber.octet_string(b"1.1"))
    )
    control = ber.sequence(
        ber.octet_string(b"1.2.840.113556.1.4.319"),
        b"\x01\x01\xff",
        ber.octet_string(bytes.fromhex("3006020201f40400")),
    )
    assert request == ber.sequence(ber.integer(3), ber.tlv(0x63, op), ber.tlv(0xA0, control))


def test_unbind_abandon_and_start_tls_requests() -> None:
    assert messages.unbind() == b"\x42\x00"
    assert messages.abandon(300) == b"\x50\x02\x01\x2c"
    assert (
        messages.extended(messages.START_TLS_OID) == b"\x77\x18\x80\x16" + b"1.3.6.1.4.1.1466.20037"
    )


def test_a_message_announced_over_the_limit_is_refused_before_it_is_read() -> None:
    buffer = wire.MessageBuffer(max_message=1024)
    with pytest.raises(wire.WireError, match="1,073,741,824 bytes; the limit is 1,024"):
        buffer.feed(b"\x30\x84\x40\x00\x00\x00\x02\x01\x01")


def test_a_message_in_many_chunks_is_decoded_once_complete() -> None:
    entry = ber.tlv(
        wire.SEARCH_RESULT_ENTRY,
        ber.octet_string(b"cn=x")
        + ber.sequence(
            ber.sequence(ber.octet_string(b"cn"), ber.tlv(0x31, ber.octet_string(b"v" * 5000)))
        ),
    )
    data = messages.message(9, entry)
    buffer = wire.MessageBuffer()
    got = []
    for i in range(0, len(data), 100):
        got += buffer.feed(data[i : i + 100])
        if i + 100 < len(data):
            assert got == [] and buffer.pending == i + 100
    [(message_id, decoded)] = got
    assert message_id == 9 and decoded["raw_attributes"]["cn"] == [b"v" * 5000]
    assert buffer.pending == 0


def _done(message_id: int, code: int = 0) -> bytes:
    result = ber.tlv(ber.ENUMERATED, bytes([code])) + ber.octet_string(b"") + ber.octet_string(b"")
    return messages.message(message_id, ber.tlv(wire.SEARCH_RESULT_DONE, result))


Script = Callable[[socket.socket], None]


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], Connection]]:
    """A one-connection server on loopback that runs ``script`` on what it accepts."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    connections: list[Connection] = []

    def start(script: Script) -> Connection:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            peer, _ = listener.accept()
            with peer:
                script(peer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        conn = Connection.open("127.0.0.1", listener.getsockname()[1], timeout=2)
        connections.append(conn)
        return conn

    yield start
    for conn in connections:
        conn.close()
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(5)


def _read_request(peer: socket.socket) -> bytes:
    return peer.recv(65536)


def test_a_server_that_closes_mid_answer_is_a_broken_connection(
    scripted: Callable[[Script], Connection],
) -> None:
    def script(peer: socket.socket) -> None:
        _read_request(peer)
        peer.sendall(_done(1)[:5])

    conn = scripted(script)
    with pytest.raises(ConnectionBroken, match="closed the connection"):
        conn.search("dc=x", "(objectClass=*)", [])


def test_a_notice_of_disconnection_ends_the_session(
    scripted: Callable[[Script], Connection],
) -> None:
    notice = (
        ber.tlv(ber.ENUMERATED, b"\x34")
        + ber.octet_string(b"")
        + ber.octet_string(b"shutting down")
    )

    def script(peer: socket.socket) -> None:
        _read_request(peer)
        peer.sendall(messages.message(0, ber.tlv(wire.EXTENDED_RESPONSE, notice)))

    conn = scripted(script)
    with pytest.raises(ConnectionBroken, match="ended the session: shutting down"):
        conn.search("dc=x", "(objectClass=*)", [])


def test_an_oversized_answer_is_refused_without_reading_it(
    scripted: Callable[[Script], Connection],
) -> None:
    def script(peer: socket.socket) -> None:
        _read_request(peer)
        peer.sendall(b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01" + b"\x00" * 4096)

    conn = scripted(script)
    with pytest.raises(ConnectionBroken, match="the limit is"):
        conn.search("dc=x", "(objectClass=*)", [])


def test_a_silent_server_is_no_answer_within_the_timeout(
    scripted: Callable[[Script], Connection],
) -> None:
    done = threading.Event()

    def script(peer: socket.socket) -> None:
        _read_request(peer)
        done.wait(5)

    conn = scripted(script)
    try:
        with pytest.raises(NoAnswer):
            conn.search("dc=x", "(objectClass=*)", [])
    finally:
        done.set()


def test_a_trickling_server_is_stopped_at_the_deadline_not_after(
    scripted: Callable[[Script], Connection],
) -> None:
    """Each byte comes well within the timeout; only the deadline for the whole read ends it.
    The server's clock is the test's: every byte it sends moves the frozen clock 1 s on."""
    answer = _done(1) * 1000
    sent: list[int] = []

    with freeze_time("2026-03-02 09:00:00") as clock:

        def script(peer: socket.socket) -> None:
            _read_request(peer)
            for byte in answer:
                try:
                    peer.sendall(bytes([byte]))
                except OSError:
                    return
                sent.append(byte)
                clock.tick(1)
                time.sleep(0.005)  # real time: one byte per recv

        conn = scripted(script)
        conn.deadline = time.monotonic() + 5
        with pytest.raises(DeadlineExceeded):
            conn.search("dc=x", "(objectClass=*)", [])
    assert 4 <= len(sent) <= 8  # about five bytes in five (frozen) seconds, not all of them


def test_a_silent_server_past_the_deadline_is_the_deadline_not_the_timeout(
    scripted: Callable[[Script], Connection],
) -> None:
    done = threading.Event()

    def script(peer: socket.socket) -> None:
        _read_request(peer)
        done.wait(5)

    conn = scripted(script)  # timeout=2: the wait is cut to the deadline's 0.2 s
    conn.deadline = time.monotonic() + 0.2
    try:
        with pytest.raises(DeadlineExceeded):
            conn.search("dc=x", "(objectClass=*)", [])
    finally:
        done.set()


def test_nothing_is_sent_once_the_deadline_has_passed(
    scripted: Callable[[Script], Connection],
) -> None:
    received: list[bytes] = []
    served = threading.Event()

    def script(peer: socket.socket) -> None:
        while data := _read_request(peer):
            received.append(data)
        served.set()

    conn = scripted(script)
    conn.deadline = time.monotonic() - 1
    with pytest.raises(DeadlineExceeded):
        conn.search("dc=x", "(objectClass=*)", [])
    conn.close()
    assert served.wait(5)
    assert not any(b"dc=x" in r for r in received)


def test_the_late_answer_to_an_abandoned_request_is_dropped(
    scripted: Callable[[Script], Connection],
) -> None:
    def script(peer: socket.socket) -> None:
        received = b""
        while b"dc=y" not in received:  # search 1, abandon 1 (id 2), search 3
            received += _read_request(peer)
        # the answer to 1 arrives after all, then the one to the next search
        peer.sendall(_done(1) + _done(3, code=32))

    conn = scripted(script)
    first = conn.send_search("dc=x", "(objectClass=*)", [])
    conn.abandon(first)
    answer = conn.search("dc=y", "(objectClass=*)", [])
    assert answer.result["result"] == 32 and answer.result["description"] == "noSuchObject"


def test_a_closed_port_cannot_be_reached() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed, match="refused"):
        Connection.open("127.0.0.1", port, timeout=2)
