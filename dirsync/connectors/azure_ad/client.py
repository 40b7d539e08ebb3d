"""The httpx seam: GET pages from Microsoft Graph with a bearer token, retries and throttling.

429, 503 and 504 are retried up to ``max_attempts`` times, waiting what ``Retry-After`` says
(whole or fractional seconds, or a date; at most ``max_retry_after``, beyond which the run
ends instead), or an exponential backoff with jitter when it says nothing. The wait goes
through an injectable ``sleep`` so tests advance frozen time instead of sleeping. A page that
is not a JSON object with a ``value`` list, a cut-off body or a link to another host fails the
read: an incomplete read never reaches the mapping. Bodies are streamed: one larger than
``limits.MAX_BODY`` is refused, and the read's deadline (``read_deadline``) cuts every request's
timeout, every wait for ``Retry-After`` and every body that trickles in. Every httpx failure
becomes a dirsync error here.
"""

from __future__ import annotations

import json
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from dirsync.connectors.azure_ad.auth import TokenProvider, TokenUnavailable
from dirsync.connectors.azure_ad.limits import MAX_BODY, DeadlinePassed, ReadDeadline
from dirsync.errors import (
    CursorExpired,
    SourceAuthFailed,
    SourceReadIncomplete,
    SourceTLSError,
    SourceUnreachable,
)

log = structlog.get_logger("dirsync.connectors.azure_ad.client")

