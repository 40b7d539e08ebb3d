"""The SCIM endpoint served by the real uvicorn over HTTPS on loopback, with a trustme CA.

``scim`` writes a config with two pushed organizations (``acme`` and ``beta``, each with its
own token), opens its SQLite store and serves the endpoint in this process; ``scim.client()``
is an httpx client that verifies the server against the test CA. The store is read back
through the real command line (``scim.cli``).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from click.testing import CliRunner

from dirsync.cli.main import cli
from dirsync.config.resolve import resolve_secrets
from dirsync.config.settings import load_config
from dirsync.scim import app as scim_app
from dirsync.scim import server as scim_server
from dirsync.scim.push import Pusher
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import runtime_directory
from dirsync.sync.run import utcnow

TOKENS = {"acme": "acme-token-0123456789abcdef", "beta": "beta-token-fedcba9876543210"}


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("scim-tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca_file))
    issued.private_key_pem.write_to_path(str(files.key_file))
    for index, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(files.cert_file), append=index > 0)
    return files


def write_config(
    folder: Path,
    certificates: Certificates,
    *,
    listen: str,
    acme: dict[str, Any] | None = None,
) -> Path:
    """A config of two pushed organizations; ``acme`` adds to or overrides acme's keys
    (``sync``: its ``[organization.sync]``; ``collection``: a list of its collections)."""
    for name, token in TOKENS.items():
        (folder / f"{name}.token").write_text(token + "\n")
        (folder / f"{name}.token").chmod(0o600)
    acme_keys = {"seats": 0, **(acme or {})}
    lines = [
        "[store]",
        f'url = "sqlite:///{folder / "dirsync.db"}"',
        "[daemon]",
        f'scim_listen = "{listen}"',
        f'scim_cert_file = "{certificates.cert_file}"',
        f'scim_key_file = "{certificates.key_file}"',
        'startup_jitter = "0"',
    ]
    for name in TOKENS:
        keys = acme_keys if name == "acme" else {}
        lines += ["[[organization]]", f'name = "{name}"']
        tables = ("sync", "collection")
        lines += [
            f"{key} = {json.dumps(value)}" for key, value in keys.items() if key not in tables
        ]
        lines += ["[organization.source]", 'type = "scim"', f'token_file = "{name}.token"']
        if sync := keys.get("sync"):
            lines += ["[organization.sync]"]
            lines += [f"{key} = {json.dumps(value)}" for key, value in sync.items()]
        for collection in keys.get("collection", ()):
            lines += ["[[organization.collection]]"]
            lines += [f"{key} = {json.dumps(value)}" for key, value in collection.items()]
    path = folder / "dirsync.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@dataclass
class Scim:
    """The endpoint in this process, its config and its store."""

    config_path: Path
    certificates: Certificates
    port: int
    store: SqlStore
    closers: list[Any] = field(default_factory=list)

    def url(self, organization: str = "acme") -> str:
        return f"https://127.0.0.1:{self.port}/scim/v2/{organization}"

    def client(self, organization: str = "acme", token: str | None = None) -> httpx.Client:
        token = TOKENS[organization] if token is None else token
        client = httpx.Client(
            base_url=self.url(organization),
            verify=ssl.create_default_context(cafile=str(self.certificates.ca_file)),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.closers.append(client)
        return client

    def cli(self, *args: str) -> Any:
        """``dirsync --config ... ARGS --json``'s document (exit 0 required)."""
        result = CliRunner().invoke(cli, ["--config", str(self.config_path), *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@dataclass
class SettableClock:
    """The pushes' clock (``Pusher.clock``), moved by the test; the server's own time is not."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 5, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


def serve(
    tmp_path: Path,
    certificates: Certificates,
    clock: SettableClock | None = None,
    **acme: Any,
) -> Iterator[Scim]:
    path = write_config(tmp_path, certificates, listen="127.0.0.1:0", acme=acme)
    config = load_config(path)
    resolve_secrets(config)
    store = SqlStore.open(config.store.url)
    pusher = Pusher(
        store=store,
        store_url=config.store.url,
        runtime_dir=runtime_directory(config.store.url),
        clock=clock or utcnow,
    )
    app = scim_app.application(lambda: config, store, pusher)
    server = scim_server.serve(
        app,
        "127.0.0.1:0",
        cert_file=certificates.cert_file,
        key_file=certificates.key_file,
    )
    scim = Scim(path, certificates, server.port, store)
    try:
        yield scim
    finally:
        for closer in scim.closers:
            closer.close()
        server.close()
        store.close()


@pytest.fixture
def scim(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    yield from serve(tmp_path, certificates)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def scim_window(tmp_path: Path, certificates: Certificates, clock: SettableClock) -> Iterator[Scim]:
    """acme with max_removals = 2 over the default removal_window (1h)."""
    yield from serve(tmp_path, certificates, clock, sync={"max_removals": 2})


@pytest.fixture
def scim_lenient(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    """acme with max_removals = "100%": a test of what removals do, not of their limit."""
    yield from serve(tmp_path, certificates, sync={"max_removals": "100%"})


@pytest.fixture
def scim_two_seats(tmp_path: Path, certificates: Certificates) -> Iterator[Scim]:
    yield from serve(tmp_path, certificates, seats=2)
