"""The floor under a first full sync: what its unavoidable parts cost on their own.

Issue 8 asks for a first sync within 5x of ``ldapsearch`` dumping the same entries. Whether
that is reachable does not depend on how well the rest is tuned once the parts no sync can
skip already add up to more. This measures, against one slapd, in one run:

1. the reference: ``ldapsearch`` dumping the users and groups (as ``bench/run``);
2. process start and end: ``dirsync --help``, what every ``dirsync`` command pays;
3. the read alone: the same searches through dirsync's BER reader, entries decoded and
   dropped (no DN normalisation, no ``DirectoryUser``, no planning), the collector paused;
4. the store's writes alone: every row a real first sync wrote, read back from its store and
   inserted again into an empty store by plain ``sqlite3`` ``executemany`` of ready-made tuples
   (no Python per row beyond the driver's binding), with the same pragmas, page cache,
   foreign keys and index rebuilds, in one transaction with its commit;
5. the whole first sync, ``dirsync sync --full --json`` into an empty store.

Each step runs ``--rounds`` times, alternating; the medians are printed.

    .venv/bin/python -m bench.floor 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.ldap_bench import GROUP_ATTRIBUTES, USER_ATTRIBUTES, Bench, Scenario, _dirsync
from bench.measure import run
from dirsync.connectors.ldap.session import LdapSession
from dirsync.state import schema
from dirsync.state.engine import APPLY_CACHE_KIB, BUSY_TIMEOUT_MS
from dirsync.state.sql_store import SqlStore
from dirsync.sync.gcpause import paused_gc


@paused_gc()
def read_entries(bench: Bench) -> int:
    """The users and groups searches, entries decoded by ldap_wire and dropped (the cyclic
    collector paused, as a sync pauses it for its run)."""
    directory = bench.directory
    session = LdapSession(bench.source_settings(), organization="bench")
    session.open()
    try:
        searches = (
            (directory.people, "(objectClass=inetOrgPerson)", USER_ATTRIBUTES),
            (directory.group_ou, "(objectClass=groupOfNames)", GROUP_ATTRIBUTES),
        )
        return sum(
            1
            for base, search_filter, attributes in searches
            for _ in session.paged_search(base, search_filter, list(attributes), what="read")
        )
    finally:
        session.close()


#: the tables a first sync writes, parents first (foreign keys are checked as in the store)
_TABLES = [table for table in schema.Base.metadata.sorted_tables if table.name != "alembic_version"]


def store_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of a synced store, table by table, in the order the sync inserted them."""
    with sqlite3.connect(path) as connection:
        rows = {}
        for table in _TABLES:
            key = ", ".join(c.name for c in table.primary_key.columns)
            rows[table.name] = connection.execute(
                f"SELECT * FROM {table.name} ORDER BY {key}"
            ).fetchall()
    return rows


def replay_writes(rows: dict[str, list[tuple[object, ...]]], workdir: Path) -> float:
    """Insert ``rows`` into an empty store in one transaction; returns the seconds taken from
    BEGIN to the end of the commit (its WAL checkpoint included)."""
    path = workdir / "replay.db"
    for stale in workdir.glob("replay.db*"):
        stale.unlink()
    SqlStore.open(f"sqlite:///{path}").close()  # the schema, as a new store gets it
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            f"busy_timeout = {BUSY_TIMEOUT_MS}",
            "foreign_keys = ON",
            "journal_mode = WAL",
            "synchronous = NORMAL",
            f"cache_size = -{APPLY_CACHE_KIB}",
        ):
            connection.execute(f"PRAGMA {pragma}")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        for name, _ in indexes:  # what the apply rebuilds after a first sync's inserts
            connection.execute(f"DROP INDEX {name}")
        for table in _TABLES:
            if rows[table.name]:
                marks = ", ".join("?" * len(rows[table.name][0]))
                connection.executemany(
                    f"INSERT INTO {table.name} VALUES ({marks})",
                    rows[table.name],
                )
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


def process_start() -> float:
    """``dirsync --help``: the command line imported as for a sync, and the process's end."""
    started = time.perf_counter()
    subprocess.run([_dirsync(), "--help"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users", type=int, nargs="?", default=100_000)
    parser.add_argument("--groups", type=int, help="default: a tenth of the users")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    groups = args.groups if args.groups is not None else args.users // 10
    workdir = Path(tempfile.mkdtemp(prefix="dirsync-floor-"))
    bench = Bench(Scenario(users=args.users, groups=groups), workdir)
    bench.start()
    figures: dict[str, list[float]] = {}
    try:
        store = workdir / "dirsync.db"
        rows: dict[str, list[tuple[object, ...]]] = {}
        for _ in range(args.rounds):
            for stale in workdir.glob("dirsync.db*"):
                if stale.is_file():
                    stale.unlink()
            sync = [_dirsync(), "--config", str(bench.config), "sync", "--json", "--full"]
            measured, _ = run("first sync", sync, env=bench.env)
            steps = {
                "reference ldapsearch": bench.reference().wall,
                "process start and end (dirsync --help)": process_start(),
                "read: BER decoding only": timed(lambda: read_entries(bench)),
            }
            rows = rows or store_rows(store)
            steps["store: the sync's rows by executemany, commit"] = replay_writes(rows, workdir)
            steps["first sync --full --json"] = measured.wall
            for label, seconds in steps.items():
                figures.setdefault(label, []).append(seconds)
    finally:
        bench.stop()
    medians = {label: statistics.median(values) for label, values in figures.items()}
    reference = medians["reference ldapsearch"]
    counts = ", ".join(f"{name} {len(table):,}" for name, table in rows.items() if table)
    print(f"{args.users:,} users, {groups:,} groups; {args.rounds} rounds; rows: {counts}")
    print("| step | runs, s | median s | vs reference |")
    print("| --- | --- | ---: | ---: |")
    for label, values in figures.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {runs} | {medians[label]:.2f} | {medians[label] / reference:.1f}x |")
    floor = sum(
        medians[label]
        for label in (
            "process start and end (dirsync --help)",
            "read: BER decoding only",
            "store: the sync's rows by executemany, commit",
        )
    )
    print(
        f"| floor: start + read + writes | | {floor:.2f} | {floor / reference:.1f}x |\n"
        f"| 5x the reference (the target) | | {5 * reference:.2f} | 5.0x |"
    )


if __name__ == "__main__":
    main()
