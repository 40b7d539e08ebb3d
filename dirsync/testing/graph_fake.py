"""A local Microsoft Graph and Entra ID token endpoint, over real HTTPS on 127.0.0.1.

    with GraphFake() as graph:
        tenant = graph.add_tenant("contoso")
        graph.add_app("contoso", "app-1", secret="s3cret")
        tenant.add_user(display_name="Ann", mail="ann@contoso.example")
        ... point a connector at graph.url with ca_file=graph.ca_file ...

It serves the tenant's OpenID configuration and token endpoint (client secrets, and certificate
assertions whose signature is checked with the registered certificate's key), ``/v1.0/users``,
``/v1.0/groups``, ``/v1.0/groups/{id}/members`` and both delta endpoints with opaque skip and
delta tokens, cutting answers into pages as each tenant's ``Paging`` says. Faults are injected
with ``fail()`` and delta tokens expired with ``expire_delta_tokens()``. Every request is
recorded in ``requests``; one to a route the fake does not serve lands in ``unexpected`` (a
test fixture fails the test on it, e.g. for msal's instance discovery).
"""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from dirsync.testing.graph_answers import Fault, error, faulty, json_answer
from dirsync.testing.graph_auth_fake import TokenDesk
from dirsync.testing.graph_tenant import App, Tenant, paginate, slice_members

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    at: float
    status: int
    tenant: str | None


@dataclass
class _Pending:
    pages: list[list[dict[str, Any]]]
    base: str
    final: dict[str, Any] = field(default_factory=dict)


__all__ = ["Fault", "GraphFake", "Recorded"]


