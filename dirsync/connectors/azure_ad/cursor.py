"""The Azure AD cursor: both deltaLinks, the settings they were taken under, the known guests.

Stored as JSON in the organization's cursor row. The guests are the object ids of the guests
the connector leaves out (``include_guests = false``): a delta's ``members@delta`` names
members by id only, so this is how a guest added to a group later is still recognized and
left out, exactly as a full read would. A cursor that does not parse, points at another Graph
or was taken under other reading settings raises ``CursorExpired``: the sync reads in full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dirsync.errors import CursorExpired
from dirsync.model import Cursor

CURSOR_KIND = "graph_delta"


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphCursor:
    users: str
    groups: str
    settings: str
    guests: frozenset[str] = frozenset()

    def to_cursor(self) -> Cursor:
        value = {
            "users": self.users,
            "groups": self.groups,
            "settings": self.settings,
            "guests": sorted(self.guests),
        }
        return Cursor(kind=CURSOR_KIND, value=json.dumps(value, sort_keys=True))

    @classmethod
    def parse(
        cls, cursor: Cursor, *, graph_url: str, settings: str, organization: str
    ) -> GraphCursor:
        try:
            data = json.loads(cursor.value)
        except ValueError:
            data = None
        links_ok = isinstance(data, dict) and all(
            isinstance(data.get(k), str) and data[k].startswith(graph_url + "/")
            for k in ("users", "groups")
        )
        if cursor.kind != CURSOR_KIND or not links_ok or not isinstance(data, dict):
            raise CursorExpired(
                f"organization {organization}: the stored cursor is not a Graph delta cursor "
                f"for {graph_url}"
            )
        if data.get("settings") != settings:
            raise CursorExpired(
                f"organization {organization}: the source settings changed since the last read "
                "(tenant, graph_url, email or guest settings); reading in full"
            )
        guests = data.get("guests") or []
        if not isinstance(guests, list) or not all(isinstance(g, str) for g in guests):
            raise CursorExpired(f"organization {organization}: the stored cursor is damaged")
        return cls(
            users=data["users"], groups=data["groups"], settings=settings, guests=frozenset(guests)
        )
