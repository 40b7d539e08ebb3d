"""Benchmark: a SCIM identity provider provisioning 10,000 users and their groups into a real
``dirsync run``.

    .venv/bin/python -m bench.scim_bench [--users 10000] [--parallel 4] [--batch 100]

Starts the daemon as a process (HTTPS with a throwaway CA, a fresh SQLite store, one
``type = "scim"`` organization), then pushes as Entra ID's provisioning does:

1. users: per user, ``GET /Users?filter=userName eq "..."`` then ``POST /Users``,
   ``--parallel`` users at a time;
2. groups: ``GET /Groups?filter=displayName eq "..."`` then ``POST /Groups`` without members,
   then ``PATCH`` adds of ``--batch`` members per request until every user is a member;
3. one group PATCH adding every user (10,000 members) in a single request, then one that
   removes them all.

Prints Markdown: wall time, requests/s, and the median latency of the first and last tenth of
each series (whether latency grows with the organization, or with the group).

    .venv/bin/python -m bench.scim_bench --latency --users 1000,10000 [--rounds 20]

Instead: for each size, a store seeded with that many users in one push (a group, "All
staff", holding all of them but the last 100; a collection reached through it; a seat
limit), then ``dirsync run`` serving it, and ``rounds`` of each: a user PATCH
(``displayName``), a group PATCH adding those 100 members, one removing them again. Prints
the median latency and the daemon's CPU time per request (the fairer figure on a shared
machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
import trustme

ORG = "bench"
TOKEN = "bench-token-" + "7" * 40
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Series:
    """Latencies of one kind of request, in the order the requests were sent."""

    name: str
    seconds: list[float] = field(default_factory=list)

    def tenth(self, last: bool) -> float:
        size = max(1, len(self.seconds) // 10)
        part = self.seconds[-size:] if last else self.seconds[:size]
        return statistics.median(part) * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificates(folder: Path) -> Path:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    for index, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(folder / "cert.pem"), append=index > 0)
    return folder / "ca.pem"


def _config(folder: Path, port: int, *, seats: int = 0, collection: bool = False) -> Path:
    token = folder / "bench.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    path = folder / "dirsync.toml"
    path.write_text(
        "\n".join(
            [
                "[store]",
                f'url = "sqlite:///{folder / "dirsync.db"}"',
                "[daemon]",
                f'scim_listen = "127.0.0.1:{port}"',
                f'scim_cert_file = "{folder / "cert.pem"}"',
                f'scim_key_file = "{folder / "key.pem"}"',
                'startup_jitter = "0"',
                "[[organization]]",
                f'name = "{ORG}"',
                "[organization.source]",
                'type = "scim"',
                'token_file = "bench.token"',
                "[organization.sync]",
                'max_removals = "100%"',
                *(
                    [
                        "[[organization.collection]]",
                        'name = "Staff vault"',
                        'external_id = "staff-vault"',
                        'groups = ["All staff"]',
                    ]
                    if collection
                    else []
                ),
            ]
        )
        + "\n"
    )
    path.chmod(0o600)
    return path


@contextmanager
def daemon(
    folder: Path, *, seed: int = 0, outside: int = 0
) -> Iterator[tuple[Callable[[], httpx.Client], int]]:
    """``dirsync run`` serving the organization; yields a maker of clients (one per thread)
    and the daemon's process id. ``seed``: that many users pushed into the store first, in
    one push, with a group of all but the last ``outside`` of them."""
    port = _free_port()
    ca_file = _certificates(folder)
    config = _config(folder, port, seats=2 * seed if seed else 0, collection=bool(seed))
    if seed:
        _seed(config, seed, outside)
    log = (folder / "daemon.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dirsync", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    context = ssl.create_default_context(cafile=str(ca_file))

    def client() -> httpx.Client:
        return httpx.Client(
            base_url=f"https://127.0.0.1:{port}/scim/v2/{ORG}",
            verify=context,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=120,
        )

    try:
        with client() as probe:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"dirsync run exited with {process.returncode}")
                try:
                    if probe.get("/ServiceProviderConfig").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        yield client, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _seed(config_path: Path, users: int, outside: int) -> None:
    """The organization's users and its group, pushed at once (the code under test)."""
    from dirsync.config.resolve import resolve_secrets
    from dirsync.config.settings import load_config
    from dirsync.model import DirectoryDelta, DirectoryGroup, DirectoryUser
    from dirsync.scim.push import Pusher
    from dirsync.state.sql_store import SqlStore
    from dirsync.sync.locks import runtime_directory

    config = load_config(config_path)
    resolve_secrets(config)
    organization = config.organization[0]
    seeded = tuple(
        DirectoryUser(
            external_id=f"u{n:06d}",
            ref=f"u{n:06d}",
            username=f"user{n:06d}@bench.example",
            email=f"user{n:06d}@bench.example",
            name=f"User {n}",
        )
        for n in range(users)
    )
    staff = DirectoryGroup(
        external_id="staff",
        ref="staff",
        name="All staff",
        member_refs=frozenset(u.ref for u in seeded[: users - outside]),
    )
    store = SqlStore.open(config.store.url)
    try:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
        url = config.store.url
        pusher = Pusher(store=store, store_url=url, runtime_dir=runtime_directory(url))
        with pusher.lock(organization.name):
            pusher.push(
                organization.name,
                organization.rules(),
                DirectoryDelta(users=seeded, groups=(staff,)),
            )
    finally:
        store.close()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(sizes: list[int], rounds: int) -> None:
    """User and group PATCHes against organizations of each size, seeded at once."""
    print("| users | request | median ms | daemon CPU ms per request |")
    print("| ---: | --- | ---: | ---: |")
    batch = 100
    for size in sizes:
        with (
            tempfile.TemporaryDirectory() as tmp,
            daemon(Path(tmp), seed=size, outside=batch) as (client, pid),
            client() as http,
        ):
            outside = [f"u{n:06d}" for n in range(size - batch, size)]
            renames = Series("user PATCH (displayName)")
            cpu = _cpu_seconds(pid)
            for r in range(rounds):
                body = {
                    "schemas": [PATCH],
                    "Operations": [{"op": "replace", "path": "displayName", "value": f"R {r}"}],
                }
                _timed(renames, lambda b=body, r=r: http.patch(f"/Users/u{r * 7:06d}", json=b), 200)
            spent = {renames.name: _cpu_seconds(pid) - cpu}
            # the same users added and removed in turn: the group holds the others throughout
            adds = Series(f"group PATCH adding {batch} members")
            removals = Series(f"group PATCH removing {batch} members")
            spent[adds.name] = spent[removals.name] = 0.0
            for _ in range(rounds):
                for series, op in ((adds, "Add"), (removals, "Remove")):
                    cpu = _cpu_seconds(pid)
                    body = members_patch(op, outside)
                    _timed(series, lambda b=body: http.patch("/Groups/staff", json=b), 204)
                    spent[series.name] += _cpu_seconds(pid) - cpu
            for series in (renames, adds, removals):
                median = statistics.median(series.seconds) * 1000
                per = spent[series.name] / rounds * 1000
                print(f"| {size:,} | {series.name} | {median:.1f} | {per:.1f} |")


