"""Faults injected for real: a directory that dies, limits, bad credentials, canary secrets.

The promise under test: a read that did not finish changes nothing (no one is removed or
revoked), every failure is one line naming the organization and the cause, and no secret
reaches any output, log line or database row.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from dirsync.config.settings import OrganizationSettings, parse_config
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.dn import escape_filter_value
from dirsync.plan import Outcome
from dirsync.state.sql_store import SqlStore
from dirsync.sync.run import run_organization
from dirsync.testing.fault_proxy import FaultProxy, Mode, silent_listener
from dirsync.testing.slapd import Slapd
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync, company

CANARY = "canary-Secret-91b3"


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    return Dirsync(ldap_tree, tmp_path)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with silent_listener() as port:
        yield port


def _org_with_people(
    server: Slapd, tmp_path: Path, people: int, **source: object
) -> tuple[OrganizationSettings, str]:
    server.add_ldif(
        f"dn: ou=People,{server.base_dn}\nobjectClass: organizationalUnit\nou: People\n\n"
        + "".join(
            f"dn: uid=u{i:03},ou=People,{server.base_dn}\nobjectClass: inetOrgPerson\n"
            f"uid: u{i:03}\ncn: U {i}\nsn: U\nmail: u{i:03}@example.org\n\n"
            for i in range(people)
        )
    )
    raw = {
        "store": {"url": f"sqlite:///{tmp_path}/dirsync.db"},
        "organization": [
            {
                "name": "acme",
                "source": {
                    "type": "ldap",
                    "url": server.url,
                    "base_dn": server.base_dn,
                    "user_path": "ou=People",
                    "bind_dn": server.reader_dn,
                    "bind_password": server.reader_password,
                    "allow_plain_ldap": True,  # plain: the fault proxy cuts the LDAP itself
                    "timeout": "5s",
                    "incremental": "off",  # these tests break complete reads
                    **source,
                },
                "sync": {"overwrite_existing": True, "max_removals": "100%"},
            }
        ],
    }
    config = parse_config(raw, base_dir=tmp_path)
    return config.organization[0], config.store.url


def _members(store: SqlStore) -> dict[str, str]:
    return {m.email: m.status for m in store.members("acme")}


def test_a_directory_killed_mid_read_fails_the_run_says_where_and_removes_no_one(
    tmp_path: Path,
) -> None:
    with Slapd() as server:
        org, url = _org_with_people(server, tmp_path, 40, page_size=10)
        with SqlStore.open(url) as store:
            first = run_organization(
                "acme", org.rules(), LdapConnector(org.source, organization="acme"), store
            )
            assert first.outcome == Outcome.APPLIED and len(_members(store)) == 40
            # computed once for the run record and the JSON, and it is the plan's
            assert first.plan_digest == first.plan.digest()
            assert store.last_runs()["acme"].plan_digest == first.plan_digest
            before = _members(store)

            def kill_after_the_first_page(entries: int) -> None:
                if entries >= 10 and server.pid is not None:
                    os.kill(server.pid, signal.SIGKILL)

            connector = LdapConnector(org.source, organization="acme")
            result = run_organization(
                "acme", org.rules(), connector, store, progress=kill_after_the_first_page
            )
            connector.close()
            assert result.outcome == Outcome.FAILED
            assert result.error is not None and "\n" not in result.error
            # the second page is asked for before the first is handed on (the server reads
            # it while the first is converted), so it may have arrived before the kill
            assert "acme" in result.error
            assert re.search(r"after (10|20) entries", result.error)
            assert result.plan.is_empty
            assert _members(store) == before
            (last,) = [r for name, r in store.last_runs().items() if name == "acme"]
            assert last.outcome == Outcome.FAILED


def test_a_server_size_limit_fails_the_run_instead_of_shrinking_the_directory(
    tmp_path: Path,
) -> None:
    with Slapd(size_limit=15) as server:
        org, url = _org_with_people(server, tmp_path, 25, page_size=10)
        with SqlStore.open(url) as store:
            connector = LdapConnector(org.source, organization="acme")
            result = run_organization("acme", org.rules(), connector, store)
            connector.close()
            assert result.outcome == Outcome.FAILED
            assert result.error is not None and "size limit" in result.error
            assert "nothing was changed" in result.error
            assert _members(store) == {}


def _one_line_failure(dirsync: Dirsync) -> str:
    code, out, err = dirsync.run("sync", "--json")
    assert code == 1, (out, err)
    (result,) = json.loads(out)
    assert result["outcome"] == "failed" and result["plan"]["invite"] == []
    assert "Traceback" not in out + err
    error: str = result["error"]
    assert "\n" not in error and "acme" in error
    return error.lower()


def test_a_closed_port_is_exit_1_naming_the_organization_and_the_cause(dirsync: Dirsync) -> None:
    dirsync.set(source={"url": "ldaps://127.0.0.1:1", "timeout": "2s"})
    error = _one_line_failure(dirsync)
    assert "127.0.0.1:1" in error and ("refused" in error or "unreachable" in error)


def test_a_silent_server_is_exit_1_with_a_timeout(dirsync: Dirsync, silent_port: int) -> None:
    dirsync.set(source={"url": f"ldaps://127.0.0.1:{silent_port}", "timeout": "1s"})
    error = _one_line_failure(dirsync)
    assert "timed out" in error or "timeout" in error or "no answer" in error


def test_a_certificate_from_another_ca_is_exit_1_naming_tls(dirsync: Dirsync) -> None:
    other = dirsync.tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    dirsync.set(source={"url": dirsync.tree.server.ldaps_url, "ca_file": str(other)})
    assert "certificate" in _one_line_failure(dirsync)


def test_a_wrong_password_is_exit_1_naming_the_bind(dirsync: Dirsync) -> None:
    dirsync.set(source={"bind_password": CANARY})
    error = _one_line_failure(dirsync)
    assert "bind" in error or "credentials" in error
    assert CANARY.lower() not in error


def test_a_canary_secret_never_reaches_output_logs_or_the_database(
    dirsync: Dirsync, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every command, debug logging on, success and failure: grep everything for the canary."""
    company(dirsync.tree)
    password_file = dirsync.tmp_path / "bind.secret"
    password_file.write_text(dirsync.tree.server.reader_password)
    text = dirsync.config.read_text().replace("[store]", '[logging]\nlevel = "debug"\n\n[store]')
    dirsync.config.write_text(text)
    outputs: list[str] = []

    def run(*args: str) -> None:
        # success or failure alike: only what they print matters here
        _code, out, err = dirsync.run(*args)
        outputs.extend([out, err])

    # the real password as the canary: it must work and still never show
    del dirsync.source["bind_password"]
    dirsync.set(source={"bind_password_file": str(password_file)})
    secret = dirsync.tree.server.reader_password
    for args in (
        ("sync",),
        ("sync", "--json"),
        ("sync", "--dry-run", "--json"),
        ("test", "--json"),
        ("test",),
        ("status",),
        ("status", "--json"),
        ("members", "--org", "acme", "--json"),
        ("groups", "--org", "acme"),
        ("config", "check", "--json"),
    ):
        run(*args)
    # and a wrong one, which fails
    del dirsync.source["bind_password_file"]
    dirsync.set(source={"bind_password": CANARY})
    run("sync", "--json")
    run("test")
    captured = capfd.readouterr()
    everything = "\n".join([*outputs, captured.out, captured.err])
    assert "sync.applied" in everything  # the debug logs were captured too
    assert "invalid credentials" in everything  # and so was the failure
    for canary in (secret, CANARY):
        assert canary not in everything
        for path in dirsync.db.parent.rglob("*"):
            assert path.is_dir() or canary.encode() not in path.read_bytes(), path


