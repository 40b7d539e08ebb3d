"""What reading again the groups that name a delta's entries costs (issue 18): the LDAP
connector's syncrepl delta read after 100 changes, with that re-read and without it,
alternating, in one process against one slapd.

    .venv/bin/python -m bench.delta_read [--users N] [--rounds R]

The same cursor is read each time (a delta read does not consume it), so every round reads the
same changes. "without" replaces ``holders.with_holders`` by the identity: the read as it was
before. Prints every round and the medians, and how many groups each delta carried.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

from bench.ldap_bench import Bench, Scenario
from dirsync.connectors.ldap import delta, holders
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.logs import configure
from dirsync.model import Cursor, DirectoryGroup, DirectoryUser


def _without(
    connector: object,
    reader: object,
    users: list[DirectoryUser],
    groups: list[DirectoryGroup],
) -> tuple[list[DirectoryGroup], int]:
    return groups, 0


def _timed(connector: LdapConnector, cursor: Cursor) -> tuple[float, float, int]:
    gc.disable()  # as a sync run does
    started, cpu = time.perf_counter(), time.process_time()
    reading = connector.read(cursor)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.enable()
    assert reading.delta is not None
    return wall, cpu, len(reading.delta.groups)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure("warning")
    bench = Bench(Scenario(users=args.users, groups=args.users // 10), Path(tempfile.mkdtemp()))
    bench.start()
    try:
        settings = bench.source_settings().model_copy(
            update={"user_path": "ou=People", "group_path": "ou=Groups"}
        )
        connector = LdapConnector(settings, organization="bench")
        full = connector.read(None)
        assert full.cursor is not None and full.cursor.kind == "ldap-syncrepl"
        bench.apply_changes()
        results: dict[str, list[tuple[float, float, int]]] = {"without": [], "with": []}
        for _ in range(args.rounds):
            for label in ("without", "with"):
                if label == "without":
                    delta.holders.with_holders = _without  # type: ignore[assignment]
                else:
                    delta.holders.with_holders = holders_with
                wall, cpu, groups = _timed(connector, full.cursor)
                results[label].append((wall, cpu, groups))
                print(f"{label:8} wall {wall:.3f} s  CPU {cpu:.3f} s  groups in the delta {groups}")
        connector.close()
        print(f"\n{args.users:,} users, {args.users // 10:,} groups, 100 changes")
        print("| read | median wall s | median CPU s | groups in the delta |")
        print("| --- | ---: | ---: | ---: |")
        for label, rows in results.items():
            print(
                f"| {label} the re-read | {statistics.median(r[0] for r in rows):.3f} | "
                f"{statistics.median(r[1] for r in rows):.3f} | {rows[0][2]} |"
            )
    finally:
        bench.stop()


holders_with = holders.with_holders

if __name__ == "__main__":
    main()