class GraphFake:
    def __init__(self) -> None:
        self._dir = TemporaryDirectory(prefix="dirsync-graph-")
        self._ca = trustme.CA()
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self.tenants: dict[str, Tenant] = {}
        self.requests: list[Recorded] = []
        self.unexpected: list[str] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._pending: dict[str, _Pending] = {}
        self._delta_tokens: dict[str, tuple[str, str, int, str]] = {}
        self._expired: dict[str, str] = {}
        server = ThreadingHTTPServer((HOST, 0), _Handler)
        server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(HOST, "localhost").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.fake = self  # type: ignore[attr-defined]  # the handler finds its fake here
        self._server = server
        self.url = f"https://{HOST}:{server.server_address[1]}"
        self.desk = TokenDesk(self)
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> GraphFake:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._dir.cleanup()

    def __enter__(self) -> GraphFake:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- control API ------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str) -> Tenant:
        with self.lock:
            tenant = self.tenants[tenant_id] = Tenant(tenant_id=tenant_id)
            return tenant

    def add_app(self, tenant_id: str, client_id: str, **kwargs: Any) -> App:
        with self.lock:
            app = self.tenants[tenant_id].apps[client_id] = App(client_id=client_id, **kwargs)
            return app

    def fail(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def expire_delta_tokens(self, tenant_id: str, *, how: str = "gone") -> None:
        """Every delta token of the tenant issued so far stops working: ``gone`` (410) or
        ``sync_state_not_found`` (400 syncStateNotFound)."""
        with self.lock:
            for token, (tid, *_rest) in self._delta_tokens.items():
                if tid == tenant_id:
                    self._expired[token] = how

    def graph_requests(self, tenant_id: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path.startswith("/v1.0/") and tenant_id in (None, r.tenant)
            ]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- serving (called by the handler, under the lock) ------------------------------------

    def serve(self, method: str, raw_path: str, body: bytes) -> Any:
        """Record the request and return the function that writes its answer."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        status, tenant_id, answer = self._route(method, path, query, body, raw_path)
        self.requests.append(
            Recorded(
                method=method,
                path=path,
                query=query,
                at=time.time(),
                status=status,
                tenant=tenant_id,
            )
        )
        return answer

    def _route(
        self, method: str, path: str, query: dict[str, str], body: bytes, raw: str
    ) -> tuple[int, str | None, Any]:
        segments = [s for s in path.split("/") if s]
        if path.startswith("/v1.0/") and method == "GET":
            return self._graph(segments[1:], query, raw)
        if method == "GET" and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self.desk.openid_configuration(segments[0])
        if method == "POST" and segments[1:] == ["oauth2", "v2.0", "token"]:
            return self.desk.token(segments[0], body)
        self.unexpected.append(f"{method} {raw}")
        return 404, None, json_answer(404, {"error": {"code": "NotFound", "message": "no route"}})

    def _graph(
        self, segments: list[str], query: dict[str, str], raw: str
    ) -> tuple[int, str | None, Any]:
        tenant, refusal = self.desk.caller()
        if tenant is None:
            return refusal
        if (fault := self._fault(raw)) is not None:
            return fault[0], tenant.tenant_id, fault[1]
        if not self.tenants[tenant.tenant_id].apps[self.desk.client_of_caller()].permission:
            return (
                403,
                tenant.tenant_id,
                json_answer(403, error("Authorization_RequestDenied", "Insufficient privileges")),
            )
        base = f"{self.url}/v1.0/{'/'.join(segments)}"
        if "$skiptoken" in query:
            return self._continue(tenant, query["$skiptoken"])
        select = [s for s in query.get("$select", "").split(",") if s]
        size = min(int(query.get("$top", "100") or 100), tenant.paging.max_page)
        if segments == ["users"]:
            items = tenant.user_changes(None, select)
        elif segments == ["groups"]:
            items = [
                {"id": g["id"], "displayName": g["displayName"]}
                for g in tenant.group_changes(None, with_members=False)
            ]
        elif len(segments) == 3 and segments[0] == "groups" and segments[2] == "members":
            if segments[1] not in tenant.groups:
                return (
                    404,
                    tenant.tenant_id,
                    json_answer(404, error("Request_ResourceNotFound", "-")),
                )
            items = tenant.member_items(segments[1])
        elif len(segments) == 2 and segments[0] == "users" and segments[1] != "delta":
            if segments[1] not in tenant.users:
                return (
                    404,
                    tenant.tenant_id,
                    json_answer(404, error("Request_ResourceNotFound", "-")),
                )
            user = {k: v for k, v in tenant.users[segments[1]].items() if k in ["id", *select]}
            return 200, tenant.tenant_id, json_answer(200, user)
        elif segments in (["users", "delta"], ["groups", "delta"]):
            return self._delta(tenant, segments[0], query, select)
        else:
            self.unexpected.append(f"GET {raw}")
            return 404, tenant.tenant_id, json_answer(404, error("BadRequest", "unsupported"))
        return self._first_page(tenant, paginate(items, size, tenant.paging), base, {})

    def _delta(
        self, tenant: Tenant, kind: str, query: dict[str, str], select: list[str]
    ) -> tuple[int, str | None, Any]:
        since: int | None = None
        if (token := query.get("$deltatoken")) is not None:
            if token == "latest":
                since = tenant.seq
                pages: list[list[dict[str, Any]]] = [[]]
                return self._first_page(tenant, pages, "", self._delta_link(tenant, kind, select))
            if token in self._expired:
                if self._expired[token] == "gone":
                    return 410, tenant.tenant_id, json_answer(410, error("resyncRequired", "gone"))
                return (
                    400,
                    tenant.tenant_id,
                    json_answer(400, error("syncStateNotFound", "expired")),
                )
            if token not in self._delta_tokens:
                return (
                    400,
                    tenant.tenant_id,
                    json_answer(400, error("syncStateNotFound", "unknown")),
                )
            _tid, _kind, since, stored = self._delta_tokens[token]
            select = [s for s in stored.split(",") if s]
        if kind == "users":
            items = tenant.user_changes(since, select)
        else:
            items = slice_members(
                tenant.group_changes(since, with_members="members" in select),
                tenant.paging.member_slice,
            )
        pages = paginate(items, tenant.paging.max_page, tenant.paging)
        return self._first_page(tenant, pages, "", self._delta_link(tenant, kind, select))

    def _delta_link(self, tenant: Tenant, kind: str, select: list[str]) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        self._delta_tokens[token] = (tenant.tenant_id, kind, tenant.seq, ",".join(select))
        return {"@odata.deltaLink": f"{self.url}/v1.0/{kind}/delta?$deltatoken={token}"}

    def _first_page(
        self, tenant: Tenant, pages: list[list[dict[str, Any]]], base: str, final: dict[str, Any]
    ) -> tuple[int, str | None, Any]:
        token = secrets.token_urlsafe(16)
        self._pending[token] = _Pending(pages=pages, base=base, final=final)
        return self._continue(tenant, token)

    def _continue(self, tenant: Tenant, token: str) -> tuple[int, str | None, Any]:
        pending = self._pending.pop(token, None)
        if pending is None:
            return 400, tenant.tenant_id, json_answer(400, error("BadRequest", "bad skiptoken"))
        page, rest = pending.pages[0], pending.pages[1:]
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata", "value": page}
        if rest:
            nxt = secrets.token_urlsafe(16)
            self._pending[nxt] = _Pending(pages=rest, base=pending.base, final=pending.final)
            path = pending.base or next(iter(pending.final.values())).split("?")[0]
            body["@odata.nextLink"] = f"{path}?$skiptoken={nxt}"
        else:
            body.update(pending.final)
        return 200, tenant.tenant_id, json_answer(200, body)

    def _fault(self, raw: str) -> tuple[int, Any] | None:
        for fault in self.faults:
            if fault.path in raw and fault.times > 0:
                fault.times -= 1
                return faulty(fault)
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of Graph expect
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed ACKs

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: GraphFake = self.server.fake  # type: ignore[attr-defined]
        with fake.lock:
            fake.desk.authorization = self.headers.get("Authorization")
            answer = fake.serve(method, self.path, body)
        answer(self)  # outside the lock: a slow answer does not hold up other clients

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake records requests itself."""
