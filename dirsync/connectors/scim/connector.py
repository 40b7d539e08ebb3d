"""The ``scim`` connector: what a scheduled sync reads from an organization that is pushed to.

An identity provider pushes each change as it happens (``dirsync.scim``), and every push is
planned and applied as it arrives, so the stored mirror *is* the directory. A scheduled or
one-shot ``dirsync sync`` of such an organization therefore reads nothing new: an empty delta.
Planned over the stored mirror it re-applies the current rules to what was pushed (e.g. after a
config change: collections, ``remove_disabled``); with nothing changed it is a quiet run.
"""

from __future__ import annotations

from typing import ClassVar

from dirsync.connectors.base import HeldRefs, ProgressCallback
from dirsync.connectors.scim.settings import ScimSourceSettings
from dirsync.model import Cursor, DirectoryDelta, Reading, SourceInfo

#: the cursor of a pushed organization: constant, so that an unchanged one has quiet runs
PUSHED = Cursor(kind="scim", value="pushed")


class ScimConnector:
    settings_class: ClassVar[type[ScimSourceSettings]] = ScimSourceSettings

    def __init__(self, settings: ScimSourceSettings, *, organization: str) -> None:
        self.settings = settings
        self.organization = organization

    def read(
        self,
        cursor: Cursor | None,
        *,
        progress: ProgressCallback | None = None,
        held: HeldRefs | None = None,
    ) -> Reading:
        return Reading(delta=DirectoryDelta(), cursor=PUSHED)

    def probe(self) -> SourceInfo:
        return SourceInfo(
            url=f"/scim/v2/{self.organization}",
            vendor="SCIM 2.0 (pushed by the identity provider)",
        )

    def close(self) -> None:
        """Nothing to close: a pushed organization has no connection of its own."""
