"""The groups that name the entries a delta carries, read again with it.

A delta names the entries that changed, but the directory's own bookkeeping changes other
entries without reporting them: OpenLDAP's refint overlay rewrites the ``member`` values of
every group naming an entry that was renamed or moved, and drops them when it is deleted;
syncprov does not send those groups, and their modifyTimestamp may not move. An entry that
comes back into the read (moved back below ``user_path``, back inside ``user_filter``) is
named by groups that did not change at all. So with the changed entries, a delta reads again
every group that names any of them now: by DN in ``member_attribute``, and for a posixGroup's
``memberUid`` by user name and by DN, spelled as the directory sent it (``memberUid`` compares
exactly: ``cn=Ann Lee,...`` is not found by the normalized ``cn=ann lee,...``). Together with
the mirror dropping the references of deleted entries (``mapping/mirror.py``), the groups of
every entry the delta touches are then exactly the directory's, with or without refint. A
delta of thousands of entries reads every group once instead (a big group would come back,
whole, from every chunk's search). Groups the delta carries already are left out of these
searches (by entryUUID), so no group is read twice.

Only the entries that need it are searched for, when the run says what the mirror holds
(``held``): a changed entry the mirror holds under the same ref (its DN, unchanged) is named by
the same unchanged groups as before, since a group whose members changed is in the delta
itself (its ``member`` values were modified), and refint rewrites a group only when an entry
it names is renamed, moved or deleted. So the groups are read again for the entries the
mirror does not hold (new, back in the read) or holds under another DN (renamed, moved). With
``memberUid`` (user names, which change without the DN) every changed entry is searched for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, Protocol

from dirsync.connectors.base import HeldRefs
from dirsync.connectors.ldap.dn import escape_filter_value
from dirsync.connectors.ldap.reader import LdapReader
from dirsync.connectors.ldap.session import RawEntry
from dirsync.model import DirectoryGroup, DirectoryUser

#: member values asked for per search: a filter of 100 equality tests is cheap with an index
_CHUNK: Final = 100
#: beyond this many changed entries, every group is read once instead: a big group naming
#: many of them would otherwise come back, whole, from every chunk's search
_ALL_GROUPS_ABOVE: Final = 20 * _CHUNK


class GroupSource(Protocol):
    """What this needs of the connector: how it reads groups."""

    def group_attributes(self) -> list[str]: ...

    def groups_from(
        self, reader: LdapReader, entries: Iterable[RawEntry]
    ) -> list[DirectoryGroup]: ...


def with_holders(
    connector: GroupSource,
    reader: LdapReader,
    users: list[DirectoryUser],
    groups: list[DirectoryGroup],
    entries: Iterable[RawEntry],
    held: HeldRefs | None = None,
) -> tuple[list[DirectoryGroup], int]:
    """``groups`` plus every group that names one of ``users`` or ``groups`` now (those not
    ``held`` under the same ref), and how many groups were read for it. ``entries`` are the
    changed entries as read, for their DNs as the directory spells them."""
    s = reader.settings
    attribute = s.member_attribute
    if attribute.lower() == "memberuid":
        values = {u.ref for u in users} | {g.ref for g in groups}
        values |= {reader.dn(entry) for entry in entries}
        values |= {u.username for u in users if u.username}
    else:
        values = _not_held(users, groups, held)
    if not values:
        return groups, 0
    found = {g.external_id: g for g in groups}
    read = 0
    name = escape_filter_value(attribute)
    if len(values) > _ALL_GROUPS_ABOVE:
        searches = [""]
    else:
        searches = [
            "(|" + "".join(f"({name}={escape_filter_value(v)})" for v in chunk) + ")"
            for chunk in _chunks(sorted(values))
        ]
    not_again = _not_again(reader, found)
    for naming in searches:
        entries = reader.search(
            "groups naming changed entries",
            s.group_path,
            s.group_object_class,
            [s.group_filter, naming, not_again],
            connector.group_attributes(),
            counted=False,
        )
        for group in connector.groups_from(reader, entries):
            read += 1
            found.setdefault(group.external_id, group)
    return list(found.values()), read


def _not_held(
    users: list[DirectoryUser], groups: list[DirectoryGroup], held: HeldRefs | None
) -> set[str]:
    """The refs of the changed entries the mirror does not hold under that same ref."""
    changed = {u.external_id: u.ref for u in users}
    changed.update((g.external_id, g.ref) for g in groups)
    refs = held(changed.keys()) if held is not None and changed else {}
    return {ref for external_id, ref in changed.items() if refs.get(external_id) != ref}


def _not_again(reader: LdapReader, found: dict[str, DirectoryGroup]) -> str:
    """A filter leaving out the groups the delta carries already (entryUUIDs are text; other
    ids, such as Active Directory's binary objectGUID, are not left out)."""
    attribute = reader.settings.external_id_attribute
    if not found or len(found) > _CHUNK or attribute.lower() != "entryuuid":
        return ""
    ids = "".join(f"({attribute}={escape_filter_value(i)})" for i in sorted(found))
    return f"(!(|{ids}))"


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
