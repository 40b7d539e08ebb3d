"""The LDAP connector's full read (``connector.read(None)``) against the bench directory,
timed in child processes, so two source trees can be compared back to back on one slapd.

    .venv/bin/python -m bench.connector_read [--users N] [--repeat R] [--profile OUT] TREE...

Each TREE is a directory holding a ``dirsync`` package (a worktree, or a ``git archive`` of
an older commit); every repeat runs each tree once, in turn. A child prints its wall and CPU
seconds and a digest of the snapshot, so the trees must agree on what they read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: run in the child as ``python -c``: imports ``dirsync`` from the tree on PYTHONPATH
CHILD = r"""
import cProfile, hashlib, json, resource, sys, time
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.connectors.ldap.connector import LdapConnector

settings = LdapSourceSettings.model_validate(json.loads(sys.argv[1]))
connector = LdapConnector(settings, organization="bench")
profile = cProfile.Profile() if sys.argv[2] else None
import gc; gc.disable()  # as a sync run does (dirsync/sync/gcpause.py)
started, cpu = time.perf_counter(), time.process_time()
if profile: profile.enable()
reading = connector.read(None)
if profile: profile.disable()
wall, cpu = time.perf_counter() - started, time.process_time() - cpu
snapshot = reading.snapshot
digest = hashlib.sha256()
for user in snapshot.users:
    digest.update(repr(user).encode())
for group in snapshot.groups:
    digest.update(repr((group.external_id, group.ref, group.name,
                        sorted(group.member_refs))).encode())
digest.update(repr((reading.entries_read, reading.warnings)).encode())
if profile: profile.dump_stats(sys.argv[2])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "cpu": cpu, "entries": reading.entries_read, "rss": rss,
                  "digest": digest.hexdigest()[:16]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="", help="cProfile output (first tree, once)")
    args = parser.parse_args()

    from bench.ldap_bench import Bench, Scenario

    bench = Bench(Scenario(users=args.users, groups=args.users // 10), Path(tempfile.mkdtemp()))
    bench.start()
    try:
        s = bench.slapd
        settings = {
            "type": "ldap",
            "url": s.url,
            "bind_dn": s.reader_dn,
            "bind_password": s.reader_password,
            "allow_plain_ldap": True,  # measured without TLS, as bench/RESULTS.md has been
            "base_dn": s.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "disabled_filter": "(employeeType=disabled)",
            "page_size": 1000,
        }
        if args.profile:
            _child(args.trees[0], settings, args.profile)
            return
        print("| tree | wall s | CPU s | entries/s | peak RSS MB | digest |")
        for _ in range(args.repeat):
            for tree in args.trees:
                got = _child(tree, settings, "")
                rate = got["entries"] / got["wall"]
                print(
                    f"| {tree} | {got['wall']:.2f} | {got['cpu']:.2f} | {rate:,.0f} "
                    f"| {got['rss']:.0f} | {got['digest']} |",
                    flush=True,
                )
    finally:
        bench.stop()


def _child(tree: Path, settings: dict[str, object], profile: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(settings), profile],
        env=env,
        cwd=tree.resolve(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
