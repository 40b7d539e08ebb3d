"""The SCIM endpoint as an ASGI application (Starlette): routes, authentication, errors.

Every route is under ``/scim/v2/<organization>`` and answers ``application/scim+json``. The
handlers are plain functions, run by Starlette in its thread pool: a push waits for the
organization's lock and the store without holding up the event loop. Each request is logged
once (``scim.request``: organization, method, path, status), never with its token or body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dirsync.config.settings import OrganizationSettings
from dirsync.errors import DirsyncError
from dirsync.scim import discovery
from dirsync.scim.auth import ConfigSource, authorize
from dirsync.scim.errors import SCIM_MEDIA_TYPE, ScimError, not_found
from dirsync.scim.group_requests import GroupRequests
from dirsync.scim.push import Pusher
from dirsync.scim.user_requests import UserRequests
from dirsync.state.sql_store import SqlStore

log = structlog.get_logger("dirsync.scim.app")

PREFIX = "/scim/v2/{organization}"
#: the largest request body read (a PATCH of 10,000 group members is about 0.5 MB)
MAX_BODY = 8 * 1024 * 1024


class ScimResponse(JSONResponse):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the handlers share: the running config, the store and the pusher."""

    config: ConfigSource
    store: SqlStore
    pusher: Pusher


Handler = Callable[[Endpoint, Request, UserRequests], Response]


