"""Quiet runs: a delta with no change, on an organization nobody touched, plans nothing.

Planning needs the whole organization and mirror loaded (seconds at 100,000 users). When the
connector's delta is empty, the plan is a function of what did not change (the mirror, the
organization, the rules), so it equals the last run's, which was applied: empty. The stored
cursor carries a *quiet key* (a digest of the rules and the organization version the run
left behind) so that a run can tell, with one small query, that

- the rules are the same (config changes take effect at once), and
- the organization version is the one the last sync wrote (every apply bumps it; a write
  outside a sync, such as an administrator command, must bump it too), and
- with ``reinvite_after``, no invitation has come due since (``reinvite_cutoff``).

Then it only records the run and the connector's new cursor. Anything else plans in full.
Values only, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Final

from dirsync.model import Cursor, Reading
from dirsync.rules import SyncRules

_MARK: Final = "dirsync.quiet"


def quiet_key(rules: SyncRules, version: int) -> str:
    return hashlib.sha256(f"{rules!r}|{version}".encode()).hexdigest()[:24]


def wrap(cursor: Cursor | None, key: str) -> Cursor | None:
    """The cursor as stored: the connector's cursor plus the quiet key."""
    if cursor is None:
        return None
    return Cursor(kind=cursor.kind, value=json.dumps({_MARK: key, "cursor": cursor.value}))


def unwrap(stored: Cursor | None) -> tuple[Cursor | None, str | None]:
    """The connector's cursor and the quiet key (None for a cursor stored without one)."""
    if stored is None:
        return None, None
    try:
        data = json.loads(stored.value)
    except ValueError:
        return stored, None
    if not isinstance(data, dict) or _MARK not in data or "cursor" not in data:
        return stored, None
    return Cursor(kind=stored.kind, value=str(data["cursor"])), str(data[_MARK])


def reinvite_cutoff(rules: SyncRules, now: datetime) -> datetime | None:
    """With ``reinvite_after``, invitations last sent by this time are due: time alone changes
    the plan for their members, so an unchanged directory means an empty plan only while
    none is (the store answers that with one indexed look-up); None without."""
    return None if rules.reinvite_after is None else now - rules.reinvite_after


def nothing_changed(reading: Reading) -> bool:
    delta = reading.delta
    return (
        delta is not None
        and not delta.users
        and not delta.groups
        and not delta.deleted_user_ids
        and not delta.deleted_group_ids
        and not delta.group_changes
        and delta.present_user_ids is None
        and delta.present_group_ids is None
    )
