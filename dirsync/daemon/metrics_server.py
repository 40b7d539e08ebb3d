"""The HTTP side of ``[daemon] metrics_listen``: ``/metrics`` (Prometheus) and ``/healthz``.

``/healthz`` answers 200 ``ok`` while the daemon is healthy (the scheduler runs and no run
exceeds ``run_budget``: what keeps the systemd watchdog fed) and 503 with the reasons when it is
not, or before the daemon first looked; a load balancer or a blackbox probe reads the status
code alone. ``/metrics`` (and ``/``) is prometheus-client's exposition of the daemon's registry.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from dirsync.daemon.metrics import Metrics
from dirsync.errors import DirsyncError

StartResponse = Callable[..., Any]


class MetricsError(DirsyncError):
    """The metrics endpoint cannot listen, e.g. the port is taken (exit 1: systemd retries)."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def application(metrics: Metrics) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/healthz":
            problems = metrics.problems
            if problems is None:
                status, body = "503 Service Unavailable", "starting\n"
            elif problems:
                status, body = "503 Service Unavailable", "unhealthy: " + "; ".join(problems)
                body += "\n"
            else:
                status, body = "200 OK", "ok\n"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body.encode()]
        if path in ("/metrics", "/"):
            return exposition(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics or /healthz\n"]

    return app


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsServer:
    host: str
    port: int
    server: WSGIServer
    thread: Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(metrics: Metrics, listen: str) -> MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    server_class = _Server6 if ":" in host else _Server
    try:
        server = make_server(
            host, int(port), application(metrics), server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise MetricsError(
            f"cannot serve metrics on {listen} ([daemon] metrics_listen): {exc.strerror}"
        ) from exc
    thread = Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(host=host, port=server.server_address[1], server=server, thread=thread)