def _base_url(request: Request, organization: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/scim/v2/{organization}"


def _body(request: Request) -> Any:
    raw = request.scope.get("dirsync.body", b"")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ScimError(400, "the request body is not JSON", scim_type="invalidSyntax") from None


def _route(endpoint: Endpoint, handler: Handler) -> Callable[[Request], Any]:
    """A handler behind authentication, with errors answered as SCIM errors. The token is
    checked before the body is read, and a body is read up to ``MAX_BODY`` bytes only."""

    async def respond(request: Request) -> Response:
        started = time.monotonic()
        name = request.path_params["organization"]
        try:
            org = authorize(endpoint.config(), name, request.headers.get("authorization"))
            request.scope["dirsync.body"] = await _read_body(request)
        except ScimError as exc:
            return _logged(request, _error(exc), started)
        response = await run_in_threadpool(_answer, endpoint, handler, request, org)
        return _logged(request, response, started)

    return respond


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _too_large()
    return bytes(body)


def _too_large() -> ScimError:
    return ScimError(413, f"the request body is larger than {MAX_BODY} bytes")


def _error(exc: ScimError) -> Response:
    response = ScimResponse(exc.to_json(), status_code=exc.status)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dirsync"'
    elif exc.status == 503:
        response.headers["Retry-After"] = "30"
    return response


def _answer(
    endpoint: Endpoint, handler: Handler, request: Request, org: OrganizationSettings
) -> Response:
    try:
        users = UserRequests(endpoint.store, endpoint.pusher, org, _base_url(request, org.name))
        return handler(endpoint, request, users)
    except ScimError as exc:
        return _error(exc)
    except DirsyncError as exc:  # the store, or the organization's lock
        return _error(ScimError(503, f"not applied, nothing changed: {exc}"))


def _logged(request: Request, response: Response, started: float) -> Response:
    log.info(
        "scim.request",
        organization=request.path_params["organization"],
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        ms=round((time.monotonic() - started) * 1000, 1),
    )
    return response


# -- the handlers ----------------------------------------------------------------------------


def _service_provider_config(_: Endpoint, request: Request, users: UserRequests) -> Response:
    return ScimResponse(discovery.service_provider_config(users.base_url))


def _resource_types(_: Endpoint, request: Request, users: UserRequests) -> Response:
    found = discovery.resource_types(users.base_url)
    wanted = request.path_params.get("id")
    if wanted is None:
        return ScimResponse(_listed(found))
    return ScimResponse(_one(found, wanted, "ResourceType"))


def _schemas(_: Endpoint, request: Request, users: UserRequests) -> Response:
    found = discovery.schemas(users.base_url)
    wanted = request.path_params.get("id")
    if wanted is None:
        return ScimResponse(_listed(found))
    return ScimResponse(_one(found, wanted, "Schema"))


def _listed(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(documents),
        "startIndex": 1,
        "itemsPerPage": len(documents),
        "Resources": documents,
    }


def _one(documents: list[dict[str, Any]], wanted: str, kind: str) -> dict[str, Any]:
    for document in documents:
        if document.get("id") == wanted:
            return document
    raise not_found(kind, wanted)


def _users(_: Endpoint, request: Request, users: UserRequests) -> Response:
    if request.method == "POST":
        created = users.create(_body(request))
        location = created["meta"]["location"]
        return ScimResponse(created, status_code=201, headers={"Location": location})
    return ScimResponse(users.list(dict(request.query_params)))


def _search(_: Endpoint, request: Request, users: UserRequests) -> Response:
    return ScimResponse(users.search(_body(request)))


def _groups_of(users: UserRequests) -> GroupRequests:
    return GroupRequests(users.store, users.pusher, users.organization, users.base_url)


def _groups(_: Endpoint, request: Request, users: UserRequests) -> Response:
    groups = _groups_of(users)
    if request.method == "POST":
        created = groups.create(_body(request))
        location = created["meta"]["location"]
        return ScimResponse(created, status_code=201, headers={"Location": location})
    return ScimResponse(groups.list(dict(request.query_params)))


def _group(_: Endpoint, request: Request, users: UserRequests) -> Response:
    groups = _groups_of(users)
    group_id = request.path_params["id"]
    params = dict(request.query_params)
    if request.method == "GET":
        return ScimResponse(groups.get(group_id, params))
    if request.method == "PUT":
        return ScimResponse(groups.replace(group_id, _body(request)))
    if request.method == "PATCH":
        patched = groups.patch(group_id, _body(request), params)
        return Response(status_code=204) if patched is None else ScimResponse(patched)
    groups.delete(group_id)
    return Response(status_code=204)


def _search_everything(_: Endpoint, request: Request, users: UserRequests) -> Response:
    raise ScimError(
        501, "searching several resource types at once is not supported; use /Users/.search"
    )


def _bulk(_: Endpoint, request: Request, users: UserRequests) -> Response:
    raise ScimError(
        501, "bulk operations are not supported (ServiceProviderConfig: bulk.supported false)"
    )


def _user(_: Endpoint, request: Request, users: UserRequests) -> Response:
    user_id = request.path_params["id"]
    if request.method == "GET":
        return ScimResponse(users.get(user_id, dict(request.query_params)))
    if request.method == "PUT":
        return ScimResponse(users.replace(user_id, _body(request)))
    if request.method == "PATCH":
        return ScimResponse(users.patch(user_id, _body(request)))
    users.delete(user_id)
    return Response(status_code=204)


def application(config: ConfigSource, store: SqlStore, pusher: Pusher) -> Starlette:
    endpoint = Endpoint(config=config, store=store, pusher=pusher)
    routes = [
        Route(f"{PREFIX}/ServiceProviderConfig", _route(endpoint, _service_provider_config)),
        Route(f"{PREFIX}/ResourceTypes", _route(endpoint, _resource_types)),
        Route(f"{PREFIX}/ResourceTypes/{{id}}", _route(endpoint, _resource_types)),
        Route(f"{PREFIX}/Schemas", _route(endpoint, _schemas)),
        Route(f"{PREFIX}/Schemas/{{id}}", _route(endpoint, _schemas)),
        Route(f"{PREFIX}/.search", _route(endpoint, _search_everything), methods=["POST"]),
        Route(f"{PREFIX}/Bulk", _route(endpoint, _bulk), methods=["POST"]),
        Route(f"{PREFIX}/Users", _route(endpoint, _users), methods=["GET", "POST"]),
        Route(f"{PREFIX}/Users/.search", _route(endpoint, _search), methods=["POST"]),
        Route(
            f"{PREFIX}/Users/{{id}}",
            _route(endpoint, _user),
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
        Route(f"{PREFIX}/Groups", _route(endpoint, _groups), methods=["GET", "POST"]),
        Route(
            f"{PREFIX}/Groups/{{id}}",
            _route(endpoint, _group),
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such route, method) as SCIM errors."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = "no such SCIM endpoint" if status == 404 else str(getattr(exc, "detail", exc))
    return ScimResponse(ScimError(status, detail).to_json(), status_code=status)
