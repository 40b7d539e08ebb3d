"""The store's part of a first sync: one apply of users AND groups into an empty SQLite store.

``store_bench`` applies invites only; a first sync of the benchmark directory also creates its
groups, their member edges and the mirror's groups and edges, about half of the store's
writes. The plan comes from the real pipeline over ``generate.Directory``'s users and groups
(the same membership as the LDAP benchmark, without slapd), so the apply writes what
``dirsync sync --full`` writes into an empty store.

    python -m bench.first_sync_apply 100000 10000          # apply time, CPU, RSS, file size
    python -m bench.first_sync_apply 20000 2000 --no-apply # the setup alone (for callgrind:
                                                           # subtract it from a full run)
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.generate import Directory, entry_uuid
from bench.store_bench import apply_first_sync
from dirsync.mapping.pipeline import PlannedRun, plan_run
from dirsync.model import DirectoryGroup, DirectorySnapshot, DirectoryUser, Mirror, Reading
from dirsync.organization import OrganizationState
from dirsync.rules import SyncRules
from dirsync.state.sql_store import SqlStore


def snapshot(users: int, groups: int) -> DirectorySnapshot:
    directory = Directory(users=users, groups=groups)
    directory._assign()  # the seeded membership the LDAP benchmark's LDIF holds
    return DirectorySnapshot(
        users=tuple(
            DirectoryUser(
                external_id=entry_uuid("user", n),
                ref=directory.user_dn(n),
                username=f"u{n:06d}",
                email=f"u{n:06d}@example.org",
                name=f"User {n}",
            )
            for n in range(users)
        ),
        groups=tuple(
            DirectoryGroup(
                external_id=entry_uuid("group", g),
                ref=directory.group_dn(g),
                name=f"g{g:05d}",
                member_refs=frozenset(
                    [directory.user_dn(u) for u in directory.membership.get(g, [])]
                    + ([directory.group_dn(directory.nested[g])] if g in directory.nested else [])
                ),
            )
            for g in range(groups)
        ),
    )


def planned(users: int, groups: int) -> PlannedRun:
    return plan_run(
        mirror=Mirror(),
        reading=Reading(snapshot=snapshot(users, groups)),
        current=OrganizationState(name="bench"),
        rules=SyncRules(),
    )


def _memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (the peak since the last reset) of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _io() -> dict[str, int]:
    """This process's read/write syscalls and bytes so far (Linux): steady where wall time is
    not, and they show what a page cache saves (spills to the WAL and reads back)."""
    fields = (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {key: int(value) for key, value in fields}


def _reset_peak() -> None:
    """Linux: let VmHWM restart from the current RSS, so it shows the apply's own peak."""
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users", type=int, nargs="?", default=100_000)
    parser.add_argument("groups", type=int, nargs="?", default=10_000)
    parser.add_argument("--no-apply", action="store_true", help="build the plan only")
    parser.add_argument("--keep", type=Path, help="leave the store file at this path")
    args = parser.parse_args()
    run = planned(args.users, args.groups)
    if args.no_apply:
        return
    with tempfile.TemporaryDirectory(prefix="dirsync-apply-bench-") as tmp:
        path = args.keep or Path(tmp) / "store.db"
        store = SqlStore.open(f"sqlite:///{path}")
        rss_before = _memory_mb("VmRSS")
        _reset_peak()
        try:
            usage, io = resource.getrusage(resource.RUSAGE_SELF), _io()
            started = time.perf_counter()
            apply_first_sync(store, run)
            wall, done = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
            io = {key: value - io[key] for key, value in _io().items()}
        finally:
            store.close()
        with sqlite3.connect(path) as connection:
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            size = pages * connection.execute("PRAGMA page_size").fetchone()[0]
        peak = _memory_mb("VmHWM")
        print(
            f"invites {len(run.plan.invite)} groups {len(run.plan.create_groups)}: "
            f"apply {wall:.2f} s wall, {done.ru_utime - usage.ru_utime:.2f} s user, "
            f"{done.ru_stime - usage.ru_stime:.2f} s system; "
            f"RSS {rss_before:.0f} MB before the apply, "
            f"peak during it {peak:.0f} MB (+{peak - rss_before:.0f}); "
            f"store {size / 2**20:.1f} MB; "
            f"I/O {io['syscr']} reads {io['rchar'] / 2**20:.0f} MB, "
            f"{io['syscw']} writes {io['wchar'] / 2**20:.0f} MB"
        )


if __name__ == "__main__":
    main()
