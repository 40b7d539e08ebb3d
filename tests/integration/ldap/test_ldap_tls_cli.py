"""TLS to an OpenLDAP directory through the command line, as an administrator meets it:
LDAPS and StartTLS, to the server by IP address and by name, verified by Python's ``ssl``
(the same on every supported Python); each certificate problem is exit 1 and one line that
names it, and nothing is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from dirsync.testing.slapd import HOST, Slapd
from tests.integration.conftest import LdapTree
from tests.integration.test_sync_cli import Dirsync


@pytest.fixture
def dirsync(ldap_tree: LdapTree, tmp_path: Path) -> Dirsync:
    return Dirsync(ldap_tree, tmp_path)


@pytest.fixture(scope="module")
def misnamed() -> Iterator[Slapd]:
    """A slapd whose certificate names another host (and not its address)."""
    with Slapd(certificate_names=("dc.other.example",)) as server:
        yield server


@pytest.fixture(scope="module")
def expired() -> Iterator[Slapd]:
    with Slapd(certificate_expired=True) as server:
        yield server


def _url(server: Slapd, mode: str, host: str) -> str:
    if mode == "ldaps":
        return f"ldaps://{host}:{server.ldaps_port}"
    return f"ldap://{host}:{server.port}"


def _use(dirsync: Dirsync, server: Slapd, mode: str, host: str, ca_file: Path) -> None:
    dirsync.set(
        source={
            "url": _url(server, mode, host),
            "start_tls": mode == "start_tls",
            "ca_file": str(ca_file),
        }
    )


def _one_line_failure(dirsync: Dirsync) -> str:
    code, out, err = dirsync.run("sync", "--json")
    assert code == 1, (out, err)
    (result,) = json.loads(out)
    assert result["outcome"] == "failed" and result["plan"]["invite"] == []
    assert "Traceback" not in out + err
    error: str = result["error"]
    assert "\n" not in error and "organization acme" in error
    return error


MODES = ["ldaps", "start_tls"]


@pytest.mark.parametrize("host", [HOST, "localhost"])
@pytest.mark.parametrize("mode", MODES)
def test_tls_by_address_and_by_name_reads_the_directory(
    ldap_tree: LdapTree, dirsync: Dirsync, mode: str, host: str
) -> None:
    ldap_tree.add(ldap_tree.person("alice"))
    _use(dirsync, ldap_tree.server, mode, host, ldap_tree.server.ca_file)

    result = dirsync.sync_json("--dry-run")

    assert result["outcome"] == "dry_run"
    assert [i["email"] for i in result["plan"]["invite"]] == ["alice@example.org"]


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_from_another_ca_is_refused(
    ldap_tree: LdapTree, dirsync: Dirsync, mode: str
) -> None:
    other = dirsync.tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    _use(dirsync, ldap_tree.server, mode, HOST, other)

    error = _one_line_failure(dirsync)

    assert "the server certificate does not verify" in error and "check ca_file" in error


@pytest.mark.parametrize("mode", MODES)
def test_an_expired_certificate_is_refused(expired: Slapd, dirsync: Dirsync, mode: str) -> None:
    _use(dirsync, expired, mode, HOST, expired.ca_file)

    error = _one_line_failure(dirsync)

    assert "the server certificate has expired" in error


@pytest.mark.parametrize("host", [HOST, "localhost"])
@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_for_another_name_is_refused(
    misnamed: Slapd, dirsync: Dirsync, mode: str, host: str
) -> None:
    _use(dirsync, misnamed, mode, host, misnamed.ca_file)

    error = _one_line_failure(dirsync)

    assert f"the server certificate does not name {host}" in error


def test_without_verification_any_certificate_is_taken(misnamed: Slapd, dirsync: Dirsync) -> None:
    # tls_verify = false: the documented escape hatch, still encrypted
    dirsync.set(source={"url": _url(misnamed, "ldaps", HOST), "tls_verify": False})
    code, out, err = dirsync.run("sync", "--dry-run", "--json")
    # the TLS handshake passes; the bind then fails: this server has no such account
    (result,) = json.loads(out)
    assert code == 1 and "certificate" not in result["error"], (out, err)
    assert "refused the bind" in result["error"]
