"""``incremental = "auto"`` follows what the connector declares, never what class it is.

A connector with delta reads of its own (Active Directory) declares ``generic_incremental =
False``: auto then reads in full, without a cursor of LDAP's mechanisms. The settings here
name an external id other than entryUUID, so auto never asks the server about syncrepl and
no session is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import pytest

from dirsync.connectors.ldap import delta as ldap_delta
from dirsync.connectors.ldap.reader import LdapReader
from dirsync.connectors.ldap.session import RawEntry
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.model import DirectoryGroup, DirectorySnapshot, DirectoryUser


class _Source:
    generic_incremental: ClassVar[bool] = True

    def read_complete(self, reader: LdapReader) -> tuple[DirectorySnapshot, int]:
        return DirectorySnapshot(users=(), groups=()), 0

    def disabled_ids(self, reader: LdapReader, narrow: str = "") -> set[str]:
        return set()

    def user_attributes(self) -> list[str]:
        return []

    def group_attributes(self) -> list[str]:
        return []

    def users_from(
        self, reader: LdapReader, entries: Iterable[RawEntry], disabled_ids: set[str]
    ) -> list[DirectoryUser]:
        return []

    def groups_from(self, reader: LdapReader, entries: Iterable[RawEntry]) -> list[DirectoryGroup]:
        return []


class _OwnDeltas(_Source):
    generic_incremental: ClassVar[bool] = False


def _reader() -> LdapReader:
    settings = LdapSourceSettings.model_validate(
        {
            "type": "ldap",
            "url": "ldaps://127.0.0.1:636",
            "base_dn": "dc=example,dc=org",
            "external_id_attribute": "uid",
        },
        context={"base_dir": Path(".")},
    )
    return LdapReader(settings, None, None, decode_id=str)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "kind"),
    [(_Source(), ldap_delta.TIMESTAMP_KIND), (_OwnDeltas(), None)],
)
def test_auto_uses_the_ldap_mechanisms_only_for_a_connector_that_declares_them(
    source: _Source, kind: str | None
) -> None:
    reading = ldap_delta.read(source, _reader(), None)
    assert reading.snapshot == DirectorySnapshot(users=(), groups=())
    assert (reading.cursor.kind if reading.cursor else None) == kind
