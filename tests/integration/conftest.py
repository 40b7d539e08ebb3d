"""Fixtures for tests against a real slapd on 127.0.0.1.

``slapd``     one server for the whole session (fails, never skips, if it cannot start);
``ldap_tree`` a fresh ``ou=t<N>`` subtree per test with ``ou=People`` and ``ou=Groups``,
              plus LDIF builders and a settings factory pointing at that subtree;
``limited_account`` a service account whose searches slapd cuts off (olcLimits).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dirsync.connectors.base import ProgressCallback
from dirsync.connectors.ldap.connector import LdapConnector
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.model import Reading
from dirsync.testing.slapd import Slapd, SlapdError

SUFFIX = "dc=example,dc=org"
#: an account whose searches slapd cuts off after LIMITED_SIZE entries (olcLimits)
LIMITED_DN = f"cn=limited,{SUFFIX}"
LIMITED_PASSWORD = "limited-secret"
LIMITED_SIZE = 7

_counter = itertools.count(1)


@dataclass(frozen=True)
class LimitedAccount:
    """A service account whose searches slapd cuts off after ``size`` entries."""

    dn: str
    password: str
    size: int


@pytest.fixture(scope="session")
def limited_account() -> LimitedAccount:
    return LimitedAccount(dn=LIMITED_DN, password=LIMITED_PASSWORD, size=LIMITED_SIZE)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    server = Slapd(
        suffix=SUFFIX,
        anonymous_read=True,
        limits=[f'dn.exact="{LIMITED_DN}" size={LIMITED_SIZE}'],
    )
    try:
        server.load_ldif_offline(
            f"dn: {LIMITED_DN}\nobjectClass: organizationalRole\n"
            f"objectClass: simpleSecurityObject\ncn: limited\n"
            f"userPassword: {LIMITED_PASSWORD}\n"
        )
        server.start()
    except (SlapdError, OSError) as exc:
        server.stop()
        pytest.fail(f"the test slapd could not start: {exc}", pytrace=False)
    yield server
    server.stop()


class LdapTree:
    """One test's own subtree: ``ou=t<N>,<suffix>`` with People and Groups below it."""

    def __init__(self, server: Slapd, base_dn: str, tmp_path: Path) -> None:
        self.server = server
        self.base_dn = base_dn
        self.people = f"ou=People,{base_dn}"
        self.groups = f"ou=Groups,{base_dn}"
        self.tmp_path = tmp_path

    def add(self, *records: str) -> None:
        """Add LDIF records online, all in one ldapadd."""
        self.server.add_ldif("\n".join(r.strip() + "\n" for r in records))

    def person(
        self,
        uid: str,
        *,
        rdn: str | None = None,
        cn: str | None = None,
        mail: str | list[str] | None = "default",
        display_name: str | None = None,
        extra: dict[str, str | list[str]] | None = None,
    ) -> str:
        """LDIF for an inetOrgPerson under People; ``rdn`` overrides ``uid=<uid>``."""
        dn = f"{rdn or 'uid=' + _escape_rdn_value(uid)},{self.people}"
        attributes: dict[str, Any] = {
            "objectClass": "inetOrgPerson",
            "uid": uid,
            "cn": cn or uid,
            "sn": uid,
        }
        if mail == "default":
            attributes["mail"] = f"{uid}@example.org"
        elif mail is not None:
            attributes["mail"] = mail
        if display_name is not None:
            attributes["displayName"] = display_name
        attributes.update(extra or {})
        return ldif_record(dn, attributes)

    def group(
        self, cn: str, members: list[str], *, rdn: str | None = None, unique: bool = False
    ) -> str:
        """LDIF for a groupOfNames (or groupOfUniqueNames) under Groups."""
        dn = f"{rdn or 'cn=' + _escape_rdn_value(cn)},{self.groups}"
        if unique:
            attributes: dict[str, Any] = {"objectClass": "groupOfUniqueNames", "cn": cn}
            attributes["uniqueMember"] = members or [self.base_dn]
        else:
            attributes = {"objectClass": "groupOfNames", "cn": cn}
            # groupOfNames needs a member; the subtree's base stands in for "nobody"
            attributes["member"] = members or [self.base_dn]
        return ldif_record(dn, attributes)

    def user_dn(self, uid: str) -> str:
        return f"uid={_escape_rdn_value(uid)},{self.people}"

    def group_dn(self, cn: str) -> str:
        return f"cn={_escape_rdn_value(cn)},{self.groups}"

    def settings(self, **overrides: Any) -> LdapSourceSettings:
        """Settings for this subtree, bound as the read-only service account by default."""
        data: dict[str, Any] = {
            "type": "ldap",
            "url": self.server.url,
            "base_dn": self.base_dn,
            "user_path": "ou=People",
            "group_path": "ou=Groups",
            "bind_dn": self.server.reader_dn,
            "bind_password": self.server.reader_password,
            "allow_plain_ldap": True,  # the connector's tests: TLS has its own
            "timeout": "10s",
        }
        data.update(overrides)
        if data.get("bind_dn") is None:
            data.pop("bind_password", None)
        return LdapSourceSettings.model_validate(data, context={"base_dir": self.tmp_path})

    def read(self, *, progress: ProgressCallback | None = None, **overrides: Any) -> Reading:
        connector = LdapConnector(self.settings(**overrides), organization="acme")
        try:
            return connector.read(None, progress=progress)
        finally:
            connector.close()

    def entry_uuid(self, dn: str) -> str:
        with self.server.connection() as conn:
            conn.search(dn, "(objectClass=*)", "BASE", attributes=["entryUUID"])
            return str(conn.response[0]["raw_attributes"]["entryUUID"][0].decode())


@pytest.fixture
def ldap_tree(slapd: Slapd, tmp_path: Path) -> Iterator[LdapTree]:
    """A fresh, empty subtree of the session's slapd for this test alone."""
    name = f"t{next(_counter)}"
    base_dn = f"ou={name},{slapd.base_dn}"
    tree = LdapTree(slapd, base_dn, tmp_path)
    slapd.add_ldif(
        f"dn: {base_dn}\nobjectClass: organizationalUnit\nou: {name}\n\n"
        f"dn: {tree.people}\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: {tree.groups}\nobjectClass: organizationalUnit\nou: Groups\n"
    )
    yield tree
    # left in place: every test has its own subtree, and the server dies with the session


def ldif_record(dn: str, attributes: dict[str, Any]) -> str:
    lines = [_ldif_line("dn", dn)]
    for key, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(_ldif_line(key, item))
    return "\n".join(lines) + "\n"


def _ldif_line(key: str, value: str | bytes) -> str:
    """``key: value``, or ``key:: base64`` when LDIF requires it (RFC 2849)."""
    if isinstance(value, bytes):
        return f"{key}:: {base64.b64encode(value).decode()}"
    safe = value.isascii() and value == value.strip() and not value.startswith((":", "<"))
    if safe and "\n" not in value and "\r" not in value:
        return f"{key}: {value}"
    return f"{key}:: {base64.b64encode(value.encode()).decode()}"


def _escape_rdn_value(value: str) -> str:
    """RFC 4514 escaping for a value written into a DN."""
    out = []
    for index, char in enumerate(value):
        if (
            char in '\\,+"<>;='
            or (index == 0 and char in "# ")
            or (index == len(value) - 1 and char == " ")
        ):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
