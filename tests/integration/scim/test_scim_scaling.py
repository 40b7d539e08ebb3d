"""A request's SQL does not grow with the organization: the same requests against an
organization of 100 users and one of 10,050 run the same statements and load the same rows;
and a group of more than 10,000 members is filled, read back and emptied without truncation.

Both organizations are alike but for their size: a seat limit (the seat guard counts seated
members), ``max_removals`` (the removal guard counts members and the removal window), a
collection reached through a group that holds every user but the last 30, and pushed through
the real endpoint over HTTPS. The store's engine counts the statements it runs and the rows
sqlite3 hands back (its ``row_factory``), during each request only; none of them is a
``COUNT`` (the guards' counts are kept on the organization, ``state.counts``).
"""

from __future__ import annotations

import sqlite3
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from dirsync.config.resolve import resolve_secrets
from dirsync.config.settings import load_config
from dirsync.model import DirectoryDelta, DirectoryGroup, DirectoryUser
from dirsync.scim import app as scim_app
from dirsync.scim import server as scim_server
from dirsync.scim.push import Pusher
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import runtime_directory

from .conftest import Certificates

SIZES = {"small": 100, "large": 10_050}
TOKEN = "scaling-token-0123456789abcdef"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: the users past the group's members, which the group PATCHes add
OUTSIDE = 30


@dataclass
class Counted:
    """Statements run and rows fetched while ``on``."""

    on: bool = False
    statements: int = 0
    rows: int = 0
    seen: list[str] = field(default_factory=list)

    def row(self, cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.on:
            self.rows += 1
        return row


def _config(folder: Path, certificates: Certificates) -> Path:
    (folder / "org.token").write_text(TOKEN + "\n")
    (folder / "org.token").chmod(0o600)
    lines = [
        "[store]",
        f'url = "sqlite:///{folder / "dirsync.db"}"',
        "[daemon]",
        'scim_listen = "127.0.0.1:0"',
        f'scim_cert_file = "{certificates.cert_file}"',
        f'scim_key_file = "{certificates.key_file}"',
    ]
    for name, size in SIZES.items():
        lines += [
            "[[organization]]",
            f'name = "{name}"',
            f"seats = {size + 10}",
            "[organization.source]",
            'type = "scim"',
            'token_file = "org.token"',
            "[organization.sync]",
            'max_removals = "10%"',
            "[[organization.collection]]",
            'name = "Staff vault"',
            'external_id = "staff-vault"',
            'groups = ["All staff"]',
        ]
    path = folder / "dirsync.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@dataclass
class Endpoint:
    port: int
    certificates: Certificates
    counted: Counted

    def client(self, organization: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}/scim/v2/{organization}",
            verify=ssl.create_default_context(cafile=str(self.certificates.ca_file)),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )


def _user(organization: str, number: int) -> DirectoryUser:
    name = f"user{number:05d}@{organization}.example"
    return DirectoryUser(
        external_id=f"u{number:05d}", ref=f"u{number:05d}", username=name, email=name
    )


