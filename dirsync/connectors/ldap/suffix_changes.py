"""One syncrepl change list per server, naming context and cookie, shared by the organizations
below it.

syncprov's session log (OpenLDAP 2.5) keeps each change's entryUUID, CSN and kind, not the
entry's DN. Replaying it for a cookie, syncprov looks the modified entries up with the
search's own base, scope and filter, and sends every one that does not match as *deleted*: it
cannot tell an entry that left the search from one that was never in it. An MSP's client
organizations are OUs of one database, so each organization's search was sent every entry
changed in every other client since its cookie, as a deletion to parse and look up (500
organizations, 1% of 100,000 users changed: 517,000 ids for 1,040 changes).

Instead, one sync search of the whole naming context, for DNs and entryUUIDs only (``1.1``),
gives the changes since a cookie; each organization then reads, by entryUUID, the changed
entries below its own user and group paths (with its own filters and attributes, on the
server), and takes every other changed or deleted entry as deleted for it, as syncprov's
answer would have: the run drops the ids the organization never held with one indexed
look-up. The list is kept in this process (a one-shot sync of every organization, the daemon)
and used again only while the database's ``contextCSN`` is what it was just before the list
was read. The daemon's runs check that with one base search each: a list in use is never
older than the directory. A one-shot ``dirsync sync`` reads it once per server, account and
naming context for the cycle (``connectors.cycle``): its organizations then share one list,
and a change made while the cycle runs reaches them in the next one (their cursors hold the
list's cookie, from which the next list starts).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import structlog

from dirsync.connectors import cycle
from dirsync.connectors.ldap import syncrepl
from dirsync.connectors.ldap import syncrepl_ber as ber
from dirsync.connectors.ldap.dn import normalize_dn
from dirsync.connectors.ldap.reader import LdapReader
from dirsync.errors import ConfigError, SourceError

log = structlog.get_logger("dirsync.connectors.ldap")

#: change lists kept (one per server, account, naming context and cookie; a cycle needs one)
_KEPT: Final = 8


@dataclass(frozen=True, slots=True)
class SuffixChanges:
    """What changed below a naming context since a cookie: entries by normalized DN with
    their entryUUIDs, deleted entryUUIDs, and the cookie after them."""

    changed: tuple[tuple[str, str], ...]
    deleted: frozenset[str]
    cookie: bytes
    #: every changed or deleted entryUUID
    ids: frozenset[str] = field(init=False)
    #: the entryUUIDs of the changed entries at or below each DN that ends one of theirs:
    #: each organization asks for its own paths, and a list is asked by hundreds
    _below: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        below: dict[str, list[str]] = {}
        for dn, uuid in self.changed:
            below.setdefault(dn, []).append(uuid)
            comma = dn.find(",")
            while comma >= 0:
                below.setdefault(dn[comma + 1 :], []).append(uuid)
                comma = dn.find(",", comma + 1)
        object.__setattr__(self, "_below", below)
        everything = frozenset(uuid for _, uuid in self.changed) | self.deleted
        object.__setattr__(self, "ids", everything)

    def below(self, base: str) -> list[str]:
        """The entryUUIDs of the changed entries at or below ``base`` (normalized): those
        whose DN is ``base`` or ends with a comma and ``base``."""
        return list(self._below.get(base, ()))


@dataclass(frozen=True, slots=True)
class Found:
    changes: SuffixChanges
    #: this read asked the server for the list (and counts its entries); False: kept
    read_here: bool


#: (url, bind DN, naming context, cookie) → (contextCSN before the read, the changes)
_Key = tuple[str, str, str, bytes]
_kept: dict[_Key, tuple[tuple[bytes, ...], SuffixChanges]] = {}
#: (url, bind DN) → the server's naming contexts, as its root DSE lists them to that account
_contexts: dict[tuple[str, str], tuple[str, ...]] = {}
_lock = threading.Lock()


def changes_since(reader: LdapReader, cookie: bytes) -> Found | None:
    """The changes below the naming context holding the source's base since ``cookie``,
    kept or read now; None when the server does not allow it (no naming context above the
    base, no readable contextCSN, the sync search refused): then each organization reads its
    own changes with syncrepl as before."""
    s = reader.settings
    try:
        suffix = _naming_context(reader, s.base_dn)
        if suffix is None:
            return None
        # asked once per cycle (``connectors.cycle``): changes made meanwhile are in the
        # next cycle's list, which starts from the cookie this one leaves
        key_csn = ("ldap.contextCSN", s.url, s.bind_dn or "", normalize_dn(suffix))
        context_csn = cycle.remembered(key_csn, lambda: _context_csn(reader, suffix))
        if not context_csn:
            return None
        key = (s.url, s.bind_dn or "", normalize_dn(suffix), cookie)
        with _lock:
            kept = _kept.get(key)
        if kept is not None and kept[0] == context_csn:
            return Found(kept[1], read_here=False)
        changes = _read(reader, suffix, cookie)
    except ConfigError:
        raise
    except (SourceError, ValueError) as exc:
        log.info("ldap.suffix_changes_unavailable", reason=str(exc))
        return None
    with _lock:
        _kept[key] = (context_csn, changes)
        while len(_kept) > _KEPT:
            del _kept[next(iter(_kept))]
    return Found(changes, read_here=True)


def _naming_context(reader: LdapReader, base_dn: str) -> str | None:
    """The server's naming context that holds ``base_dn`` (the longest, for nested ones).
    The root DSE is asked once per server and account in this process: the organizations
    below one server differ in their bases only."""
    key = (reader.settings.url, reader.settings.bind_dn or "")
    with _lock:
        contexts = _contexts.get(key)
    if contexts is None:
        dse = reader.session.root_dse(["namingContexts"])
        raw = dse.get("namingContexts") or ()
        contexts = tuple(value.decode("utf-8", errors="replace") for value in raw)
        with _lock:
            _contexts[key] = contexts
    return _holding(contexts, base_dn)


def _holding(contexts: Sequence[str], base_dn: str) -> str | None:
    base = normalize_dn(base_dn)
    best: str | None = None
    for context in contexts:
        normalized = normalize_dn(context)
        if (base == normalized or base.endswith("," + normalized)) and (
            best is None or len(normalized) > len(normalize_dn(best))
        ):
            best = context
    return best


def _context_csn(reader: LdapReader, suffix: str) -> tuple[bytes, ...]:
    entries, _ = reader.session.search(
        suffix, "(objectClass=*)", ["contextCSN"], what="contextCSN", base_scope=True
    )
    for entry in entries:
        values: Sequence[bytes] = entry["raw_attributes"].get("contextCSN") or ()
        return tuple(sorted(values))
    return ()


def _read(reader: LdapReader, suffix: str, cookie: bytes) -> SuffixChanges:
    what = "naming context's"
    responses, result = reader.session.sync_search(
        suffix, "(objectClass=*)", ["1.1"], syncrepl.request_control(cookie), what=what
    )
    try:
        parsed = syncrepl.parse(responses, result, cookie, what=what)
        changed = []
        for entry in parsed.entries:
            state = ber.decode_sync_state(entry["controls"][ber.SYNC_STATE_OID])
            changed.append((normalize_dn(reader.dn(entry)), ber.uuid_text(state.entry_uuid)))
    except ber.BerError as exc:
        raise ValueError(f"an undecodable sync message: {exc}") from exc
    log.debug("ldap.suffix_changes", changed=len(changed), deleted=len(parsed.deleted))
    return SuffixChanges(changed=tuple(changed), deleted=parsed.deleted, cookie=parsed.cookie)
