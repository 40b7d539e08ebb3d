"""Raw read speed: the users and groups searches of a 100k directory, entries only (no
conversion, no store), with dirsync's BER reader (ldap_wire) and with ldap3's decoder.

    .venv/bin/python -m bench.read_bench [users]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.ldap_bench import Bench, Scenario
from dirsync.connectors.ldap.session import LdapSession


class Ldap3Session(LdapSession):
    """The same session, decoding with ldap3 (as Active Directory does)."""

    fast = False  # type: ignore[assignment]  # the property, pinned off


def main(users: int) -> None:
    bench = Bench(Scenario(users=users, groups=users // 10), Path(tempfile.mkdtemp()))
    bench.start()
    try:
        s = bench.slapd
        settings = bench.source_settings()
        for name, cls in (("ldap_wire", LdapSession), ("ldap3", Ldap3Session)):
            session = cls(settings, organization="bench")
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
