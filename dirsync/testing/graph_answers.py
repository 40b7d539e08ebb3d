"""Answers of the local Graph: JSON bodies, Graph and AAD errors, and injected faults."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

#: how long a "hang" fault keeps the client waiting (clients in tests time out sooner)
HANG_SECONDS = 3.0
#: the longest a hostile answer ("trickle", "oversized", "endless") goes on if the client never
#: gives up (a test that fails still ends)
HOSTILE_SECONDS = 120.0

#: writes one answer to the client
Answer = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Fault:
    """What the next matching request gets instead of its answer."""

    status: int = 429
    retry_after: str | None = None
    code: str = "TooManyRequests"
    #: "status" | "truncate" | "malformed" | "no_value" | "hang", or hostile: "trickle" (a
    #: 200 whose body comes one byte every ``interval`` seconds), "oversized" (a 200 announcing
    #: 1 GiB, then zeros), "endless" (a 200 without a length, zeros until the client hangs up)
    kind: str = "status"
    path: str = ""  # a substring of the path (and query) it applies to; "" = any Graph request
    times: int = 1
    interval: float = 0.3
    #: bytes of body a hostile answer sent before the client gave up
    sent: int = 0


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_answer(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(data).encode()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def faulty(fault: Fault) -> tuple[int, Answer]:
    if fault.kind == "status":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return fault.status, json_answer(fault.status, error(fault.code, "injected"), headers)
    if fault.kind == "hang":  # answers only after the client has given up
        return 200, _hang
    if fault.kind in ("trickle", "oversized", "endless"):
        return 200, lambda handler: _hostile(handler, fault)
    if fault.kind == "no_value":
        return 200, json_answer(200, {"@odata.context": "x"})
    if fault.kind == "malformed":
        body = b'{"value": [{"id": "a"'

        def malformed(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        return 200, malformed

    def truncated(
        handler: BaseHTTPRequestHandler,
    ) -> None:  # promises more bytes than it sends, then hangs up
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b'{"value": [{"id": "a"}, ')
        handler.close_connection = True

    return 200, truncated


def _hang(handler: BaseHTTPRequestHandler) -> None:
    threading.Event().wait(HANG_SECONDS)  # an Event, not time.sleep: immune to frozen time
    handler.close_connection = True


def _hostile(handler: BaseHTTPRequestHandler, fault: Fault) -> None:
    """A 200 that never ends well: its body trickles, or is far larger than any page."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    if fault.kind == "trickle":
        body = json.dumps({"value": [{"id": str(i)} for i in range(10_000)]}).encode()
        handler.send_header("Content-Length", str(len(body)))
    elif fault.kind == "oversized":
        handler.send_header("Content-Length", str(1 << 30))
    else:
        handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    stop = threading.Event()  # an Event, not time.sleep: immune to frozen time
    zeros = bytes(64 * 1024)
    try:
        if fault.kind == "trickle":
            for byte in body:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                fault.sent += 1
                if stop.wait(fault.interval) or fault.sent * fault.interval > HOSTILE_SECONDS:
                    return
        else:
            while fault.sent < (1 << 30):
                handler.wfile.write(zeros)
                fault.sent += len(zeros)
    except OSError:  # the client hung up: what it was meant to do
        return
