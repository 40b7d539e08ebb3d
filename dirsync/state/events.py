"""The audit events of one write: collected in order, inserted a slice at a time.

Every apply (``apply.py``, ``organization_writes.py``) and every administrator's change
(``admin.py``) writes its events through one ``EventLog``, in the same transaction as the
change itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dirsync.state.bulk import SLICE, BulkInsert, encode_json, table_of
from dirsync.state.schema import EventRow

#: an event row's varying values, in this order; the JSON documents already encoded
_EVENT_COLUMNS = ("action", "target", "before", "after")
EventValues = tuple[str, str, str | None, str | None]


@dataclass(slots=True)
class EventLog:
    """Collects the events of one apply, in order; with a ``session`` they are inserted a
    slice at a time as they come (same transaction), else all by ``write`` at the end."""

    organization_id: int
    run_id: str | None
    actor: str
    at: datetime
    rows: list[EventValues] = field(default_factory=list)
    session: Session | None = None
    #: the events' INSERT, compiled at the first write, for that write's session
    _insert: tuple[Session, BulkInsert] | None = field(default=None, init=False, repr=False)

    def add(
        self, action: str, target: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        self.add_encoded(action, target, encode_json(before), encode_json(after))

    def add_encoded(self, action: str, target: str, before: str | None, after: str | None) -> None:
        """An event whose before/after are already JSON text (``bulk.encode_json``)."""
        self.rows.append((action, target, before, after))
        if self.session is not None and len(self.rows) >= SLICE:
            self.write(self.session)

    def extend(self, events: list[EventValues]) -> None:
        """Events already as rows (``add_encoded``'s arguments), in order."""
        self.rows.extend(events)
        if self.session is not None and len(self.rows) >= SLICE:
            self.write(self.session)

    def write(self, session: Session) -> None:
        if not self.rows:
            return
        if self._insert is None or self._insert[0] is not session:
            # organization, run, time and actor are the same in every event of the log
            constants = {
                "organization_id": self.organization_id,
                "run_id": self.run_id,
                "at": self.at,
                "actor": self.actor,
            }
            table = table_of(EventRow)
            insert = BulkInsert(
                session, table, _EVENT_COLUMNS, constants=constants, json_text=("before", "after")
            )
            self._insert = (session, insert)
        self._insert[1].write(self.rows)
        self.rows = []
