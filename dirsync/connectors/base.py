"""The connector protocol every directory reader implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dirsync.model import Cursor, Reading, SourceInfo

#: called with the number of entries read so far, for progress bars
ProgressCallback = Callable[[int], None]


class Connector(Protocol):
    """Reads one organization's directory.

    ``read(None)`` is a complete read (a ``DirectorySnapshot``); ``read(cursor)`` may return a
    ``DirectoryDelta`` instead. A read either finishes completely or raises a ``SourceError``:
    it never returns a partial snapshot. Every foreign exception is translated into the
    ``dirsync.errors`` tree here, at the boundary.
    """

    def read(
        self, cursor: Cursor | None, *, progress: ProgressCallback | None = None
    ) -> Reading: ...

    def probe(self) -> SourceInfo: ...

    def close(self) -> None: ...
