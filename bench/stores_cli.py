"""The CLI's first sync and no-change sync on SQLite and on PostgreSQL, side by side.

One slapd holds one generated directory (``bench.generate``); each round runs, for SQLite and
then PostgreSQL, ``dirsync sync --full`` into an empty store and a no-change ``dirsync sync``
after it. Then the directory takes 100 changes and the last store of each kind syncs them.
CPU is dirsync's own (the process's rusage); PostgreSQL's server work is not in it.

    .venv/bin/python -m bench.stores_cli --users 100000 --groups 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import sys
import tempfile
from pathlib import Path

from bench.__main__ import _machine
from bench.ldap_bench import Bench, Scenario
from bench.measure import Measurement
from dirsync.testing.postgres import Postgres

STORES = ("sqlite", "postgresql")


def _use_store(bench: Bench, url: str) -> None:
    """Point the bench's config at ``url`` (the rest of the config unchanged): the first
    ``url`` of the config is its ``[store]``'s."""
    text = bench.config.read_text(encoding="utf-8")
    changed, found = re.subn(r'(?m)^url = "[^"]*"$', f'url = "{url}"', text, count=1)
    if not found or not text.startswith("[store]"):
        raise SystemExit("bench.stores_cli: the bench's config no longer starts with [store]")
    bench.config.write_text(changed, encoding="utf-8")


def _row(store: str, measured: Measurement) -> str:
    return f"| {store} | {measured.row()[2:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="dirsync-bench-stores-"))
    bench = Bench(Scenario(users=args.users, groups=args.groups), workdir)
    databases = itertools.count(1)
    print(_machine(), file=sys.stderr)
    print("| store | step | wall s | CPU s | peak RSS MB | entries read | | outcome |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    try:
        with Postgres() as server:
            bench.start()
            last: dict[str, str] = {}
            for round_number in range(1, args.rounds + 1):
                for store in STORES:
                    if store == "sqlite":
                        url = f"sqlite:///{workdir / f'store-{round_number}.db'}"
                    else:
                        url = server.create_database(f"bench_{next(databases)}")
                    last[store] = url
                    _use_store(bench, url)
                    for label, flags in (
                        (f"round {round_number}: first sync --full (empty store)", ("--full",)),
                        (f"round {round_number}: no-change sync", ()),
                    ):
                        print(_row(store, bench.sync(label, *flags)), flush=True)
            bench.apply_changes()
            for store in STORES:
                _use_store(bench, last[store])
                print(_row(store, bench.sync("sync after 100 changes")), flush=True)
    finally:
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