def test_values_that_reach_a_filter_cannot_widen_the_search(ldap_tree: LdapTree) -> None:
    tree = ldap_tree
    hostile = "*)(objectClass=*"
    tree.add(
        tree.person("alice"),
        tree.person("bob"),
        tree.person("a*b", rdn="uid=a\\2Ab"),
        tree.group(hostile, [tree.user_dn("alice")]),
    )
    for overrides in (
        {"user_object_class": hostile},
        {"user_object_class": "inetOrgPerson)(|(uid=*"},
        {"group_object_class": "groupOfNames)(|(cn=*"},
    ):
        snapshot = tree.read(**overrides).snapshot
        assert snapshot is not None
        widened = snapshot.users if "user_object_class" in overrides else snapshot.groups
        assert widened == (), overrides

    snapshot = tree.read().snapshot
    assert snapshot is not None
    (group,) = snapshot.groups
    alice = next(u for u in snapshot.users if u.username == "alice")
    assert group.name == hostile and group.member_refs == frozenset({alice.ref})
    assert {u.username for u in snapshot.users} == {"alice", "bob", "a*b"}

    # the escaping every connector uses for values in filters, checked by the server itself
    star_dn = f"uid=a\\2Ab,{tree.people}"
    tree.add(tree.group("Stars", [star_dn]))
    with tree.server.connection() as conn:
        for value, expected in (("*", []), (hostile, [hostile]), ("Star*", [])):
            conn.search(tree.groups, f"(cn={escape_filter_value(value)})", attributes=["cn"])
            found = [e["raw_attributes"]["cn"][0].decode() for e in conn.response]
            assert found == expected, value
        conn.search(tree.groups, f"(member={escape_filter_value(star_dn)})", attributes=["cn"])
        assert [e["raw_attributes"]["cn"][0] for e in conn.response] == [b"Stars"]


@pytest.mark.parametrize(
    ("mode", "cause"), [("reset", "broke off"), ("stall", "broke off")], ids=["reset", "stall"]
)
def test_a_connection_broken_in_the_middle_of_a_page_fails_the_run_and_removes_no_one(
    tmp_path: Path, mode: Mode, cause: str
) -> None:
    with Slapd() as server:
        org, url = _org_with_people(server, tmp_path, 60, page_size=25)
        with SqlStore.open(url) as store:
            connector = LdapConnector(org.source, organization="acme")
            assert run_organization("acme", org.rules(), connector, store).outcome == "applied"
            connector.close()
            before = _members(store)
            # past the bind and the first page, inside the second page's entries
            with FaultProxy(server.port, after=6_000, mode=mode) as proxy:
                settings = org.source.model_copy(
                    update={"url": proxy.url, "timeout": timedelta(seconds=2)}
                )
                connector = LdapConnector(settings, organization="acme")
                result = run_organization("acme", org.rules(), connector, store)
                connector.close()
            assert proxy.broken == 1
            assert result.outcome == Outcome.FAILED and result.plan.is_empty
            assert result.error is not None and cause in result.error
            assert "acme" in result.error and "\n" not in result.error
            assert _members(store) == before
