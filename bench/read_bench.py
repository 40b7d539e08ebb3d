"""Raw read speed: the users and groups searches of a 100k directory, entries only (no
conversion, no store), through dirsync's transport over plain LDAP, LDAPS and StartTLS.

    .venv/bin/python -m bench.read_bench [users]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.ldap_bench import Bench, Scenario
from dirsync.connectors.ldap.session import LdapSession


def main(users: int) -> None:
    bench = Bench(Scenario(users=users, groups=users // 10), Path(tempfile.mkdtemp()))
    bench.start()
    try:
        s = bench.slapd
        plain = bench.source_settings()
        tls = {"ca_file": s.ca_file}
        for name, settings in (
            ("ldap", plain),
            ("ldaps", plain.model_copy(update={"url": s.ldaps_url, **tls})),
            ("start_tls", plain.model_copy(update={"start_tls": True, **tls})),
        ):
            session = LdapSession(settings, organization="bench")
            session.open()
            started, cpu = time.perf_counter(), time.process_time()
            count = sum(
                1
                for base, flt, attrs in (
                    ("ou=People", "(objectClass=inetOrgPerson)", ["entryUUID", "uid", "mail",
                                                                  "displayName", "cn"]),
                    ("ou=Groups", "(objectClass=groupOfNames)", ["entryUUID", "cn", "member"]),
                )
                for _ in session.paged_search(f"{base},{s.base_dn}", flt, attrs, what="read")
            )  # fmt: skip
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            session.close()
            print(f"| {name} | {count:,} | {wall:.2f} | {cpu:.2f} | {count / wall:,.0f} |")
    finally:
        bench.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