Sleeper = Callable[[float], None]
#: Graph error codes that mean "this delta token is no longer usable"
EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})
_RETRY_STATUSES = frozenset({429, 503, 504})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: the longest ``Retry-After`` waited for; a longer one ends the run (the daemon retries
    #: it later) rather than holding a worker, and never retries earlier than asked
    max_retry_after: float = 300.0


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer read whole (within the limits): what ``_page`` and the retries look at."""

    status_code: int
    headers: httpx.Headers = field(repr=False)
    content: bytes = field(repr=False)


class GraphClient:
    def __init__(
        self,
        *,
        organization: str,
        graph_url: str,
        tokens: TokenProvider,
        http: httpx.Client,
        policy: RetryPolicy,
        sleep: Sleeper = time.sleep,
        rng: random.Random | None = None,
        timeout: float = 30.0,
        deadline: ReadDeadline | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.organization = organization
        self.graph_url = graph_url
        self.tokens = tokens
        self.http = http
        self.policy = policy
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.timeout = timeout
        #: started by ``start_read``; shared with the token session
        self.deadline = deadline or ReadDeadline(15 * 60)
        self.max_body = max_body
        #: requests sent to Graph, retries included
        self.requests = 0
        self._count_lock = threading.Lock()  # full reads list group members from several threads

    def start_read(self) -> None:
        """A read starts: its deadline runs from now, its requests are counted from zero."""
        self.requests = 0
        self.deadline.start()

    def url(self, path: str) -> str:
        return f"{self.graph_url}/v1.0{path}"

    def pages(self, url: str) -> Iterator[dict[str, Any]]:
        """Every page from ``url`` on, following ``@odata.nextLink`` (empty pages included)."""
        while True:
            page = self.get(url)
            yield page
            link = page.get("@odata.nextLink")
            if link is None:
                return
            url = self._own_link(link)

    def get(self, url: str, *, page: bool = True) -> dict[str, Any]:
        """One page (or one object), retried while Graph throttles or is unavailable."""
        path = httpx.URL(url).path
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                token = self.tokens.token()
            except TokenUnavailable as exc:
                self._wait(attempt, None, path=path, reason="token", final=exc)
                continue
            response = self._send(url, token, path)
            if response.status_code in _RETRY_STATUSES:
                final = SourceUnreachable(
                    f"organization {self.organization}: Graph answered {response.status_code} "
                    f"to GET {path} {self.policy.max_attempts} times; giving up for this run"
                )
                self._wait(
                    attempt,
                    _retry_after(response),
                    path=path,
                    reason=str(response.status_code),
                    final=final,
                )
                continue
            return self._page(response, path, page=page)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _send(self, url: str, token: str, path: str) -> Reply:
        with self._count_lock:
            self.requests += 1
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            wait = self.deadline.cut(self.timeout)
            with self.http.stream("GET", url, headers=headers, timeout=wait) as response:
                return Reply(response.status_code, response.headers, self._body(response, path))
        except DeadlinePassed as exc:
            raise self._past_deadline(path) from exc
        except httpx.TimeoutException as exc:
            if self.deadline.passed():
                raise self._past_deadline(path) from exc
            raise SourceUnreachable(
                f"organization {self.organization}: Graph did not answer GET {path} in time"
            ) from exc
        except httpx.ConnectError as exc:
            if _is_tls(exc):
                raise SourceTLSError(
                    f"organization {self.organization}: TLS to {self.graph_url} failed: "
                    f"{_first_line(exc)} (is ca_file right?)"
                ) from exc
            raise SourceUnreachable(
                f"organization {self.organization}: cannot reach {self.graph_url}: "
                f"{_first_line(exc)}"
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceReadIncomplete(
                f"organization {self.organization}: GET {path} broke off: {_first_line(exc)}"
            ) from exc

    def _body(self, response: httpx.Response, path: str) -> bytes:
        """The (decoded) body, refused past ``max_body`` and stopped at the deadline."""
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > self.max_body:
            raise self._too_large(path, f"announced {int(announced):,} bytes")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_body:
                raise self._too_large(path, "sent more")
            if self.deadline.passed():
                raise self._past_deadline(path)
        return bytes(body)

    def _too_large(self, path: str, what: str) -> SourceReadIncomplete:
        return SourceReadIncomplete(
            f"organization {self.organization}: GET {path} at {self.graph_url}: the answer "
            f"{what}, over the limit of {self.max_body:,} bytes; not read further, nothing "
            "was changed"
        )

    def _past_deadline(self, path: str) -> SourceReadIncomplete:
        return SourceReadIncomplete(
            f"organization {self.organization}: the read from {self.graph_url} passed its "
            f"{self.deadline} during GET {path} ({self.requests:,} requests sent); nothing "
            "was changed"
        )

    def _wait(
        self, attempt: int, retry_after: float | None, *, path: str, reason: str, final: Exception
    ) -> None:
        if attempt >= self.policy.max_attempts:
            raise final
        if retry_after is None:
            ceiling = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
            delay = ceiling * (0.5 + self.rng.random() / 2)
        elif retry_after > self.policy.max_retry_after:
            raise SourceUnreachable(
                f"organization {self.organization}: Graph asked to wait {retry_after:g} s "
                f"(Retry-After) before GET {path} again, longer than the "
                f"{self.policy.max_retry_after:g} s a run waits; giving up for this run"
            ) from final
        else:
            delay = retry_after
        try:
            within = self.deadline.cut(delay) >= delay
        except DeadlinePassed:
            within = False
        if not within:
            raise SourceReadIncomplete(
                f"organization {self.organization}: waiting {delay:g} s to GET {path} again "
                f"would pass the {self.deadline} of the read from {self.graph_url} "
                f"({self.requests:,} requests sent); nothing was changed"
            ) from final
        log.warning(
            "graph.throttled",
            organization=self.organization,
            path=path,
            reason=reason,
            attempt=attempt,
            delay=round(delay, 3),
            retry_after=retry_after,
        )
        self.sleep(delay)

    def _page(self, response: Reply, path: str, *, page: bool) -> dict[str, Any]:
        status = response.status_code
        code, message = _error_of(response)
        where = f"organization {self.organization}: GET {path}"
        if status == 410 or code in EXPIRED_CODES:
            raise CursorExpired(f"{where}: the delta token expired ({status} {code or 'Gone'})")
        if status == 404 and not page:
            raise ObjectGone(f"{where}: not found")
        if status == 401:
            raise SourceAuthFailed(f"{where}: Graph refused the token (401 {code})")
        if status == 403:
            raise SourceAuthFailed(
                f"{where}: Graph denied access (403 {code}); the application needs the "
                "User.Read.All and GroupMember.Read.All application permissions with admin "
                "consent"
            )
        if status != 200:
            raise SourceReadIncomplete(f"{where}: Graph answered {status} {code}: {message}")
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise SourceReadIncomplete(f"{where}: the answer is not valid JSON") from exc
        if not page:
            if not isinstance(body, dict) or "id" not in body:
                raise SourceReadIncomplete(f"{where}: the answer is not an object with an id")
            return body
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise SourceReadIncomplete(f"{where}: the page has no value list")
        if not all(isinstance(item, dict) and "id" in item for item in body["value"]):
            raise SourceReadIncomplete(f"{where}: the page holds an object without an id")
        return body

    def _own_link(self, link: object) -> str:
        if not isinstance(link, str) or not link.startswith(self.graph_url + "/"):
            raise SourceReadIncomplete(
                f"organization {self.organization}: Graph sent a next link outside "
                f"{self.graph_url}; not followed"
            )
        return link

    def close(self) -> None:
        self.http.close()


class ObjectGone(SourceReadIncomplete):
    """A single object asked for by id no longer exists."""


_SECONDS = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9})?$")


def _retry_after(response: Reply) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.match(value):
        # RFC 9110 says whole seconds, but Graph's own throttling answers send fractions
        # ("2.128"): read as a date they would fall back to a shorter backoff
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_of(response: Reply) -> tuple[str, str]:
    if response.status_code == 200:
        return "", ""
    try:
        error = json.loads(response.content).get("error") or {}
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return str(error), ""
    return str(error.get("code", "")), str(error.get("message", ""))[:300]


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
