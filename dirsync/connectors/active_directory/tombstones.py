"""Deleted Active Directory objects: which users and groups a delta read must delete.

A deleted object leaves a tombstone (``isDeleted``), readable with the show-deleted control.
It keeps its ``objectGUID``, its ``objectClass`` and the container it was deleted from
(``lastKnownParent``), so a deletion counts only if the object lived below the user (or
group) path; one whose container is unknown counts, since an unknown id deletes nothing.
"""

from __future__ import annotations

from dirsync.connectors.active_directory.controls import show_deleted_control
from dirsync.connectors.active_directory.session import AdSession
from dirsync.connectors.active_directory.values import guid_to_str
from dirsync.connectors.ldap.dn import normalize_dn
from dirsync.connectors.ldap.session import RawEntry


def search(session: AdSession, base: str, wanted: str) -> list[RawEntry]:
    """The tombstones below ``base`` that also match the filter ``wanted``."""
    return list(
        session.paged_search(
            base,
            f"(&(isDeleted=TRUE){wanted})",
            ["objectGUID", "objectClass", "lastKnownParent"],
            what="deleted objects",
            controls=[show_deleted_control()],
        )
    )


def classify(
    entries: list[RawEntry], *, user_base: str, group_base: str
) -> tuple[set[str], set[str]]:
    """Deleted users and groups, each only if it was deleted below its search base."""
    users: set[str] = set()
    groups: set[str] = set()
    for entry in entries:
        guid = object_guid(entry)
        if guid is None:
            continue
        classes = {
            (c.decode() if isinstance(c, bytes) else str(c)).lower()
            for c in entry["raw_attributes"].get("objectClass") or ()
        }
        is_group = "group" in classes
        if _deleted_below(entry, group_base if is_group else user_base):
            (groups if is_group else users).add(guid)
    return users, groups


def object_guid(entry: RawEntry) -> str | None:
    """The entry's objectGUID as text (a tombstone's, or a DirSync answer's)."""
    values = entry["raw_attributes"].get("objectGUID")
    if values and isinstance(values[0], bytes) and len(values[0]) == 16:
        return guid_to_str(values[0])
    return None


def is_deleted(entry: RawEntry) -> bool:
    values = entry["raw_attributes"].get("isDeleted") or ()
    return any((v.decode() if isinstance(v, bytes) else str(v)).upper() == "TRUE" for v in values)


def _deleted_below(entry: RawEntry, base: str) -> bool:
    """Whether a tombstone was deleted below ``base``; unknown counts as yes."""
    parents = entry["raw_attributes"].get("lastKnownParent") or ()
    if not parents:
        return True
    scope = normalize_dn(base)
    raw = parents[0]
    try:
        parent = normalize_dn(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return True
    return parent == scope or parent.endswith("," + scope)
