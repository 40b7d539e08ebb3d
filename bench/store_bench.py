"""The store alone: one apply of 100,000 invites into an empty store (in process).

The plan comes from the real pipeline (a snapshot of ``users`` users and no groups), so the
apply writes what a first sync writes: members, one event each, the mirror, the run. Run as a
module it compares SQLite and PostgreSQL (a throwaway local server), alternating:

    .venv/bin/python -m bench.store_bench [users] [--rounds N]
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dirsync.mapping.pipeline import PlannedRun, plan_run
from dirsync.model import DirectorySnapshot, DirectoryUser, Mirror, Reading
from dirsync.organization import OrganizationState
from dirsync.plan import Outcome
from dirsync.rules import SyncRules
from dirsync.state.records import RunRecord
from dirsync.state.sql_store import SqlStore


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFigures:
    invites: int
    apply_seconds: float
    load_seconds: float
    peak_rss_mb: float
    #: the apply's CPU time: steadier than its wall time on a machine shared with other work
    apply_cpu_seconds: float = 0.0


def apply_first_sync(store: SqlStore, planned: PlannedRun) -> None:
    """Apply a first sync's plan and mirror to an empty organization "bench", as one run."""
    now = datetime.now(UTC)
    record = RunRecord(
        run_id="bench", started_at=now, finished_at=now, outcome=Outcome.APPLIED, full=True
    )
    store.apply(
        "bench",
        plan=planned.plan,
        mirror_before=Mirror(),
        mirror_after=planned.mirror,
        cursor=None,
        run=record,
        expected_version=0,
        now=now,
    )


def run(users: int = 100_000, url: str | None = None) -> StoreFigures:
    """``url``: an empty store to apply into (default: a new SQLite file)."""
    snapshot = DirectorySnapshot(
        users=tuple(
            DirectoryUser(
                external_id=f"id-{i}",
                ref=f"uid=u{i},ou=people,dc=example,dc=org",
                username=f"u{i}",
                email=f"u{i}@example.org",
                name=f"User {i}",
            )
            for i in range(users)
        ),
        groups=(),
    )
    planned = plan_run(
        mirror=Mirror(),
        reading=Reading(snapshot=snapshot),
        current=OrganizationState(name="bench"),
        rules=SyncRules(),
    )
    with tempfile.TemporaryDirectory(prefix="dirsync-store-bench-") as tmp:
        store = SqlStore.open(url or f"sqlite:///{Path(tmp) / 'store.db'}")
        try:
            started, cpu = time.perf_counter(), time.process_time()
            apply_first_sync(store, planned)
            applied, applied_cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            store.load("bench")
            loaded = time.perf_counter() - started
        finally:
            store.close()
    return StoreFigures(
        invites=len(planned.plan.invite),
        apply_seconds=applied,
        load_seconds=loaded,
        apply_cpu_seconds=applied_cpu,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def main() -> None:
    import argparse
    import itertools

    from dirsync.testing.postgres import Postgres

    parser = argparse.ArgumentParser(
        description="SQLite and PostgreSQL, one apply each, alternating"
    )
    parser.add_argument("users", type=int, nargs="?", default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    databases = itertools.count(1)
    print("| store | round | apply wall s | apply CPU s | load s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with Postgres() as server:
        for round_number in range(1, args.rounds + 1):
            for name in ("sqlite", "postgresql"):
                url = (
                    server.create_database(f"bench_{next(databases)}") if name != "sqlite" else None
                )
                figures = run(args.users, url)
                print(
                    f"| {name} | {round_number} | {figures.apply_seconds:.2f} | "
                    f"{figures.apply_cpu_seconds:.2f} | {figures.load_seconds:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
