"""The state of one LDAP read: its searches, warnings, progress count and DN caches.

``LdapReader`` is shared by the connector's searches (``connector.py``), the conversion of
entries (``entries.py``), the incremental modes (``delta.py``, ``syncrepl.py``) and Active
Directory's reads. It is built from what it uses (the settings, a session, a progress
callback and the connector's external id decoder) rather than from the connector, so a
module that reads through it need not know the connector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from dirsync.connectors.base import ProgressCallback
from dirsync.connectors.ldap.dn import escape_filter_value, normalize_dn
from dirsync.connectors.ldap.session import LdapSession, RawEntry
from dirsync.connectors.ldap.settings import LdapSourceSettings

#: an external id value as read (bytes, or text from a test double) → its text, or None when
#: it is not an id this connector can use
IdDecoder = Callable[[bytes | str], str | None]


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


class LdapReader:
    """The state of one read: settings, warnings, a progress counter."""

    def __init__(
        self,
        settings: LdapSourceSettings,
        session: LdapSession,
        progress: ProgressCallback | None,
        *,
        decode_id: IdDecoder,
    ) -> None:
        self.settings = settings
        self.session = session
        self.progress = progress
        #: the connector's ``decode_external_id`` (Active Directory's reads objectGUID)
        self.decode_id = decode_id
        self.warnings: list[str] = []
        self.done = 0  # user and group entries of finished searches
        #: attributes counted searches also ask for (modifyTimestamp, for the delta cursor)
        self.extra_attributes: tuple[str, ...] = ()
        #: the newest modifyTimestamp of the entries read, when it was asked for
        self.newest_timestamp: str | None = None
        #: DN as spelled → normalized: a group's member values are mostly spelled exactly as
        #: the users' own DNs, so each is normalized once per read
        self._normalized: dict[str, str] = {}
        #: raw DN bytes → normalized DN, for the entries' own DNs and the member values read:
        #: a group's member values are the users' DNs byte for byte, so most member lists
        #: resolve by dict lookups alone. Holds only values that are strict UTF-8 and cannot
        #: end in a uniqueMember optional uid (``dn#'0101'B``), so a hit is what decoding and
        #: normalizing the value would give, for ``member`` and ``uniqueMember`` alike.
        self.refs: dict[bytes, str] = {}

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
        value = self.decode_id(values[0])
        if value is None:
            self.warnings.append(f"{what} {self.dn(entry)} skipped: its {attribute} is not text")
        return value
