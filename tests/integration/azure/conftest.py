"""Fixtures for tests against the local Graph (``dirsync.testing.graph_fake``).

``graph``   one local Graph over HTTPS for the whole session; every test gets its own tenant;
            a test that makes the fake see an unexpected request (e.g. msal's instance
            discovery) fails.
``tenant``  a fresh tenant with one app registration (client secret ``SECRET``).
``azure``   the dirsync CLI with its own config and SQLite store, pointed at that tenant.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dirsync.connectors.azure_ad.connector import AzureAdConnector
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings
from dirsync.testing.graph_fake import GraphFake
from dirsync.testing.graph_tenant import Tenant
from tests.integration.test_sync_cli import Dirsync

SECRET = "graph-client-secret-7f3a9c"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def graph() -> Iterator[GraphFake]:
    with GraphFake() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_region_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """msal would reach out to a regional endpoint or IMDS when these are set."""
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    monkeypatch.delenv("REGION_NAME", raising=False)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if anything looks up a host other than loopback.

    msal's instance discovery goes to login.microsoftonline.com and its region discovery to
    IMDS, neither of which the local Graph can see; this guard catches them.
    """
    elsewhere: list[str] = []
    real = socket.getaddrinfo

    def loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            elsewhere.append(name)
            raise OSError(f"the tests only reach loopback, not {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)
    yield
    assert not elsewhere, f"something tried to reach beyond loopback: {elsewhere}"


@pytest.fixture
def tenant(graph: GraphFake) -> Iterator[Tenant]:
    tenant_id = f"tenant-{next(_counter)}"
    created = graph.add_tenant(tenant_id)
    graph.add_app(tenant_id, CLIENT_ID, secret=SECRET)
    before = len(graph.unexpected)
    yield created
    with graph.lock:
        graph.faults.clear()
    unexpected = graph.unexpected[before:]
    assert not unexpected, f"the local Graph got requests it does not serve: {unexpected}"


def source_settings(graph: GraphFake, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "azure_ad",
        "tenant": tenant.tenant_id,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "authority": graph.url,
        "graph_url": graph.url,
        "ca_file": str(graph.ca_file),
        "timeout": "10s",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def connector(
    graph: GraphFake, tenant: Tenant, tmp_path: Path, **overrides: Any
) -> AzureAdConnector:
    sleep = overrides.pop("sleep", None)
    settings = AzureAdSourceSettings.model_validate(
        source_settings(graph, tenant, **overrides), context={"base_dir": tmp_path}
    )
    if sleep is None:
        return AzureAdConnector(settings, organization="acme")
    return AzureAdConnector(settings, organization="acme", sleep=sleep)


class AzureDirsync(Dirsync):
    """The CLI driver of test_sync_cli, with an azure_ad source instead of LDAP."""

    def __init__(self, graph: GraphFake, tenant: Tenant, tmp_path: Path) -> None:
        self.graph = graph
        self.tenant = tenant
        self.tmp_path = tmp_path
        self.db = tmp_path / "store" / "dirsync.db"
        self.store_url = f"sqlite:///{self.db}"
        self.config = tmp_path / "dirsync.toml"
        self.source = source_settings(graph, tenant)
        self.sync = {}
        self.org = {}
        self.write()


@pytest.fixture
def azure(graph: GraphFake, tenant: Tenant, tmp_path: Path) -> AzureDirsync:
    return AzureDirsync(graph, tenant, tmp_path)