def _timed(series: Series, send: Callable[[], httpx.Response], expect: int) -> httpx.Response:
    started = time.perf_counter()
    answer = send()
    series.seconds.append(time.perf_counter() - started)
    if answer.status_code != expect:
        raise SystemExit(f"{series.name}: {answer.status_code} {answer.text[:300]}")
    return answer


def provision_users(
    client: Callable[[], httpx.Client], users: int, parallel: int
) -> tuple[list[str], float, Series, Series]:
    """Entra ID's initial cycle for users: look up, then create; ``parallel`` at a time."""
    lookups, creates = Series("GET /Users?filter"), Series("POST /Users")
    clients = [client() for _ in range(parallel)]
    ids: list[str] = [""] * users

    def one(number: int) -> None:
        http = clients[number % parallel]
        name = f"user{number:05d}@bench.example"
        query = {"filter": f'userName eq "{name}"'}
        _timed(lookups, lambda: http.get("/Users", params=query), 200)
        body = {
            "schemas": [USER],
            "externalId": f"user{number:05d}",
            "userName": name,
            "active": True,
            "displayName": f"User {number}",
            "emails": [{"primary": True, "type": "work", "value": name}],
        }
        ids[number] = _timed(creates, lambda: http.post("/Users", json=body), 201).json()["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        # in order, a window of ``parallel`` at a time, as a provisioning cycle goes
        list(pool.map(one, range(users)))
    wall = time.perf_counter() - started
    for http in clients:
        http.close()
    return ids, wall, lookups, creates


def create_group(http: httpx.Client, name: str, series: Series) -> str:
    _timed(series, lambda: http.get("/Groups", params={"filter": f'displayName eq "{name}"'}), 200)
    body = {"schemas": [GROUP], "displayName": name, "externalId": name.lower()}
    return str(_timed(series, lambda: http.post("/Groups", json=body), 201).json()["id"])


def members_patch(op: str, ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH],
        "Operations": [{"op": op, "path": "members", "value": [{"value": i} for i in ids]}],
    }


