"""Which read an LDAP run does: complete, or the changes since the cursor.

``incremental`` (in ``[organization.source]``) chooses the mechanism:

- ``syncrepl``: RFC 4533 with syncprov (``syncrepl.py``); deletions are explicit.
- ``modify_timestamp``: entries with ``modifyTimestamp>=`` the cursor's time; deletions are
  found by an id-only scan of users and groups, at most once per ``deletion_scan_interval``. The
  scan is as complete as a full read, so it is treated like one: an entry absent from it
  leaves the mirror, and is deprovisioned only with ``overwrite_existing``.
- ``auto`` (the default): syncrepl when the server offers it (rootDSE ``supportedControl``)
  and the external id is entryUUID, else modify_timestamp. ``off``: always a complete read.

A cursor of another mechanism than the settings now choose, or one taken with other read
settings (a filter, a path, an attribute changed: the mirror no longer matches what a delta
would patch), is ignored: the run reads in full.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Final, Protocol

from dirsync.connectors.base import HeldRefs
from dirsync.connectors.ldap import filter_watch, holders, suffix_changes
from dirsync.connectors.ldap import syncrepl as ldap_syncrepl
from dirsync.connectors.ldap import syncrepl_ber as ber
from dirsync.connectors.ldap.dn import escape_filter_value
from dirsync.connectors.ldap.reader import LdapReader, join_dn
from dirsync.connectors.ldap.session import RawEntry
from dirsync.errors import CursorExpired
from dirsync.model import (
    Cursor,
    DirectoryDelta,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    Reading,
)

if TYPE_CHECKING:
    from dirsync.connectors.ldap.settings import LdapSourceSettings

TIMESTAMP_KIND: Final = "ldap-modify-timestamp"
MODIFY_TIMESTAMP: Final = "modifyTimestamp"
#: how far before the newest timestamp seen the next change search starts, beyond the read's
#: own duration (a change made while a read runs may carry an older time than entries read
#: after it): timestamps have whole seconds
MARGIN: Final = timedelta(seconds=2)
_GENERALIZED: Final = "%Y%m%d%H%M%SZ"


#: settings that do not change what a read yields
_NOT_READ_SETTINGS: Final = frozenset(
    {"bind_password", "bind_password_file", "page_size", "timeout", "deletion_scan_interval"}
)


class EntrySource(Protocol):
    """What the incremental modes need of the connector whose read they choose.

    ``connector.py`` imports this module, so the connector is described here, not imported:
    the settings and the id decoder come with the reader, the rest is below.
    """

    #: whether ``incremental = "auto"`` may choose syncrepl or modify_timestamp: a connector
    #: with delta reads of its own (Active Directory) declares False, and auto reads in full
    generic_incremental: ClassVar[bool]

    def read_complete(self, reader: LdapReader) -> tuple[DirectorySnapshot, int]: ...

    def disabled_ids(self, reader: LdapReader, narrow: str = "") -> set[str]: ...

    def user_attributes(self) -> list[str]: ...

    def group_attributes(self) -> list[str]: ...

    def users_from(
        self, reader: LdapReader, entries: Iterable[RawEntry], disabled_ids: set[str]
    ) -> list[DirectoryUser]: ...

    def groups_from(
        self, reader: LdapReader, entries: Iterable[RawEntry]
    ) -> list[DirectoryGroup]: ...


def fingerprint(settings: LdapSourceSettings) -> str:
    """A digest of the settings that shape what a read yields."""
    data = settings.model_dump(mode="json", exclude=set(_NOT_READ_SETTINGS))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _same_settings(cursor: Cursor, settings: LdapSourceSettings) -> bool:
    try:
        return bool(json.loads(cursor.value).get("s") == fingerprint(settings))
    except (ValueError, AttributeError):
        return False


def read(
    connector: EntrySource,
    reader: LdapReader,
    cursor: Cursor | None,
    held: HeldRefs | None = None,
) -> Reading:
    """The read ``incremental`` chooses: the changes since ``cursor`` if it is still good,
    else a complete read (with a cursor for the next run when a mechanism is available).
    ``held``: what the mirror holds of the changed entries (``holders.with_holders``).

    When a filter depends on groups through ``memberOf`` (``filter_watch.py``), a delta is
    trusted only while those groups are as the cursor recorded them; otherwise this raises
    ``CursorExpired`` with the reason, and the caller reads in full."""
    watch = filter_watch.watch_of(reader.settings)
    if not watch.needed:
        return _chosen_read(connector, reader, cursor, held)
    # taken before anything is read: a change made during the read is seen by the next run
    watched = None if watch.blind is not None else filter_watch.digest(reader, watch)
    if cursor is not None and _mode_for(cursor, reader.settings, connector) is not None:
        filter_watch.check(watch, watched, cursor)
    reading = _chosen_read(connector, reader, cursor, held)
    return replace(reading, cursor=filter_watch.stamped(reading.cursor, watched))


def _mode_for(cursor: Cursor, settings: LdapSourceSettings, connector: EntrySource) -> str | None:
    """The mechanism that will read the changes since ``cursor``, or None when the cursor
    cannot be used (other read settings, another mechanism) and the read is complete."""
    mode = settings.incremental
    if mode == "auto" and not connector.generic_incremental:
        mode = "off"  # the connector's own delta reads are chosen explicitly, never by auto
    if not _same_settings(cursor, settings):
        return None
    if cursor.kind == ldap_syncrepl.CURSOR_KIND and mode in ("auto", "syncrepl"):
        return "syncrepl"
    if cursor.kind == TIMESTAMP_KIND and mode in ("auto", "modify_timestamp"):
        return "modify_timestamp"
    return None


def _chosen_read(
    connector: EntrySource, reader: LdapReader, cursor: Cursor | None, held: HeldRefs | None
) -> Reading:
    mode = reader.settings.incremental
    if mode == "auto" and not connector.generic_incremental:
        mode = "off"
    delta_mode = None if cursor is None else _mode_for(cursor, reader.settings, connector)
    if cursor is not None and delta_mode == "syncrepl":
        taken = ldap_syncrepl.Cookies.from_cursor(cursor)
        if taken.users == taken.groups:  # taken together: one list serves both
            found = suffix_changes.changes_since(reader, taken.users)
            if found is not None:
                return _suffix_delta(connector, reader, found, held)
        return _syncrepl_delta(connector, reader, taken, held)
    if cursor is not None and delta_mode == "modify_timestamp":
        return _timestamp_delta(connector, reader, cursor, held)
    if mode == "off":
        return _full(connector, reader, None)
    if mode == "syncrepl" or (mode == "auto" and _offers_syncrepl(reader)):
        cookies = ldap_syncrepl.current_cookies(reader)
        if cookies is not None:
            return _full(connector, reader, cookies.cursor(fingerprint(reader.settings)))
        if mode == "syncrepl":
            reader.warnings.append(
                "incremental = syncrepl, but the server gave no sync cookie (is the syncprov "
                "overlay on this database?); every run reads in full"
            )
            return _full(connector, reader, None)
    return _timestamp_full(connector, reader)


def _offers_syncrepl(reader: LdapReader) -> bool:
    if reader.settings.external_id_attribute.lower() != "entryuuid":
        return False
    dse = reader.session.root_dse(["supportedControl"])
    offered = {v.decode("ascii", "replace") for v in dse.get("supportedControl") or ()}
    return ber.SYNC_REQUEST_OID in offered


def _full(connector: EntrySource, reader: LdapReader, cursor: Cursor | None) -> Reading:
    snapshot, entries_read = connector.read_complete(reader)
    return Reading(
        snapshot=snapshot, cursor=cursor, entries_read=entries_read, warnings=tuple(reader.warnings)
    )


def _syncrepl_delta(
    connector: EntrySource,
    reader: LdapReader,
    cookies: ldap_syncrepl.Cookies,
    held: HeldRefs | None,
) -> Reading:
    users = ldap_syncrepl.changes(reader, cookies.users, connector.user_attributes(), users=True)
    groups = ldap_syncrepl.changes(
        reader, cookies.groups, connector.group_attributes(), users=False
    )
    disabled = _disabled_among(connector, reader, users.entries)
    changed_users = connector.users_from(reader, users.entries, disabled)
    changed_groups, holders_read = holders.with_holders(
        connector,
        reader,
        changed_users,
        connector.groups_from(reader, groups.entries),
        [*users.entries, *groups.entries],
        held,
    )
    delta = DirectoryDelta(
        users=tuple(changed_users),
        groups=tuple(changed_groups),
        deleted_user_ids=users.deleted,
        deleted_group_ids=groups.deleted,
    )
    cookies = ldap_syncrepl.Cookies(users=users.cookie, groups=groups.cookie)
    cursor = cookies.cursor(fingerprint(reader.settings))
    read_count = len(users.entries) + len(groups.entries) + len(users.deleted | groups.deleted)
    read_count += holders_read
    return Reading(
        delta=delta, cursor=cursor, entries_read=read_count, warnings=tuple(reader.warnings)
    )


def _suffix_delta(
    connector: EntrySource,
    reader: LdapReader,
    found: suffix_changes.Found,
    held: HeldRefs | None,
) -> Reading:
    """The changes below this source's paths, from the naming context's change list: the
    changed entries read by entryUUID with the source's filters; every other entry of the
    list deleted, as syncprov answers a search it no longer matches (``suffix_changes``)."""
    s, changes = reader.settings, found.changes
    user_entries = _by_ids(reader, "changed users", s.user_path, s.user_object_class,
                           s.user_filter, connector.user_attributes(), changes)  # fmt: skip
    group_entries = _by_ids(reader, "changed groups", s.group_path, s.group_object_class,
                            s.group_filter, connector.group_attributes(), changes)  # fmt: skip
    disabled = _disabled_among(connector, reader, user_entries)
    changed_users = connector.users_from(reader, user_entries, disabled)
    changed_groups, holders_read = holders.with_holders(
        connector,
        reader,
        changed_users,
        connector.groups_from(reader, group_entries),
        [*user_entries, *group_entries],
        held,
    )
    gone = changes.ids
    delta = DirectoryDelta(
        users=tuple(changed_users),
        groups=tuple(changed_groups),
        deleted_user_ids=gone - _ids_of(reader, user_entries),
        deleted_group_ids=gone
        - _ids_of(reader, group_entries)
        - {g.external_id for g in changed_groups},
    )
    cookies = ldap_syncrepl.Cookies(users=changes.cookie, groups=changes.cookie)
    read_count = len(user_entries) + len(group_entries) + holders_read
    if found.read_here:
        read_count += len(changes.changed) + len(changes.deleted)
    return Reading(
        delta=delta,
        cursor=cookies.cursor(fingerprint(s)),
        entries_read=read_count,
        warnings=tuple(reader.warnings),
    )


def _by_ids(
    reader: LdapReader,
    what: str,
    path: str,
    object_class: str,
    flt: str,
    attributes: list[str],
    changes: suffix_changes.SuffixChanges,
) -> list[RawEntry]:
    """The entries of the change list below ``path`` that the source's filter selects."""
    try:
        base = reader.normalize(join_dn(path, reader.settings.base_dn))
    except ValueError:
        return []  # the server refuses that base anyway, in every other search
    ids = changes.below(base)
    attribute = escape_filter_value(reader.settings.external_id_attribute)
    entries: list[RawEntry] = []
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        narrow = "(|" + "".join(f"({attribute}={escape_filter_value(i)})" for i in chunk) + ")"
        entries += reader.search(what, path, object_class, [flt, narrow], attributes)
    return entries


