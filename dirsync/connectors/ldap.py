"""Generic LDAP / OpenLDAP connector: a complete read of users and groups.

Users and groups come from paged searches (``ldap_search.py``, the ldap3 seam); refs are
normalized DNs (``dn.py``), so a group's ``member`` values match its members' own DNs however
either is spelled. Per-entry problems (no external id, a member value that is not a DN,
undecodable bytes) become warnings; anything that could make the read incomplete raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from dirsync.config import LdapSourceSettings
from dirsync.connectors.base import ProgressCallback
from dirsync.connectors.dn import escape_filter_value, normalize_dn, strip_optional_uid
from dirsync.connectors.ldap_search import LdapSession, RawEntry
from dirsync.model import (
    Cursor,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    Reading,
    SourceInfo,
    username_ref,
)


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def join_dn(path: str, base_dn: str) -> str:
    """``ou=People`` + ``dc=acme,dc=example``; an empty path is the base itself.

    A path that already ends with the base DN (a full DN where a relative one was meant) is
    taken as it is rather than doubled.
    """
    path = path.strip().strip(",")
    if not path:
        return base_dn
    if not base_dn:
        return path
    try:
        normalized, base = normalize_dn(path), normalize_dn(base_dn)
        if normalized == base or normalized.endswith("," + base):
            return path
    except ValueError:
        pass  # not a DN: the server will say so, with the search base in the message
    return f"{path},{base_dn}"


class _Reader:
    """The state of one read: settings, warnings, a progress counter."""

    def __init__(
        self, connector: LdapConnector, session: LdapSession, progress: ProgressCallback | None
    ) -> None:
        self.connector = connector
        self.settings = connector.settings
        self.session = session
        self.progress = progress
        self.warnings: list[str] = []
        self.done = 0  # user and group entries of finished searches
        #: attributes counted searches also ask for (modifyTimestamp, for the delta cursor)
        self.extra_attributes: tuple[str, ...] = ()
        #: the newest modifyTimestamp of the entries read, when it was asked for
        self.newest_timestamp: str | None = None
        #: DN as spelled → normalized: a group's member values are mostly spelled exactly as
        #: the users' own DNs, so each is normalized once per read
        self._normalized: dict[str, str] = {}

    def search(
        self,
        what: str,
        path: str,
        object_class: str,
        filters: Sequence[str],
        attributes: Sequence[str],
        *,
        counted: bool = True,
    ) -> list[RawEntry]:
        """All entries of one paged search; ``counted`` ones add to entries_read."""
        return list(self.stream(what, path, object_class, filters, attributes, counted=counted))

    def stream(
        self,
        what: str,
        path: str,
        object_class: str,
        filters: Sequence[str],
        attributes: Sequence[str],
        *,
        counted: bool = True,
    ) -> Iterator[RawEntry]:
        """``search`` one entry at a time: a big read never holds all raw entries at once."""
        base, search_filter = self.target(path, object_class, filters)

        def on_page(count: int) -> None:
            if self.progress is not None and counted:
                self.progress(self.done + count)

        extra = self.extra_attributes if counted else ()
        count = 0
        for entry in self.session.paged_search(
            base, search_filter, _unique([*attributes, *extra]), what=what, on_page=on_page
        ):
            count += 1
            for name in extra:
                stamp = entry["raw_attributes"].get(name)
                newest = stamp[0].decode("ascii", "replace") if stamp else None
                if newest and (self.newest_timestamp is None or newest > self.newest_timestamp):
                    self.newest_timestamp = newest
            yield entry
        if counted:
            self.done += count

    def target(self, path: str, object_class: str, filters: Sequence[str]) -> tuple[str, str]:
        """The search base and filter for entries of ``object_class`` below ``path``."""
        base = join_dn(path, self.settings.base_dn)
        search_filter = f"(&(objectClass={escape_filter_value(object_class)}){''.join(filters)})"
        return base, search_filter

    def text(self, entry: RawEntry, attribute: str) -> str | None:
        """The first value of ``attribute`` as text (stripped; empty → None)."""
        values = entry["raw_attributes"].get(attribute)
        if not values:
            return None
        value = values[0]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                value = value.decode("utf-8", errors="replace")
                self.warnings.append(
                    f"{self.dn(entry)}: {attribute} is not valid UTF-8; "
                    "undecodable bytes were replaced"
                )
        text = str(value).strip()
        return text or None

    def values(self, entry: RawEntry, attribute: str) -> list[str]:
        result = []
        for value in entry["raw_attributes"].get(attribute) or ():
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    self.warnings.append(
                        f"{self.dn(entry)}: a {attribute} value is not valid UTF-8; skipped"
                    )
                    continue
            result.append(str(value))
        return result

    @staticmethod
    def dn(entry: RawEntry) -> str:
        raw = entry.get("raw_dn")
        if isinstance(raw, bytes):
            return raw.decode("utf-8", errors="replace")
        return str(entry.get("dn", ""))

    def normalize(self, dn: str) -> str:
        """``normalize_dn``, remembered for this read (raises ``ValueError`` likewise)."""
        normalized = self._normalized.get(dn)
        if normalized is None:
            normalized = self._normalized[dn] = normalize_dn(dn)
        return normalized

    def ref(self, entry: RawEntry) -> str | None:
        try:
            return self.normalize(self.dn(entry))
        except ValueError as exc:
            self.warnings.append(f"entry skipped, its DN cannot be parsed: {exc}")
            return None

    def external_id(self, entry: RawEntry, what: str) -> str | None:
        attribute = self.settings.external_id_attribute
        values = entry["raw_attributes"].get(attribute)
        if not values:
            self.warnings.append(f"{what} {self.dn(entry)} skipped: it has no {attribute}")
            return None
        value = self.connector.decode_external_id(values[0])
        if value is None:
            self.warnings.append(f"{what} {self.dn(entry)} skipped: its {attribute} is not text")
        return value


class LdapConnector:
    """Reads users and groups from a generic LDAP directory (OpenLDAP, 389 DS, ...)."""

    #: the rootDSE attributes probe() asks for
    ROOT_DSE_ATTRIBUTES = ("vendorName", "vendorVersion", "objectClass", "supportedControl")

    def __init__(self, settings: LdapSourceSettings, *, organization: str) -> None:
        self.settings = settings
        self.organization = organization
        self._session: LdapSession | None = None

    # -- the Connector protocol -------------------------------------------------------------

    def read(self, cursor: Cursor | None, *, progress: ProgressCallback | None = None) -> Reading:
        """A complete read, or the changes since ``cursor`` (``incremental`` in the settings).

        An unusable cursor raises ``CursorExpired``; the caller then reads in full.
        """
        from dirsync.connectors import ldap_delta  # the incremental modes; imports us

        with self._open() as session:
            return ldap_delta.read(self, _Reader(self, session, progress), cursor)

    def read_complete(self, reader: _Reader) -> tuple[DirectorySnapshot, int]:
        """Every user and group the filters select, and the number of entries read."""
        users = self._read_users(reader)
        groups = self._read_groups(reader)
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

    # -- extension points (Active Directory overrides these) --------------------------------

    def decode_external_id(self, value: bytes | str) -> str | None:
        """The external id as text; ``None`` if it is binary (e.g. objectGUID: use AD)."""
        if isinstance(value, str):
            return value.strip() or None
        try:
            return value.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            return None

    def user_disabled(self, entry: RawEntry) -> bool:
        """Whether an entry is disabled by its own attributes (``disabled_filter`` aside)."""
        return False

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
        """A fresh bound session per operation: a long-lived daemon never reuses a stale one."""
        self.close()
        session = LdapSession(self.settings, organization=self.organization)
        session.open()
        self._session = session
        return session

    def _read_users(self, reader: _Reader) -> list[DirectoryUser]:
        s = self.settings
        entries = reader.stream(
            "users", s.user_path, s.user_object_class, [s.user_filter], self.user_attributes()
        )
        users = self.users_from(reader, entries, set())  # converted page by page
        if not s.disabled_filter:
            return users
        disabled = self._disabled_ids(reader)
        return [
            replace(u, disabled=True) if u.external_id in disabled and not u.disabled else u
            for u in users
        ]

    def users_from(
        self, reader: _Reader, entries: Iterable[RawEntry], disabled_ids: set[str]
    ) -> list[DirectoryUser]:
        s = self.settings
        suffix = s.email_suffix.strip()
        if suffix and not suffix.startswith("@"):
            suffix = "@" + suffix
        users = []
        for entry in entries:
            external_id = reader.external_id(entry, "user")
            ref = reader.ref(entry) if external_id else None
            if external_id is None or ref is None:
                continue
            username = reader.text(entry, s.username_attribute)
            email = reader.text(entry, s.email_attribute)
            if email is None and suffix and username:
                email = username + suffix
            name = reader.text(entry, s.name_attribute) or reader.text(entry, "cn")
            disabled = external_id in disabled_ids or self.user_disabled(entry)
            users.append(
                DirectoryUser(
                    external_id=external_id,
                    ref=ref,
                    username=username,
                    email=email,
                    name=name,
                    disabled=disabled,
                )
            )
        return users

    def _disabled_ids(self, reader: _Reader, narrow: str = "") -> set[str]:
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

    def _read_groups(self, reader: _Reader) -> list[DirectoryGroup]:
        s = self.settings
        entries = reader.stream(
            "groups", s.group_path, s.group_object_class, [s.group_filter], self.group_attributes()
        )
        return self.groups_from(reader, entries)

    def groups_from(self, reader: _Reader, entries: Iterable[RawEntry]) -> list[DirectoryGroup]:
        s = self.settings
        member_attribute = s.member_attribute
        unique_member = member_attribute.lower() == "uniquemember"
        # posixGroup's memberUid names members by user name, not by DN
        by_username = member_attribute.lower() == "memberuid"
        groups = []
        for entry in entries:
            external_id = reader.external_id(entry, "group")
            ref = reader.ref(entry) if external_id else None
            if external_id is None or ref is None:
                continue
            name = reader.text(entry, s.group_name_attribute) or reader.text(entry, "cn")
            if name is None:
                reader.warnings.append(
                    f"group {reader.dn(entry)} skipped: it has no {s.group_name_attribute}"
                )
                continue
            members = set()
            for value in reader.values(entry, member_attribute):
                if by_username:
                    if value.strip():
                        members.add(username_ref(value))
                    continue
                member = strip_optional_uid(value) if unique_member else value
                try:
                    members.add(reader.normalize(member))
                except ValueError:
                    reader.warnings.append(
                        f"group {name}: member value {value!r} is not a DN; skipped"
                    )
            groups.append(
                DirectoryGroup(
                    external_id=external_id, ref=ref, name=name, member_refs=frozenset(members)
                )
            )
        return groups


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
