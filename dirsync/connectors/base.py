"""The connector protocol every directory reader implements."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from dirsync.model import Cursor, Reading, SourceInfo

#: called with the number of entries read so far, for progress bars
ProgressCallback = Callable[[int], None]

#: the refs (an LDAP entry's DN) the organization's mirror holds for those of these external
#: ids it holds, users and groups: what a delta read may take as known (``read``'s ``held``)
HeldRefs = Callable[[Collection[str]], Mapping[str, str]]


class Connector(Protocol):
    """Reads one organization's directory.

    ``read(None)`` is a complete read (a ``DirectorySnapshot``); ``read(cursor)`` may return a
    ``DirectoryDelta`` instead. A read either finishes completely or raises a ``SourceError``:
    it never returns a partial snapshot. Every foreign exception is translated into the
    ``dirsync.errors`` tree here, at the boundary.

    ``held`` tells a delta read what the mirror the delta will patch holds of the entries it
    changes; a connector may use it to read less (the generic LDAP connector reads the groups
    naming a changed entry only when the mirror does not hold that entry under the same ref)
    and must read the same delta without it.
    """

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading: ...

    def probe(self) -> SourceInfo: ...

    def close(self) -> None: ...
