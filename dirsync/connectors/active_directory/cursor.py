"""Where an Active Directory delta read starts: a DirSync cookie or a USN on one DC. Pure.

The cursor names the domain controller it belongs to: USNs are per DC, so a uSNChanged cursor
is only meaningful on that DC, together with its ``invocationId`` (a DC restored from backup
gets a new one, and its USNs repeat: the next read must be a full one).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Literal

from dirsync.errors import CursorExpired
from dirsync.model import Cursor

KIND = "active_directory"


@dataclass(frozen=True, slots=True, kw_only=True)
class AdCursor:
    mode: Literal["dirsync", "usn"]
    dc: str
    cookie: bytes = b""
    invocation_id: str = ""
    usn: int = 0

    def to_cursor(self) -> Cursor:
        data: dict[str, object] = {"v": 1, "mode": self.mode, "dc": self.dc}
        if self.mode == "dirsync":
            data["cookie"] = base64.b64encode(self.cookie).decode("ascii")
        else:
            data["invocation_id"] = self.invocation_id
            data["usn"] = self.usn
        return Cursor(kind=KIND, value=json.dumps(data, sort_keys=True))


def parse_cursor(cursor: Cursor) -> AdCursor:
    """The stored cursor; anything unreadable means: read in full (``CursorExpired``)."""
    if cursor.kind != KIND:
        raise CursorExpired(f"the stored cursor is a {cursor.kind!r} cursor; reading in full")
    try:
        data = json.loads(cursor.value)
        mode = data["mode"]
        dc = str(data["dc"])
        if mode == "dirsync":
            return AdCursor(mode="dirsync", dc=dc, cookie=base64.b64decode(data["cookie"]))
        if mode == "usn":
            return AdCursor(
                mode="usn", dc=dc, invocation_id=str(data["invocation_id"]), usn=int(data["usn"])
            )
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise CursorExpired("the stored Active Directory cursor cannot be read; reading in full")
