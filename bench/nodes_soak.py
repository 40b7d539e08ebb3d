"""The several-nodes soak for minutes: ``dirsync.testing.nodes_soak`` on a slapd and a
PostgreSQL of its own, printing what it did and what it found (exit 1 on a finding).

Three ``dirsync run`` nodes on one PostgreSQL; the client organizations' directories change
while nodes are killed, stopped past ``takeover`` and cut off from the store at random
moments (``--seed`` makes the sequence of choices repeatable; the timing on a loaded machine
is not). Afterwards every organization's store must equal a fresh full sync of its
directory, every run must have a final record, and no organization may have run on two nodes
at once.

    .venv/bin/python -m bench.nodes_soak --minutes 10 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.__main__ import _load, _machine
from dirsync.testing.nodes_soak import NodesSoak, SoakSettings
from dirsync.testing.postgres import Postgres
from dirsync.testing.slapd import Slapd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--organizations", type=int, default=12)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, help="Keep the configs and the nodes' logs in this (new) folder."
    )
    args = parser.parse_args(argv)
    settings = SoakSettings(
        seed=args.seed,
        seconds=args.minutes * 60,
        organizations=args.organizations,
        users=args.users,
        nodes=args.nodes,
    )
    print(f"machine: {_machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, load average {_load()}")
    print(f"command: python -m bench.nodes_soak {' '.join(sys.argv[1:])}")
    began = time.monotonic()
    if args.keep:
        args.keep.mkdir(mode=0o700, parents=True)
    with (
        tempfile.TemporaryDirectory(prefix="dirsync-soak-") as scratch,
        Slapd(suffix="dc=soak,dc=example") as slapd,
        Postgres() as postgres,
    ):
        folder = args.keep or Path(scratch)
        report = NodesSoak(settings, slapd, postgres, folder).run()
    print(f"took {time.monotonic() - began:.0f} s, load average {_load()}")
    for line in report.lines():
        print(line)
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
