"""Incremental Active Directory reads: DirSync, or uSNChanged polling pinned to one DC.

A full read first *marks* where the next delta starts (a DirSync cookie, or the DC's
``invocationId`` and ``highestCommittedUSN``), so a change made during the read is read again
next time rather than lost. A delta read then:

1. asks for what changed: DirSync rounds (cookie / MoreResults) or a uSNChanged search;
2. turns tombstones (``isDeleted``, via DirSync or the show-deleted control) into explicit
   deletions (``tombstones.py``);
3. reads each changed live object in full through the ordinary user and group searches
   (so filters and paths apply as in a full read), plus the groups that name a changed
   object as a member (a renamed member changes its DN in them).

The cursor belongs to one DC; if that DC cannot be reached, or its ``invocationId`` changed
(restored from backup: its USNs repeat), the delta raises ``CursorExpired`` and the sync reads
in full, which may fail over to another DC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol

import structlog

from dirsync.connectors.active_directory import tombstones
from dirsync.connectors.active_directory.controls import IN_CHAIN_RULE
from dirsync.connectors.active_directory.cursor import AdCursor
from dirsync.connectors.active_directory.dirsync_reads import (
    DirSyncFailed,
    DirSyncRefused,
    dirsync,
    naming_context,
    tombstones_readable,
)
from dirsync.connectors.active_directory.session import AdSession
from dirsync.connectors.active_directory.settings import ActiveDirectorySourceSettings
from dirsync.connectors.active_directory.values import guid_filter_value
from dirsync.connectors.base import ProgressCallback
from dirsync.connectors.ldap import filter_watch
from dirsync.connectors.ldap.dn import escape_filter_value
from dirsync.connectors.ldap.reader import LdapReader, join_dn
from dirsync.connectors.ldap.session import RawEntry
from dirsync.errors import CursorExpired, SourceError, SourceUnreachable
from dirsync.model import Cursor, DirectoryDelta, DirectoryGroup, DirectoryUser, Reading

log = structlog.get_logger("dirsync.connectors.active_directory")

_DIRSYNC_FILTER: Final = "(|(objectClass=user)(objectClass=group))"
_NOTHING: Final = "(objectGUID=\\00)"  # matches no object: an initial cookie without data
_CHUNK: Final = 50


class DeltaSource(Protocol):
    """What the incremental reads need of the Active Directory connector.

    ``connector.py`` imports this module, so the connector is described here, not imported.
    """

    settings: ActiveDirectorySourceSettings
    #: the run's warnings that are not about entries (a failover, incremental reads off)
    notes: list[str]

    def connect(self, urls: Sequence[str]) -> AdSession: ...

    def user_attributes(self) -> list[str]: ...

    def scoped(self, *, users: str = "", groups: str = "") -> DeltaSource: ...

    def reader(self, session: AdSession, progress: ProgressCallback | None) -> LdapReader: ...

    def read_users(self, reader: LdapReader) -> list[DirectoryUser]: ...

    def read_groups(self, reader: LdapReader) -> list[DirectoryGroup]: ...

    def with_chain_members(
        self, session: AdSession, reader: LdapReader, groups: list[DirectoryGroup]
    ) -> list[DirectoryGroup]: ...

    def watched_groups(self, session: AdSession, cursor: Cursor | None) -> str | None: ...


def mark(connector: DeltaSource, session: AdSession) -> AdCursor | None:
    mode = connector.settings.incremental
    if mode == "off":
        return None
    if mode in ("auto", "dirsync"):
        try:
            _, cookie = dirsync(session, b"", _NOTHING, ["objectGUID"])
            return AdCursor(mode="dirsync", dc=session.url, cookie=cookie)
        except DirSyncRefused as exc:
            if mode == "dirsync":
                raise SourceError(
                    f"{exc}; grant the account 'Replicating Directory Changes' or set "
                    'incremental = "usn"'
                ) from exc
            log.info("ad.dirsync_unavailable", organization=session.organization)
    if not tombstones_readable(session):
        # without tombstones a deleted user would never be noticed: read in full every time
        log.info("ad.incremental_unavailable", organization=session.organization)
        if mode == "usn":
            connector.notes.append(
                "incremental reads are off: the account can read neither DirSync nor the "
                "Deleted Objects container; grant it read access there (dsacls "
                '"CN=Deleted Objects,<domain>" /takeownership, then /G <account>:LCRP)'
            )
        return None
    invocation_id, usn = session.dc_state()
    return AdCursor(mode="usn", dc=session.url, invocation_id=invocation_id, usn=usn)


def delta_read(
    connector: DeltaSource, state: AdCursor, progress: ProgressCallback | None, *, raw: Cursor
) -> Reading:
    """The changes since ``state`` (``raw``: the cursor as stored, with the digest of the
    groups a memberOf filter names, which must not have changed)."""
    try:
        session = connector.connect([state.dc])
    except SourceUnreachable as exc:
        raise CursorExpired(f"the DC of the cursor cannot be reached ({exc})") from exc
    with session:
        watched = connector.watched_groups(session, raw)
        if state.mode == "dirsync":
            changed, deleted_users, deleted_groups, seen, new = _dirsync_changes(
                connector, session, state
            )
        else:
            changed, deleted_users, deleted_groups, seen, new = _usn_changes(
                connector, session, state
            )
        users, groups, read = _read_changed(connector, session, changed, state, progress)
        if connector.settings.nested_groups_in_chain:
            groups, ancestors_read = _in_chain(connector, session, users, groups, deleted_groups)
            read += ancestors_read
    return Reading(
        delta=DirectoryDelta(
            users=tuple(users),
            groups=tuple(groups),
            deleted_user_ids=frozenset(deleted_users),
            deleted_group_ids=frozenset(deleted_groups),
        ),
        cursor=filter_watch.stamped(new.to_cursor(), watched),
        entries_read=seen + read,
        warnings=tuple(connector.notes),
    )


_Changes = tuple[list[str] | None, set[str], set[str], int, AdCursor]


def _dirsync_changes(connector: DeltaSource, session: AdSession, state: AdCursor) -> _Changes:
    s = connector.settings
    attributes = sorted(
        {*connector.user_attributes(), s.group_name_attribute, s.member_attribute, "cn", "name"}
        | {"objectGUID", "isDeleted", "lastKnownParent"}
    )
    try:
        entries, cookie = dirsync(session, state.cookie, _DIRSYNC_FILTER, attributes)
    except (DirSyncRefused, DirSyncFailed) as exc:  # e.g. a cookie this DC does not accept
        raise CursorExpired(f"{exc}; reading in full") from exc
    changed: list[str] = []
    deleted: list[str] = []
    for entry in entries:
        guid = tombstones.object_guid(entry)
        if guid is not None:
            (deleted if tombstones.is_deleted(entry) else changed).append(guid)
    users, groups = _tombstones_by_guid(connector, session, deleted)
    new = AdCursor(mode="dirsync", dc=state.dc, cookie=cookie)
    # live entries are counted when they are read in full
    return changed, users, groups, len(users | groups), new


def _tombstones_by_guid(
    connector: DeltaSource, session: AdSession, guids: list[str]
) -> tuple[set[str], set[str]]:
    """DirSync names a deleted object without its class or where it lived: ask for its
    tombstone. One that cannot be read counts as a deleted user and group (an unknown id
    deletes nothing)."""
    users: set[str] = set()
    groups: set[str] = set()
    base = naming_context(session, session.settings.base_dn) if guids else ""
    for chunk in _chunks(guids):
        wanted = "".join(f"(objectGUID={guid_filter_value(g)})" for g in chunk)
        found = tombstones.search(session, base, f"(|{wanted})")
        found_users, found_groups = _classify(connector, found)
        users |= found_users
        groups |= found_groups
        unread = set(chunk) - {g for g in map(tombstones.object_guid, found) if g is not None}
        users |= unread
        groups |= unread
    return users, groups


def _usn_changes(connector: DeltaSource, session: AdSession, state: AdCursor) -> _Changes:
    invocation_id, usn = session.dc_state()
    if invocation_id != state.invocation_id or usn < state.usn:
        raise CursorExpired(
            f"the DC at {state.dc} has a new invocationId (restored from a backup?); "
            "its change numbers cannot be trusted: reading in full"
        )
    since = state.usn + 1
    base = naming_context(session, session.settings.base_dn)
    found = tombstones.search(
        session, base, f"(uSNChanged>={since})(|(objectClass=user)(objectClass=group))"
    )
    users, groups = _classify(connector, found)
    return (
        None,
        users,
        groups,
        len(users) + len(groups),
        AdCursor(mode="usn", dc=state.dc, invocation_id=invocation_id, usn=usn),
    )


def _classify(connector: DeltaSource, found: list[RawEntry]) -> tuple[set[str], set[str]]:
    s = connector.settings
    return tombstones.classify(
        found,
        user_base=join_dn(s.user_path, s.base_dn),
        group_base=join_dn(s.group_path, s.base_dn),
    )


def _read_changed(
    connector: DeltaSource,
    session: AdSession,
    changed: list[str] | None,
    state: AdCursor,
    progress: ProgressCallback | None,
) -> tuple[list[DirectoryUser], list[DirectoryGroup], int]:
    """Changed objects read in full (``changed`` None: by uSNChanged), plus the groups that
    hold them as members."""
    users: dict[str, DirectoryUser] = {}
    groups: dict[str, DirectoryGroup] = {}
    read = 0
    if changed is None:
        filters = [f"(uSNChanged>={state.usn + 1})"]
    else:
        filters = [
            "(|" + "".join(f"(objectGUID={guid_filter_value(g)})" for g in chunk) + ")"
            for chunk in _chunks(changed)
        ]
    holders: set[str] = set()
    linked: set[str] = set()
    for extra in filters:
        view = connector.scoped(users=extra, groups=extra)
        reader = view.reader(session, progress)
        users.update((u.external_id, u) for u in view.read_users(reader))
        groups.update((g.external_id, g) for g in view.read_groups(reader))
        read += reader.done
        _back_links(view, reader, holders, linked)
    refs = {u.ref for u in users.values()} | {g.ref for g in groups.values()}
    # the groups named by back-links, then, for objects that showed none (in no group, or
    # memberOf not readable for this account), every group that holds them by member value
    by_name = [f"(distinguishedName={escape_filter_value(dn)})" for dn in sorted(holders)]
    by_member = [f"(member={escape_filter_value(r)})" for r in sorted(refs - linked)]
    for chunk in [*_chunks(by_name), *_chunks(by_member)]:
        view = connector.scoped(groups="(|" + "".join(chunk) + ")")
        reader = view.reader(session, None)
        for group in view.read_groups(reader):
            if group.external_id not in groups:
                groups[group.external_id] = group
                read += 1
    return list(users.values()), list(groups.values()), read


def _in_chain(
    connector: DeltaSource,
    session: AdSession,
    users: list[DirectoryUser],
    groups: list[DirectoryGroup],
    deleted_groups: set[str],
) -> tuple[list[DirectoryGroup], int]:
    """With ``nested_groups_in_chain``, a group's members include everyone the DC reaches
    through nesting, so a change anywhere below a group changes it: the delta reads again,
    in chain, every group that holds a changed object at any depth
    (``member:1.2.840.113556.1.4.1941:=``), as a full read would have them. A deleted group
    took members out of its ancestors that no search can name any more: then the delta is
    refused and the run reads in full."""
    if deleted_groups:
        raise CursorExpired(
            "nested_groups_in_chain: a group was deleted, and the members its ancestors "
            "reached through it can only be found by a full read; reading in full"
        )
    found = {g.external_id: g for g in groups}
    read = 0
    refs = sorted({u.ref for u in users} | {g.ref for g in groups})
    for chunk in _chunks(refs):
        wanted = "".join(f"(member:{IN_CHAIN_RULE}:={escape_filter_value(r)})" for r in chunk)
        view = connector.scoped(groups=f"(|{wanted})")
        for group in view.read_groups(view.reader(session, None)):
            if group.external_id not in found:
                found[group.external_id] = group
                read += 1
    reader = connector.reader(session, None)
    return connector.with_chain_members(session, reader, list(found.values())), read


def _back_links(view: DeltaSource, reader: LdapReader, holders: set[str], linked: set[str]) -> None:
    """The ``memberOf`` back-links of the objects ``view`` reads: the DNs of the groups that
    hold them go to ``holders``, the objects that have any to ``linked`` (normalized DNs).

    Finding those groups by ``(member=<DN>)`` instead made Samba compare every member value
    of every group with every DN asked for: 1.2 s for 50 changed users among 5,000, ~20 s for
    210 among 20,000 (bench/RESULTS.md). A back-link costs one indexed search per chunk.
    """
    s = view.settings
    searches = (
        (s.user_path, s.user_object_class, s.user_filter),
        (s.group_path, s.group_object_class, s.group_filter),
    )
    for path, object_class, search_filter in searches:
        for entry in reader.stream(
            "group memberships", path, object_class, [search_filter], ["memberOf"], counted=False
        ):
            values = entry["raw_attributes"].get("memberOf")
            if not values:
                continue
            try:
                names = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
                ref = reader.normalize(reader.dn(entry))
            except (UnicodeDecodeError, ValueError):
                continue  # unreadable: the object is looked for by member value
            holders.update(names)
            linked.add(ref)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
