"""Incidents: when an organization's trouble begins and ends (pure: results in, notices out).

An incident opens with the first run that fails or is refused, or when the organization goes
stale (no completed run within the allowed number of its intervals), and closes with the next
completed run (``applied`` or ``unchanged``). It is announced once, however often the run is
retried meanwhile, and its end once, as ``recovered``. What each ``[[alert]]`` is told, and
remembering who was told, is ``alerting``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dirsync.plan import Outcome
from dirsync.sync.result import RunResult

_OPENS = {Outcome.FAILED: "failed", Outcome.REFUSED: "refused"}
_CLOSES = (Outcome.APPLIED, Outcome.UNCHANGED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """What one alert says: the webhook's JSON object, and the email's content."""

    organization: str
    event: str  # failed | refused | stale | recovered
    since: datetime  # when the incident began
    run_id: str | None
    outcome: str | None
    error: str | None
    refusal: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "event": self.event,
            "since": _iso(self.since),
            "run_id": self.run_id,
            "outcome": self.outcome,
            "error": self.error,
            "refusal": list(self.refusal),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """An organization's open incident: the notice that opened it, and the alerts told."""

    opening: Notice
    notified: frozenset[str] = field(default_factory=frozenset)

    def told(self, alert: str) -> Incident:
        return replace(self, notified=self.notified | {alert})

    def to_json(self) -> dict[str, Any]:
        return {"opening": self.opening.to_json(), "notified": sorted(self.notified)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incident:
        opening = data["opening"]
        return cls(
            opening=Notice(
                organization=str(opening["organization"]),
                event=str(opening["event"]),
                since=datetime.fromisoformat(opening["since"]),
                run_id=opening.get("run_id"),
                outcome=opening.get("outcome"),
                error=opening.get("error"),
                refusal=tuple(opening.get("refusal") or ()),
            ),
            notified=frozenset(data.get("notified") or ()),
        )


def after_run(
    incident: Incident | None, result: RunResult, now: datetime
) -> tuple[Incident | None, Notice | None]:
    """The incident after ``result``, and the notice that ends it (``recovered``), if any.

    An incident that opens or stays open returns no notice: its ``opening`` is what alerts not
    yet told are sent."""
    event = _OPENS.get(result.outcome)
    if event is not None:
        if incident is not None:
            return incident, None
        return Incident(opening=_notice(result, event, since=now)), None
    if result.outcome in _CLOSES and incident is not None:
        return None, _notice(result, "recovered", since=incident.opening.since)
    return incident, None


def went_stale(organization: str, since: datetime, error: str) -> Incident:
    """The incident of an organization without a completed run for too long."""
    notice = Notice(
        organization=organization,
        event="stale",
        since=since,
        run_id=None,
        outcome=None,
        error=error,
    )
    return Incident(opening=notice)


def _notice(result: RunResult, event: str, *, since: datetime) -> Notice:
    return Notice(
        organization=result.organization,
        event=event,
        since=since,
        run_id=result.run_id if result.run_id != "-" else None,
        outcome=str(result.outcome),
        error=result.error,
        refusal=result.refusal,
    )


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
