"""Benchmark: full and delta sync of a large Entra ID tenant from the local Graph.

    .venv/bin/python bench/graph_bench.py [--users 50000] [--groups 2000] [--changes 100]

Seeds one tenant of ``dirsync.testing.graph_fake`` (HTTPS on 127.0.0.1, real msal and httpx
code paths), then times, into a fresh SQLite store:
1. a full sync (token, /users, /groups, every group's /members, mapping, one transaction);
2. a delta sync after ``--changes`` user changes and as many membership changes;
3. a delta sync with no change at all.
Prints one Markdown table row per phase, for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from dirsync.connectors.azure_ad.connector import AzureAdConnector
from dirsync.connectors.azure_ad.settings import AzureAdSourceSettings
from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.model import Cursor, Reading, SourceInfo
from dirsync.rules import RemovalLimit, SyncRules
from dirsync.state.sql_store import SqlStore
from dirsync.sync.result import RunResult
from dirsync.sync.run import run_organization
from dirsync.testing.graph_fake import GraphFake
from dirsync.testing.graph_tenant import Paging, Tenant

CLIENT_ID = "bench-app"
SECRET = "bench-secret"


def seed(tenant: Tenant, users: int, groups: int, rng: random.Random) -> list[str]:
    ids = [
        tenant.add_user(display_name=f"User {i}", mail=f"user{i}@bench.example")
        for i in range(users)
    ]
    group_ids: list[str] = []
    per_group = max(1, users // groups)
    for g in range(groups):
        members = ids[(g * per_group) % users : (g * per_group) % users + per_group]
        if group_ids and g % 10 == 0:  # every tenth group nests an earlier one
            members = [*members, rng.choice(group_ids)]
        group_ids.append(tenant.add_group(display_name=f"Group {g}", members=tuple(members)))
    return ids


def mutate(tenant: Tenant, ids: list[str], changes: int, rng: random.Random) -> None:
    groups = sorted(tenant.groups)
    for n, uid in enumerate(rng.sample(ids, changes)):
        tenant.update_user(uid, displayName=f"Changed {n}")
        tenant.add_member(rng.choice(groups), rng.choice(ids))


class TimedConnector:
    """The connector, with the time its reads took (the rest is store and mapping)."""

    def __init__(self, connector: AzureAdConnector) -> None:
        self.connector = connector
        self.seconds = 0.0

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        started = time.perf_counter()
        try:
            return self.connector.read(cursor, progress=progress, held=held)
        finally:
            self.seconds += time.perf_counter() - started

    def probe(self) -> SourceInfo:
        return self.connector.probe()

    def close(self) -> None:
        self.connector.close()


def timed(
    label: str, graph: GraphFake, tenant: Tenant, connector: AzureAdConnector, store: SqlStore
) -> tuple[str, RunResult]:
    graph.clear_requests()
    reader = TimedConnector(connector)
    started = time.perf_counter()
    result = run_organization("bench", RULES, reader, store)
    seconds = time.perf_counter() - started
    sent = len(graph.graph_requests(tenant.tenant_id))
    counts = result.plan.counts()
    changed = sum(counts.values())
    row = (
        f"| {label} | {result.outcome} | {result.entries_read:,} | {sent:,} | {changed:,} | "
        f"{reader.seconds:.2f} s | {seconds:.2f} s |"
    )
    return row, result


RULES = SyncRules(max_removals=RemovalLimit(percent=100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    os.environ.pop("MSAL_FORCE_REGION", None)
    rng = random.Random(5)
    with GraphFake() as graph, tempfile.TemporaryDirectory() as tmp:
        tenant = graph.add_tenant("bench")
        tenant.paging = Paging(max_page=999)
        graph.add_app("bench", CLIENT_ID, secret=SECRET)
        started = time.perf_counter()
        ids = seed(tenant, args.users, args.groups, rng)
        print(
            f"seeded {args.users:,} users, {args.groups:,} groups in "
            f"{time.perf_counter() - started:.1f} s"
        )
        settings = AzureAdSourceSettings.model_validate(
            {
                "type": "azure_ad",
                "tenant": "bench",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "authority": graph.url,
                "graph_url": graph.url,
                "ca_file": str(graph.ca_file),
            }
        )
        connector = AzureAdConnector(settings, organization="bench")
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(
            "| phase | outcome | entries read | Graph requests | plan entries | Graph read "
            "| whole sync |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        try:
            row, _ = timed("full sync", graph, tenant, connector, store)
            print(row)
            mutate(tenant, ids, args.changes, rng)
            row, _ = timed(
                f"delta sync, {args.changes} users + {args.changes} memberships changed",
                graph,
                tenant,
                connector,
                store,
            )
            print(row)
            row, _ = timed("delta sync, no change", graph, tenant, connector, store)
            print(row)
        finally:
            connector.close()
            store.close()


if __name__ == "__main__":
    main()
