"""The HTTP side of one Azure AD source: msal's requests session and the httpx Graph client.

Both get the source's ``ca_file`` (added to the usual CAs) and ``proxy``, and neither reads the
environment (``trust_env=False``): ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE`` or ``HTTPS_PROXY``
would otherwise silently override the config. requests takes a single CA file, so it gets a
temporary bundle of certifi's CAs plus ``ca_file``, deleted on ``close()``. Both share one
``ReadDeadline`` (``read_deadline``), started by ``GraphClient.start_read``, and read bodies
within a size limit (``limits``).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from random import Random
from typing import Any

import certifi
import httpx
import requests

from dirsync.connectors.azure_ad.auth import TokenProvider, TokenSettings, certificate_credential
from dirsync.connectors.azure_ad.client import GraphClient, RetryPolicy, Sleeper
from dirsync.connectors.azure_ad.limits import (
    MAX_TOKEN_BODY,
    DeadlinePassed,
    ReadDeadline,
    TokenReadStopped,
)
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings


def token_settings(settings: AzureAdSourceSettings, *, organization: str) -> TokenSettings:
    """The token side of the settings; a bad certificate file is a config error (exit 2) now."""
    if settings.certificate_file is not None:
        certificate_credential(
            settings.certificate_file,
            settings.certificate_passphrase,
            where=f"organization[{organization}].source.certificate_file",
        )
    return TokenSettings(
        organization=organization,
        tenant=settings.tenant,
        client_id=settings.client_id,
        authority=settings.authority,
        scope=f"{settings.graph_url}/.default",
        secret=settings.client_secret or settings.client_secret_file,
        certificate_file=settings.certificate_file,
        certificate_passphrase=settings.certificate_passphrase,
        timeout=settings.timeout.total_seconds(),
    )


class TimeoutSession(requests.Session):
    """A requests session with a timeout on every request, cut to the read's deadline, and
    answers read within ``max_body``.

    msal applies its ``timeout`` only to a session it makes itself, not to one it is given.
    """

    def __init__(
        self, timeout: float, deadline: ReadDeadline | None = None, max_body: int = MAX_TOKEN_BODY
    ) -> None:
        super().__init__()
        self.timeout = timeout
        self.deadline = deadline or ReadDeadline(15 * 60)
        self.max_body = max_body

    def request(self, method: str, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]  # the same call, bounded
        timeout = kwargs.pop("timeout", None) or self.timeout
        kwargs.pop("stream", None)
        try:
            timeout = self.deadline.cut(timeout)
        except DeadlinePassed:
            raise TokenReadStopped(f"the read passed its {self.deadline}") from None
        response = super().request(method, url, timeout=timeout, stream=True, **kwargs)
        with response:
            body = self._body(response)
        # requests has no public way to hand over a body read under a limit: this is what
        # its own ``content`` property stores once it has read one
        response._content = body
        return response

    def _body(self, response: requests.Response) -> bytes:
        where = requests.utils.urlparse(response.url).netloc
        limit = f"over the limit of {self.max_body:,} bytes; not read further"
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > self.max_body:
            raise TokenReadStopped(f"{where} announced {int(announced):,} bytes, {limit}")
        body = bytearray()
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > self.max_body:
                raise TokenReadStopped(f"{where} sent more than {self.max_body:,} bytes, {limit}")
            if self.deadline.passed():
                raise TokenReadStopped(f"the read passed its {self.deadline} reading from {where}")
        return bytes(body)


class GraphTransport:
    """An msal token provider and a Graph client for one organization, closed together."""

    def __init__(
        self,
        settings: AzureAdSourceSettings,
        tokens: TokenSettings,
        *,
        organization: str,
        sleep: Sleeper,
        rng: Random | None,
    ) -> None:
        self._bundle: Path | None = None
        deadline = ReadDeadline(settings.read_deadline.total_seconds())
        self.session = TimeoutSession(settings.timeout.total_seconds(), deadline)
        self.session.trust_env = False
        if settings.ca_file is not None:
            self._bundle = _ca_bundle(settings.ca_file)
            self.session.verify = str(self._bundle)
        if settings.proxy:
            self.session.proxies = {"http": settings.proxy, "https": settings.proxy}
        context = ssl.create_default_context()
        if settings.ca_file is not None:
            context.load_verify_locations(cafile=str(settings.ca_file))
        http = httpx.Client(
            verify=context,
            proxy=settings.proxy or None,
            timeout=httpx.Timeout(settings.timeout.total_seconds()),
            trust_env=False,
            follow_redirects=False,
        )
        self.tokens = TokenProvider(tokens, self.session)
        self.graph = GraphClient(
            organization=organization,
            graph_url=settings.graph_url,
            tokens=self.tokens,
            http=http,
            policy=RetryPolicy(max_attempts=settings.max_attempts),
            sleep=sleep,
            rng=rng,
            timeout=settings.timeout.total_seconds(),
            deadline=deadline,
        )

    def close(self) -> None:
        self.graph.close()
        self.session.close()
        bundle, self._bundle = self._bundle, None
        if bundle is not None:
            bundle.unlink(missing_ok=True)


def _ca_bundle(ca_file: Path) -> Path:
    """certifi's CAs plus the extra one, for requests (whose verify= takes one file)."""
    fd, name = tempfile.mkstemp(prefix="dirsync-ca-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(Path(certifi.where()).read_text(encoding="utf-8"))
        out.write("\n")
        out.write(ca_file.read_text(encoding="utf-8"))
    return Path(name)
