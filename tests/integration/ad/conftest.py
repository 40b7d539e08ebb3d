"""Fixtures for tests against a real Samba AD DC on 127.0.0.1.

``samba_dc`` one DC for the whole session (fails, never skips, if it cannot start), with a
             read-only service account ``CN=dirsync-reader,CN=Users`` that may not replicate
             changes (so it gets uSNChanged polling, the Administrator gets DirSync);
``ad_ou``    a fresh ``OU=t<N>`` with ``OU=People`` and ``OU=Groups`` for one test, deleted
             afterwards with the tree-delete control; builders and a settings factory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dirsync.connectors.active_directory.connector import ActiveDirectoryConnector
from dirsync.connectors.active_directory.settings import ActiveDirectorySourceSettings
from dirsync.connectors.active_directory.values import guid_to_str
from dirsync.model import Cursor, Reading
from dirsync.testing.samba import SambaDC, grant_deleted_objects_read, unicode_pwd

READER_PASSWORD = "Reader-Pass-1!"
NORMAL_ACCOUNT = 0x200
PASSWD_NOTREQD = 0x20
ACCOUNTDISABLE = 0x2
DONT_EXPIRE_PASSWORD = 0x10000
#: an enabled user without a password (one without gets 546: disabled)
ENABLED = NORMAL_ACCOUNT | PASSWD_NOTREQD
DISABLED = ENABLED | ACCOUNTDISABLE
EXTENDED_DN_OID = "1.2.840.113556.1.4.529"

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    dc = SambaDC()
    try:
        dc.start()
        with dc.connection() as conn:
            reader = f"CN=dirsync-reader,CN=Users,{dc.base_dn}"
            conn.add(reader, ["user"], {"sAMAccountName": "dirsync-reader"})
            conn.modify(
                reader,
                {
                    "unicodePwd": [("MODIFY_REPLACE", [unicode_pwd(READER_PASSWORD)])],
                    "userAccountControl": [
                        ("MODIFY_REPLACE", [str(NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD)])
                    ],
                },
            )
        # may read tombstones (uSNChanged polling sees deletions), may not replicate (DirSync)
        grant_deleted_objects_read(dc, "dirsync-reader")
        dc.reader_dn = reader  # type: ignore[attr-defined]
    except Exception as exc:  # any failure here is a hard failure of the session, never a skip
        dc.stop()
        pytest.fail(f"the test Samba DC could not start: {exc}", pytrace=False)
    yield dc
    dc.stop()


def filetime(when: datetime) -> int:
    return int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000


class AdOu:
    """One test's own OU: ``OU=t<N>,DC=dirsync,DC=test`` with People and Groups below it."""

    def __init__(self, dc: SambaDC, name: str, tmp_path: Path) -> None:
        self.dc = dc
        self.name = name
        self.dn = f"OU={name},{dc.base_dn}"
        self.people = f"OU=People,{self.dn}"
        self.groups = f"OU=Groups,{self.dn}"
        self.tmp_path = tmp_path
        #: left in place after the test (only for big fixtures: the session's DC is discarded)
        self.keep = False

    # -- building ----------------------------------------------------------------------------

    def user_dn(self, name: str) -> str:
        return f"CN={name},{self.people}"

    def group_dn(self, name: str) -> str:
        return f"CN={name},{self.groups}"

    def sam(self, name: str) -> str:
        """sAMAccountName is unique in the domain: prefixed with the OU's name."""
        return f"{self.name}-{name}"[:20]

    def email(self, name: str) -> str:
        return f"{name}@{self.name}.example"

    def users(self, *names: str, **attributes: Any) -> list[str]:
        """Users in People, enabled and without a password, mail = email(name)."""
        dns = []
        with self.dc.connection() as conn:
            for name in names:
                values: dict[str, Any] = {
                    "sAMAccountName": self.sam(name),
                    "mail": self.email(name),
                    "displayName": name.title(),
                    "userAccountControl": str(ENABLED),
                }
                values.update(attributes)
                values = {k: v for k, v in values.items() if v is not None}
                conn.add(self.user_dn(name), ["user"], values)
                dns.append(self.user_dn(name))
        return dns

    def group(self, name: str, members: list[str]) -> str:
        attributes: dict[str, Any] = {"sAMAccountName": self.sam("g-" + name)}
        if members:
            attributes["member"] = members
        with self.dc.connection() as conn:
            conn.add(self.group_dn(name), ["group"], attributes)
        return self.group_dn(name)

    def set_password(self, dn: str, password: str) -> None:
        with self.dc.connection() as conn:
            conn.modify(dn, {"unicodePwd": [("MODIFY_REPLACE", [unicode_pwd(password)])]})

    def modify(self, dn: str, **changes: Any) -> None:
        with self.dc.connection() as conn:
            conn.modify(dn, {k: [("MODIFY_REPLACE", [str(v)])] for k, v in changes.items()})

    def add_member(self, group_dn: str, member_dn: str) -> None:
        with self.dc.connection() as conn:
            conn.modify(group_dn, {"member": [("MODIFY_ADD", [member_dn])]})

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        with self.dc.connection() as conn:
            conn.modify(group_dn, {"member": [("MODIFY_DELETE", [member_dn])]})

    def delete(self, dn: str) -> None:
        with self.dc.connection() as conn:
            conn.delete(dn)

    def rename(self, dn: str, new_rdn: str) -> str:
        with self.dc.connection() as conn:
            conn.modify_dn(dn, new_rdn)
        return f"{new_rdn},{dn.split(',', 1)[1]}"

    def guid(self, dn: str) -> str:
        """The objectGUID as the DC itself prints it (extended DN control, string format)."""
        with self.dc.connection() as conn:
            conn.search(
                dn,
                "(objectClass=*)",
                "BASE",
                attributes=["objectGUID"],
                controls=[(EXTENDED_DN_OID, False, bytes.fromhex("3003020101"))],
            )
            extended = conn.response[0]["dn"]
            raw = conn.response[0]["raw_attributes"]["objectGUID"][0]
        printed = extended.split(">", 1)[0].removeprefix("<GUID=")
        assert printed == guid_to_str(raw)
        return printed

    # -- reading -----------------------------------------------------------------------------

    def settings(self, *, admin: bool = False, **overrides: Any) -> ActiveDirectorySourceSettings:
        """LDAPS to the DC, verified with its CA, bound as the reader (or the Administrator)."""
        data: dict[str, Any] = {
            "type": "active_directory",
            "url": self.dc.ldaps_url,
            "ca_file": str(self.dc.ca_file),
            "base_dn": self.dn,
            "user_path": "OU=People",
            "group_path": "OU=Groups",
            "bind_dn": self.dc.admin_dn if admin else self.dc.reader_dn,  # type: ignore[attr-defined]
            "bind_password": self.dc.admin_password if admin else READER_PASSWORD,
            "timeout": "20s",
        }
        data.update(overrides)
        return ActiveDirectorySourceSettings.model_validate(
            data, context={"base_dir": self.tmp_path}
        )

    def connector(self, **overrides: Any) -> ActiveDirectoryConnector:
        return ActiveDirectoryConnector(self.settings(**overrides), organization="acme")

    def read(self, cursor: Cursor | None = None, **overrides: Any) -> Reading:
        connector = self.connector(**overrides)
        try:
            return connector.read(cursor)
        finally:
            connector.close()


@pytest.fixture
def ad_ou(samba_dc: SambaDC, tmp_path: Path) -> Iterator[AdOu]:
    name = f"t{next(_counter)}"
    ou = AdOu(samba_dc, name, tmp_path)
    samba_dc.delete_tree(ou.dn)  # a leftover of an interrupted earlier session
    with samba_dc.connection() as conn:
        for dn in (ou.dn, ou.people, ou.groups):
            conn.add(dn, ["organizationalUnit"])
    yield ou
    if not ou.keep:
        samba_dc.delete_tree(ou.dn)
