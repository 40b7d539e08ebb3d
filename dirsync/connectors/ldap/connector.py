"""Generic LDAP / OpenLDAP connector: a complete read of users and groups.

Users and groups come from paged searches (``session.py``, the transport's boundary, through
the read's ``reader.py``) and become users and groups in ``entries.py``; refs are normalized DNs
(``dn.py``), so a group's ``member`` values match its members' own DNs however either is
spelled. Per-entry problems (no external id, a member value that is not a DN, undecodable
bytes) become warnings; anything that could make the read incomplete raises. Which read a run
does (complete, or the changes since a cursor) is ``delta.py``'s choice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import structlog

from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.connectors.ldap import client, pool
from dirsync.connectors.ldap import delta as ldap_delta
from dirsync.connectors.ldap.entries import EntryConversion
from dirsync.connectors.ldap.reader import LdapReader
from dirsync.connectors.ldap.session import LdapSession
from dirsync.connectors.ldap.settings import LdapSourceSettings
from dirsync.errors import SourceError
from dirsync.model import (
    Cursor,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    Reading,
    SourceInfo,
)

log = structlog.get_logger("dirsync.connectors.ldap")


class LdapConnector(EntryConversion):
    """Reads users and groups from a generic LDAP directory (OpenLDAP, 389 DS, ...)."""

    #: what the config validates this connector's sources with (the dirsync.sources entry point)
    settings_class: ClassVar[type[LdapSourceSettings]] = LdapSourceSettings

    #: the rootDSE attributes probe() asks for
    ROOT_DSE_ATTRIBUTES = ("vendorName", "vendorVersion", "objectClass", "supportedControl")
    #: ``incremental = "auto"`` may choose syncrepl or modify_timestamp (``delta.py``); a
    #: subclass with its own delta reads declares False
    generic_incremental: ClassVar[bool] = True

    def __init__(self, settings: LdapSourceSettings, *, organization: str) -> None:
        self.settings = settings
        self.organization = organization
        self._session: LdapSession | None = None

    # -- the Connector protocol -------------------------------------------------------------

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        """A complete read, or the changes since ``cursor`` (``incremental`` in the settings).

        An unusable cursor raises ``CursorExpired``; the caller then reads in full. The
        session is one this process keeps for the server and account (``pool.py``).
        """
        session, kept = pool.POOL.checkout(self.settings, self.organization)
        try:
            reading = ldap_delta.read(self, self.reader(session, progress), cursor, held)
        except SourceError as exc:
            answered = session.conn is not None and session.conn.received > 0
            session.close()
            if not kept or answered or not _dropped(exc):
                raise
            # the server dropped the kept connection while it was unused (idletimeout, a
            # restart): once more on a new one. A read that broke off after the server
            # answered, or failed otherwise, fails as it would have.
            log.info("ldap.kept_session_dropped", organization=self.organization)
            session = LdapSession(self.settings, organization=self.organization)
            session.open()
            try:
                reading = ldap_delta.read(self, self.reader(session, progress), cursor, held)
            except BaseException:
                session.close()
                raise
        except BaseException:
            session.close()
            raise
        pool.POOL.checkin(session)
        return reading

    def read_complete(self, reader: LdapReader) -> tuple[DirectorySnapshot, int]:
        """Every user and group the filters select, and the number of entries read."""
        users = self.read_users(reader)
        groups = self.read_groups(reader)
        return DirectorySnapshot(users=tuple(users), groups=tuple(groups)), reader.done

    def probe(self) -> SourceInfo:
        with self._open() as session:
            dse = session.root_dse(self.ROOT_DSE_ATTRIBUTES)
        vendor = _first_text(dse.get("vendorName"))
        classes = {c.lower() for c in _texts(dse.get("objectClass"))}
        if vendor is None and "openldaprootdse" in classes:
            vendor = "OpenLDAP"
        details: list[tuple[str, str]] = []
        if version := _first_text(dse.get("vendorVersion")):
            details.append(("vendorVersion", version))
        paged = "1.2.840.113556.1.4.319" in _texts(dse.get("supportedControl"))
        details.append(("pagedResults", "yes" if paged else "no"))
        return SourceInfo(url=self.settings.url, vendor=vendor, details=tuple(details))

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def reader(self, session: LdapSession, progress: ProgressCallback | None) -> LdapReader:
        """The state of one read through ``session``, with this connector's id decoding."""
        return LdapReader(self.settings, session, progress, decode_id=self.decode_external_id)

    # -- extension points (Active Directory overrides these, and those of entries.py) -------

    def user_attributes(self) -> list[str]:
        s = self.settings
        return [
            s.external_id_attribute,
            s.username_attribute,
            s.email_attribute,
            s.name_attribute,
            "cn",
        ]

    # -- reading ----------------------------------------------------------------------------

    def _open(self) -> LdapSession:
        """A fresh bound session, for the operations that are not reads (``probe``)."""
        self.close()
        session = LdapSession(self.settings, organization=self.organization)
        session.open()
        self._session = session
        return session

    def read_users(self, reader: LdapReader) -> list[DirectoryUser]:
        s = self.settings
        entries = reader.stream(
            "users", s.user_path, s.user_object_class, [s.user_filter], self.user_attributes()
        )
        users = self.users_from(reader, entries, set())  # converted page by page
        if not s.disabled_filter:
            return users
        disabled = self.disabled_ids(reader)
        return [
            replace(u, disabled=True) if u.external_id in disabled and not u.disabled else u
            for u in users
        ]

    def disabled_ids(self, reader: LdapReader, narrow: str = "") -> set[str]:
        """The external ids of the disabled users (``narrow``: an extra filter)."""
        s = self.settings
        entries = reader.search(
            "disabled users",
            s.user_path,
            s.user_object_class,
            [s.user_filter, s.disabled_filter, narrow],
            [s.external_id_attribute],
            counted=False,
        )
        ids = set()
        for entry in entries:
            values = entry["raw_attributes"].get(s.external_id_attribute)
            if values and (external_id := self.decode_external_id(values[0])):
                ids.add(external_id)
        return ids

    def group_attributes(self) -> list[str]:
        s = self.settings
        return [s.external_id_attribute, s.group_name_attribute, "cn", s.member_attribute]

    def read_groups(self, reader: LdapReader) -> list[DirectoryGroup]:
        s = self.settings
        entries = reader.stream(
            "groups", s.group_path, s.group_object_class, [s.group_filter], self.group_attributes()
        )
        return self.groups_from(reader, entries)


def _texts(values: Any) -> list[str]:
    result = []
    for value in values or ():
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        result.append(str(value))
    return result


def _first_text(values: Any) -> str | None:
    texts = _texts(values)
    return texts[0] if texts else None


def _dropped(exc: BaseException) -> bool:
    """Whether a read failed because its connection broke (the transport's error within)."""
    cause: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; never follow a cycle for ever
        if cause is None:
            return False
        if isinstance(cause, client.ConnectionBroken):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
