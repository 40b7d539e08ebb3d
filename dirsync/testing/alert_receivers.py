"""Where alerts go in tests: an HTTPS webhook receiver and an SMTP server, both on loopback.

``AlertReceivers`` starts both with one test CA (trustme; its PEM at ``ca_file``):

- ``webhook_url``: HTTPS; records each POST's headers and JSON body in ``posts``; answers 204,
  or ``webhook_status`` when a test sets it (e.g. 503 to see a delivery fail);
- ``smtp_url`` (``smtp+starttls://``): a small SMTP server speaking RFC 5321 (EHLO/HELO,
  STARTTLS with the test certificate, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT);
  each delivered message is parsed into ``mails`` (``email.message.EmailMessage``). A message
  sent before STARTTLS is refused (530), as a submission server would.
"""

from __future__ import annotations

import json
import socketserver
import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        receivers: AlertReceivers = self.server.receivers
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with receivers.lock:
            receivers.posts.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            status = receivers.webhook_status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``posts``."""


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: Any

    def handle(self) -> None:
        receivers: AlertReceivers = self.server.receivers
        self.secure = False
        self._reset()
        self._reply("220 dirsync-test ESMTP")
        while line := self.rfile.readline(1000):
            verb, _, argument = line.decode("ascii", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                extensions = [] if self.secure else ["STARTTLS"]
                if verb == "EHLO":
                    lines = ["dirsync-test", *extensions]
                    for extension in lines[:-1]:
                        self._reply(f"250-{extension}")
                    self._reply(f"250 {lines[-1]}")
                else:
                    self._reply("250 dirsync-test")
            elif verb == "STARTTLS" and not self.secure:
                self._reply("220 go ahead")
                self.connection = receivers.smtp_context.wrap_socket(
                    self.connection, server_side=True
                )
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb", buffering=0)
                self.secure = True
                self._reset()
            elif verb == "MAIL":
                if not self.secure:
                    self._reply("530 must issue a STARTTLS command first")
                    continue
                self.sender = argument.partition(":")[2].strip().strip("<>")
                self._reply("250 ok")
            elif verb == "RCPT":
                self.recipients.append(argument.partition(":")[2].strip().strip("<>"))
                self._reply("250 ok")
            elif verb == "DATA":
                if not (self.sender and self.recipients):
                    self._reply("503 bad sequence of commands")
                    continue
                self._reply("354 end data with <CR><LF>.<CR><LF>")
                data = self._data(self.rfile)
                message = message_from_bytes(data, policy=policy.default)
                with receivers.lock:
                    receivers.mails.append(message)
                    receivers.envelopes.append((self.sender, list(self.recipients)))
                self._reset()
                self._reply("250 ok: queued")
            elif verb == "RSET":
                self._reset()
                self._reply("250 ok")
            elif verb == "NOOP":
                self._reply("250 ok")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 command not implemented")

    def finish(self) -> None:
        super().finish()
        # after STARTTLS the connection is the TLS socket; the server closes only the plain one
        # it accepted (whose descriptor the TLS socket took over)
        if self.connection is not self.request:
            self.connection.close()

    def _reset(self) -> None:
        self.sender = ""
        self.recipients: list[str] = []

    def _reply(self, text: str) -> None:
        self.wfile.write(text.encode("ascii") + b"\r\n")

    @staticmethod
    def _data(stream: Any) -> bytes:
        lines = []
        while (line := stream.readline()) and line.rstrip(b"\r\n") != b".":
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class AlertReceivers:
    def __init__(self) -> None:
        import trustme  # a test extra

        self._dir = TemporaryDirectory(prefix="dirsync-alerts-")
        ca = trustme.CA()
        self.ca_file = Path(self._dir.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        certificate = ca.issue_cert(HOST, "localhost")
        self.lock = threading.Lock()
        self.posts: list[dict[str, Any]] = []
        self.webhook_status = 204
        self.mails: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

        web = ThreadingHTTPServer((HOST, 0), _WebhookHandler)
        web.daemon_threads = True
        web_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(web_context)
        web.socket = web_context.wrap_socket(web.socket, server_side=True)
        web.receivers = self  # type: ignore[attr-defined]  # the handler finds us here
        self.webhook_url = f"https://{HOST}:{web.server_address[1]}/hooks/dirsync"

        self.smtp_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self.smtp_context)
        smtp = _SmtpServer((HOST, 0), _SmtpHandler)
        smtp.receivers = self  # type: ignore[attr-defined]
        self.smtp_url = f"smtp+starttls://{HOST}:{smtp.server_address[1]}"
        self._servers: list[socketserver.BaseServer] = [web, smtp]
        self._threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in self._servers
        ]

    def __enter__(self) -> AlertReceivers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._dir.cleanup()

    def received(self) -> tuple[list[dict[str, Any]], list[EmailMessage]]:
        """The webhook bodies and the mails so far."""
        with self.lock:
            return [p["json"] for p in self.posts], list(self.mails)