def _ids_of(reader: LdapReader, entries: list[RawEntry]) -> frozenset[str]:
    attribute = reader.settings.external_id_attribute
    ids = set()
    for entry in entries:
        values = entry["raw_attributes"].get(attribute)
        if values and (external_id := reader.decode_id(values[0])):
            ids.add(external_id)
    return frozenset(ids)


def _disabled_among(
    connector: EntrySource, reader: LdapReader, entries: list[RawEntry]
) -> set[str]:
    """Which of these changed users match ``disabled_filter`` (searched by their ids)."""
    s = reader.settings
    if not s.disabled_filter or not entries:
        return set()

    ids = []
    for entry in entries:
        values = entry["raw_attributes"].get(s.external_id_attribute)
        if values and (external_id := reader.decode_id(values[0])):
            ids.append(external_id)
    disabled: set[str] = set()
    attribute = escape_filter_value(s.external_id_attribute)
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        narrow = "(|" + "".join(f"({attribute}={escape_filter_value(i)})" for i in chunk) + ")"
        disabled |= connector.disabled_ids(reader, narrow)
    return disabled


# -- modify_timestamp ------------------------------------------------------------------------


def _timestamp_full(connector: EntrySource, reader: LdapReader) -> Reading:
    started = time.monotonic()
    reader.extra_attributes = (MODIFY_TIMESTAMP,)
    snapshot, entries_read = connector.read_complete(reader)
    since = _since(reader, None, time.monotonic() - started)
    cursor = _timestamp_cursor(since, datetime.now(UTC), fingerprint(reader.settings))
    return Reading(
        snapshot=snapshot, cursor=cursor, entries_read=entries_read, warnings=tuple(reader.warnings)
    )


