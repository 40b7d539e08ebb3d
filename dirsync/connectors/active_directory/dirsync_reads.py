"""DirSync reads and what a DC lets an account see: the I/O half of incremental AD reads.

``dirsync()`` runs every round of a DirSync search (cookie in, MoreResults followed, cookie
out) on the naming context that holds the base DN; ``tombstones_readable()`` says whether the
account may read the Deleted Objects container, without which uSNChanged polling would never
see a deletion.
"""

from __future__ import annotations

from typing import Final

from dirsync.connectors.active_directory.controls import (
    DIRSYNC_INCREMENTAL_VALUES,
    BerError,
    DirSyncResponse,
    dirsync_control,
    dirsync_response,
    dirsync_rounds,
    show_deleted_control,
)
from dirsync.connectors.active_directory.session import AdSession
from dirsync.connectors.ldap.dn import normalize_dn
from dirsync.connectors.ldap.session import SUCCESS, RawEntry
from dirsync.errors import SourceError, SourceReadIncomplete

#: the result codes with which a DC refuses DirSync to an account without replication rights
_DIRSYNC_REFUSED: Final = {12, 50, 53}
_MAX_BYTES: Final = 1 << 20


class DirSyncRefused(SourceError):
    """The DC does not let this account use DirSync."""


class DirSyncFailed(SourceReadIncomplete):
    """The DC answered a DirSync search with an error (e.g. a cookie it does not accept)."""


#: the well-known GUID of a domain's Deleted Objects container
_DELETED_OBJECTS_WKGUID: Final = "18E2EA80684F11D2B9AA00C04F79F805"


def tombstones_readable(session: AdSession) -> bool:
    """Whether this account can read the Deleted Objects container (and so the tombstones)."""
    base = naming_context(session, session.settings.base_dn)
    entries, result = session.search(
        f"<WKGUID={_DELETED_OBJECTS_WKGUID},{base}>",
        "(objectClass=*)",
        ["objectGUID"],
        what="Deleted Objects",
        base_scope=True,
        controls=[show_deleted_control()],
    )
    return result.get("result") == SUCCESS and any(
        e["raw_attributes"].get("objectGUID") for e in entries
    )


def naming_context(session: AdSession, base_dn: str) -> str:
    """The naming context (partition root) that holds ``base_dn``: DirSync's search base."""
    dse = session.root_dse(["namingContexts", "defaultNamingContext"])
    base = normalize_dn(base_dn)
    best = ""
    for raw in dse.get("namingContexts") or ():
        context = raw.decode() if isinstance(raw, bytes) else str(raw)
        normalized = normalize_dn(context)
        if (base == normalized or base.endswith("," + normalized)) and len(context) > len(best):
            best = context
    if not best and dse.get("defaultNamingContext"):
        best = dse["defaultNamingContext"][0].decode()
    return best or base_dn


def dirsync(
    session: AdSession, cookie: bytes, search_filter: str, attributes: list[str]
) -> tuple[list[RawEntry], bytes]:
    """All entries of a DirSync read from ``cookie`` (every MoreResults round) and the new one."""
    base = naming_context(session, session.settings.base_dn)

    def one_round(sent: bytes) -> tuple[list[RawEntry], DirSyncResponse | None]:
        control = dirsync_control(
            flags=DIRSYNC_INCREMENTAL_VALUES, max_bytes=_MAX_BYTES, cookie=sent
        )
        entries, result = session.search(
            base, search_filter, attributes, what="DirSync", controls=[control]
        )
        code = result.get("result")
        if code in _DIRSYNC_REFUSED:
            raise DirSyncRefused(
                f"organization {session.organization}: the DC refused DirSync: "
                f"{result.get('description')} ({code})"
            )
        if code != SUCCESS:
            raise DirSyncFailed(
                f"organization {session.organization}: the DirSync read failed: "
                f"{result.get('description')} ({code}); nothing was changed"
            )
        return entries, dirsync_response(result.get("controls"))

    entries: list[RawEntry] = []
    try:
        for batch, next_cookie in dirsync_rounds(one_round, cookie):
            entries.extend(batch)
            cookie = next_cookie
    except BerError as exc:
        raise SourceReadIncomplete(
            f"organization {session.organization}: the DirSync answer cannot be read: {exc}"
        ) from exc
    return entries, cookie
