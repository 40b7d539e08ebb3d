"""Incidents, pure: one opening per incident whatever the retries, one recovered at its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dirsync.daemon.incidents import Incident, after_run
from dirsync.plan import Outcome, Plan
from dirsync.sync.result import RunResult

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def result(outcome: Outcome, run_id: str = "r1", **extra: object) -> RunResult:
    return RunResult(
        organization="acme",
        run_id=run_id,
        dry_run=False,
        outcome=outcome,
        plan=Plan(),
        **extra,  # type: ignore[arg-type]
    )


def test_a_failure_opens_an_incident_that_retries_keep_and_a_success_closes() -> None:
    incident, notice = after_run(None, result(Outcome.FAILED, error="unreachable"), T0)
    assert notice is None and incident is not None
    assert incident.opening.event == "failed" and incident.opening.since == T0
    assert incident.opening.error == "unreachable"
    later = T0 + timedelta(minutes=5)
    kept, notice = after_run(incident.told("webhook"), result(Outcome.REFUSED, "r2"), later)
    assert notice is None and kept is not None and kept.opening == incident.opening
    assert kept.notified == {"webhook"}
    closed, notice = after_run(kept, result(Outcome.UNCHANGED, "r3"), later)
    assert closed is None and notice is not None
    assert notice.to_json() == {
        "organization": "acme",
        "event": "recovered",
        "since": "2026-03-02T09:00:00Z",
        "run_id": "r3",
        "outcome": "unchanged",
        "error": None,
        "refusal": [],
    }


def test_a_success_without_an_incident_says_nothing_and_a_refusal_carries_its_reasons() -> None:
    assert after_run(None, result(Outcome.APPLIED), T0) == (None, None)
    incident, _ = after_run(None, result(Outcome.REFUSED, refusal=("too many removals",)), T0)
    assert incident is not None and incident.opening.refusal == ("too many removals",)


def test_an_incident_survives_its_json() -> None:
    incident, _ = after_run(None, result(Outcome.FAILED, error="x"), T0)
    assert incident is not None
    told = incident.told("email to noc@msp.example")
    assert Incident.from_json(told.to_json()) == told