def _timestamp_delta(
    connector: EntrySource, reader: LdapReader, cursor: Cursor, held: HeldRefs | None
) -> Reading:
    try:
        data = json.loads(cursor.value)
        since = str(data["since"])
        scanned = datetime.fromisoformat(data["scanned"])
        datetime.strptime(since, _GENERALIZED)
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorExpired(f"the modifyTimestamp cursor is not readable ({exc})") from exc
    started = time.monotonic()
    s = reader.settings
    changed = f"({MODIFY_TIMESTAMP}>={since})"
    reader.extra_attributes = (MODIFY_TIMESTAMP,)
    user_entries = reader.search(
        "changed users", s.user_path, s.user_object_class, [s.user_filter, changed],
        connector.user_attributes(),
    )  # fmt: skip
    group_entries = reader.search(
        "changed groups", s.group_path, s.group_object_class, [s.group_filter, changed],
        connector.group_attributes(),
    )  # fmt: skip
    new_since = _since(reader, since, time.monotonic() - started)
    reader.extra_attributes = ()
    disabled = _disabled_among(connector, reader, user_entries)
    now = datetime.now(UTC)
    present_users = present_groups = None
    if now - scanned >= s.deletion_scan_interval:
        present_users = _ids(reader, "user ids", s.user_path, s.user_object_class, s.user_filter)
        present_groups = _ids(reader, "group ids", s.group_path, s.group_object_class,
                              s.group_filter)  # fmt: skip
        scanned = now
    changed_users = connector.users_from(reader, user_entries, disabled)
    changed_groups, holders_read = holders.with_holders(
        connector,
        reader,
        changed_users,
        connector.groups_from(reader, group_entries),
        [*user_entries, *group_entries],
        held,
    )
    delta = DirectoryDelta(
        users=tuple(changed_users),
        groups=tuple(changed_groups),
        present_user_ids=present_users,
        present_group_ids=present_groups,
    )
    return Reading(
        delta=delta,
        cursor=_timestamp_cursor(new_since, scanned, fingerprint(s)),
        entries_read=reader.done + holders_read,
        warnings=tuple(reader.warnings),
    )