def _row(label: str, requests: int, wall: float, series: Series | None) -> str:
    rate = requests / wall if wall else 0.0
    first = f"{series.tenth(last=False):.0f}" if series else ""
    last = f"{series.tenth(last=True):.0f}" if series else ""
    return f"| {label} | {requests:,} | {wall:.1f} | {rate:.0f} | {first} | {last} |"


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="10000", help="with --latency: sizes, a,b,...")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--latency", action="store_true", help="seeded stores: PATCH latency by size"
    )
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"- machine: {_machine()}")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}")
    print(f"- command: `{' '.join(['python -m bench.scim_bench', *sys.argv[1:]])}`")
    print()
    if args.latency:
        latency([int(n) for n in str(args.users).split(",")], args.rounds)
        return
    print("| step | requests | wall s | requests/s | median ms, first tenth | last tenth |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    total = int(args.users)
    with tempfile.TemporaryDirectory() as tmp, daemon(Path(tmp)) as (client, _):
        ids, wall, lookups, creates = provision_users(client, total, args.parallel)
        print(_row(f"{total:,} users: GET filter", len(lookups.seconds), wall, lookups))
        print(_row("  then POST (same wall time)", len(creates.seconds), wall, creates))
        with client() as http:
            made = Series("groups")
            started = time.perf_counter()
            batched = create_group(http, "All staff", made)
            whole = create_group(http, "Everyone at once", made)
            print(_row("2 groups: GET filter, POST", 4, time.perf_counter() - started, None))

            patches = Series(f"PATCH add {args.batch}")
            started = time.perf_counter()
            for start in range(0, len(ids), args.batch):
                body = members_patch("Add", ids[start : start + args.batch])
                _timed(patches, lambda b=body: http.patch(f"/Groups/{batched}", json=b), 204)
            wall = time.perf_counter() - started
            label = f"group PATCH adds of {args.batch} members up to {len(ids):,}"
            print(_row(label, len(patches.seconds), wall, patches))

            single = Series("PATCH add all")
            body = members_patch("Add", ids)
            size = len(json.dumps(body))
            _timed(single, lambda: http.patch(f"/Groups/{whole}", json=body), 204)
            label = f"one group PATCH adding {len(ids):,} members ({size / 1e6:.1f} MB)"
            print(_row(label, 1, single.seconds[0], None))
            removal = Series("PATCH remove all")
            body = members_patch("Remove", ids)
            _timed(removal, lambda: http.patch(f"/Groups/{whole}", json=body), 204)
            label = f"one group PATCH removing {len(ids):,} members"
            print(_row(label, 1, removal.seconds[0], None))
            listed = http.get(f"/Groups/{batched}").json()
            assert len(listed["members"]) == len(ids), len(listed["members"])


if __name__ == "__main__":
    main()