@pytest.fixture(scope="module")
def endpoint(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[Endpoint]:
    folder = tmp_path_factory.mktemp("scim-scaling")
    config = load_config(_config(folder, certificates))
    resolve_secrets(config)
    store = SqlStore.open(config.store.url)
    pusher = Pusher(
        store=store, store_url=config.store.url, runtime_dir=runtime_directory(config.store.url)
    )
    for organization in config.organization:
        size = SIZES[organization.name]
        users = tuple(_user(organization.name, n) for n in range(size))
        staff = DirectoryGroup(
            external_id="staff",
            ref="staff",
            name="All staff",
            member_refs=frozenset(u.ref for u in users[: size - OUTSIDE]),
        )
        # seeded as one push (the identity provider's creates, at once)
        with pusher.lock(organization.name):
            pusher.push(
                organization.name,
                organization.rules(),
                DirectoryDelta(users=users, groups=(staff,)),
            )
    counted = Counted()
    engine = store._engine
    assert engine is not None

    @event.listens_for(engine, "checkout")
    def _rows(dbapi: sqlite3.Connection, record: Any, proxy: Any) -> None:
        dbapi.row_factory = counted.row

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if counted.on:
            counted.statements += 1
            counted.seen.append(" ".join(statement.split()))

    engine.pool.dispose()  # every connection from now on is checked out with the counter
    app = scim_app.application(lambda: config, store, pusher)
    server = scim_server.serve(
        app, "127.0.0.1:0", cert_file=certificates.cert_file, key_file=certificates.key_file
    )
    try:
        yield Endpoint(server.port, certificates, counted)
    finally:
        server.close()
        store.close()


def _members(first: int, last: int) -> list[dict[str, str]]:
    return [{"value": f"u{n:05d}"} for n in range(first, last)]


def _requests(size: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each request: method, path, body; the same for both sizes but for the ids past the
    group's members (the last ``OUTSIDE`` users)."""
    outside = size - OUTSIDE
    return {
        "user PATCH (displayName)": (
            "PATCH",
            "/Users/u00007",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Seven"}],
            },
        ),
        "group PATCH adding 20 members": (
            "PATCH",
            "/Groups/staff",
            {
                "schemas": [PATCH],
                "Operations": [
                    {"op": "add", "path": "members", "value": _members(outside, outside + 20)}
                ],
            },
        ),
        "group PATCH adding 5 and removing 5 (Entra's shape)": (
            "PATCH",
            "/Groups/staff",
            {
                "schemas": [PATCH],
                "Operations": [
                    {"op": "Add", "path": "members", "value": _members(outside + 20, size - 5)},
                    {"op": "Remove", "path": "members", "value": _members(10, 15)},
                ],
            },
        ),
        "user PATCH disabling (a revocation: both guards count)": (
            "PATCH",
            "/Users/u00003",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        ),
        "user POST (an invitation: the seat guard counts)": (
            "POST",
            "/Users",
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "newcomer@example.org",
            },
        ),
    }


def test_a_requests_sql_does_not_grow_with_the_organization(endpoint: Endpoint) -> None:
    measured: dict[str, dict[str, tuple[int, int]]] = {}
    for organization, size in SIZES.items():
        with endpoint.client(organization) as http:
            for label, (method, path, body) in _requests(size).items():
                endpoint.counted.statements = endpoint.counted.rows = 0
                endpoint.counted.seen.clear()
                endpoint.counted.on = True
                answer = http.request(method, path, json=body)
                endpoint.counted.on = False
                assert answer.status_code in (200, 201, 204), (label, answer.text)
                counted = endpoint.counted
                measured.setdefault(label, {})[organization] = (counted.statements, counted.rows)
                # the guards' counts are kept on the organization, not counted per request (the
                # removal window's deprovisionings are: a range of its recent events)
                counts = [s for s in counted.seen if s.lower().startswith("select count(")]
                assert not [s for s in counts if "FROM events" not in s], label
            # the pushes were applied: the group's members are what the PATCHes made them
            group = http.get("/Groups/staff").json()
            members = {m["value"] for m in group["members"]}
            assert len(members) == size - 5 - 5
            assert {f"u{n:05d}" for n in range(10, 15)}.isdisjoint(members)
            assert f"u{size - 6:05d}" in members and f"u{size - 5:05d}" not in members
    for label, by_size in measured.items():
        small, large = by_size["small"], by_size["large"]
        assert large == small, f"{label}: (statements, rows) {small} at 100, {large} at 10,050"
        # a few rows per user, member, group and event the request names, not the organization
        assert large[1] < 400, f"{label}: {large[1]} rows"


def test_a_group_of_more_than_10000_members_is_filled_read_and_emptied_whole(
    endpoint: Endpoint,
) -> None:
    """Every user of the large organization joins a new group in one PATCH (0.5 MB), and the
    group reads back with all of them, by id and through a filtered list; one PATCH removes
    them all again. Nothing is cut at 100 or at any page size."""
    size = SIZES["large"]
    everyone = _members(0, size)
    with endpoint.client("large") as http:
        created = http.post(
            "/Groups",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All"},
        )
        assert created.status_code == 201, created.text
        group = created.json()["id"]
        add = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": everyone}],
        }
        assert http.patch(f"/Groups/{group}", json=add).status_code == 204
        read = http.get(f"/Groups/{group}").json()
        assert sorted(m["value"] for m in read["members"]) == [m["value"] for m in everyone]
        listed = http.get("/Groups", params={"filter": 'displayName eq "All"'}).json()
        assert [len(g["members"]) for g in listed["Resources"]] == [size]
        remove = {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": "members", "value": everyone}],
        }
        assert http.patch(f"/Groups/{group}", json=remove).status_code == 204
        assert "members" not in http.get(f"/Groups/{group}").json()