def _ids(reader: LdapReader, what: str, path: str, object_class: str, flt: str) -> frozenset[str]:
    attribute = reader.settings.external_id_attribute
    ids = set()
    for entry in reader.search(what, path, object_class, [flt], [attribute]):
        values = entry["raw_attributes"].get(attribute)
        if values and (external_id := reader.decode_id(values[0])):
            ids.add(external_id)
    return frozenset(ids)


def _since(reader: LdapReader, previous: str | None, seconds: float) -> str:
    """The time the next change search starts from: the newest modifyTimestamp seen, less
    the read's duration and a margin; never later than needed, never before ``previous``."""
    newest = reader.newest_timestamp
    if newest is None:
        return previous or "19700101000000Z"
    try:
        moment = datetime.strptime(newest[:14] + "Z", _GENERALIZED)
    except ValueError:
        return previous or "19700101000000Z"
    since = (moment - timedelta(seconds=seconds) - MARGIN).strftime(_GENERALIZED)
    return max(since, previous) if previous else since


def _timestamp_cursor(since: str, scanned: datetime, settings: str) -> Cursor:
    data = {"since": since, "scanned": scanned.isoformat(), "s": settings}
    value = json.dumps(data, sort_keys=True)
    return Cursor(kind=TIMESTAMP_KIND, value=value)
