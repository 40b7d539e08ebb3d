"""A/B of the LDAP receive loop: an older revision's ``client.py`` against the working tree's,
alternating, on one slapd and one session (the searches of ``read_bench``: entries only).

The older ``client.py`` is loaded from git under another module name and its ``Connection``
replaces the session's after the bind, so only the receive loop and its buffer differ.

    .venv/bin/python -m bench.receive_ab main [users] [rounds]
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bench.ldap_bench import Bench, Scenario
from dirsync.connectors.ldap import client
from dirsync.connectors.ldap.session import LdapSession

REPO = Path(__file__).resolve().parent.parent
SEARCHES = (
    ("ou=People", "(objectClass=inetOrgPerson)", ["entryUUID", "uid", "mail", "displayName", "cn"]),
    ("ou=Groups", "(objectClass=groupOfNames)", ["entryUUID", "cn", "member"]),
)


def _old_client(revision: str, directory: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:dirsync/connectors/ldap/client.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / "old_client.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_client"] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def _read(session: LdapSession, base_dn: str) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    count = sum(
        1
        for base, flt, attrs in SEARCHES
        for _ in session.paged_search(f"{base},{base_dn}", flt, attrs, what="read")
    )
    return count, time.perf_counter() - started, time.process_time() - cpu


def main(revision: str, users: int, rounds: int) -> None:
    workdir = Path(tempfile.mkdtemp())
    old = _old_client(revision, workdir)
    bench = Bench(Scenario(users=users, groups=users // 10), workdir)
    bench.start()
    try:
        settings = bench.source_settings()
        times: dict[str, list[tuple[float, float]]] = {revision: [], "working tree": []}
        for _ in range(rounds):
            for name in times:
                session = LdapSession(settings, organization="bench")
                session.open()  # the working tree's connection, with its deadline
                if name == revision:
                    conn = session.conn
                    assert conn is not None
                    old_conn = old.Connection(conn.sock)
                    session.conn = old_conn  # the same bound socket, read by the old loop
                count, wall, cpu = _read(session, bench.slapd.base_dn)
                session.close()
                times[name].append((wall, cpu))
                print(f"{name}: {count:,} entries, {wall:.3f} s wall, {cpu:.3f} s CPU", flush=True)
        print(f"\nmedians over {rounds} rounds ({users:,} users, {users // 10:,} groups):")
        for name, runs in times.items():
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"| {name} | {wall:.3f} s | {cpu:.3f} s |")
    finally:
        bench.stop()
    assert client.Connection is not old.Connection


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else 50_000,
        int(sys.argv[3]) if len(sys.argv) > 3 else 6,
    )
