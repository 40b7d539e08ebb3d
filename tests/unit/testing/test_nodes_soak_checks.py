"""The soak's checks on run records and audit events find what they are there to find."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dirsync.plan import Outcome
from dirsync.state.records import EventView, RunRecord
from dirsync.testing.nodes_soak import (
    check_audit,
    check_logs,
    check_runs,
    log_lines_naming,
    longest_gap,
)

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def run(run_id: str, node: str, start: int, end: int | None, outcome: Outcome) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        started_at=T0 + timedelta(seconds=start),
        finished_at=None if end is None else T0 + timedelta(seconds=end),
        outcome=outcome,
        full=False,
        node=node,
        organization="acme",
    )


def event(actor: str, action: str, target: str) -> EventView:
    return EventView(
        at=T0,
        organization="acme",
        actor=actor,
        action=action,
        target=target,
        before=None,
        after=None,
    )


def test_runs_one_after_another_and_a_taken_over_one_beside_them_are_fine() -> None:
    runs = [
        run("a", "node-a", 0, 2, Outcome.APPLIED),
        run("b", "node-b", 1, 6, Outcome.FAILED),  # stalled, taken over, applied nothing
        run("c", "node-c", 2, 3, Outcome.UNCHANGED),
        run("d", "node-a", 4, None, Outcome.INTERRUPTED),
        run("e", "node-b", 5, 7, Outcome.REFUSED),
    ]
    assert check_runs(runs) == []


def test_overlapping_results_and_an_unfinished_run_are_findings() -> None:
    runs = [
        run("a", "node-a", 0, 3, Outcome.APPLIED),
        run("b", "node-b", 2, 4, Outcome.UNCHANGED),
        run("c", "node-c", 5, None, Outcome.RUNNING),
    ]
    found = check_runs(runs)
    assert len(found) == 2
    assert "run b on node-b began" in found[1] and "before run a on node-a" in found[1]
    assert "run c on node-c has no final record" in found[0]


def test_an_event_of_a_failed_run_and_a_second_invitation_are_findings() -> None:
    runs = [run("a", "node-a", 0, 2, Outcome.APPLIED), run("b", "node-b", 1, 3, Outcome.FAILED)]
    events = [
        event("sync:a", "member.invite", "x@example.org"),
        event("sync:a", "member.invite", "y@example.org"),
        event("sync:b", "member.invite", "x@example.org"),
    ]
    found = check_audit("acme", events, runs)
    assert found == [
        "acme: member.invite x@example.org by sync:b, a run recorded as failed or interrupted",
        "acme: x@example.org invited 2 times",
    ]
    assert check_audit("acme", events[:2], runs) == []


def test_the_longest_gap_is_between_completed_runs_of_one_organization() -> None:
    runs = [
        run("a", "node-a", 0, 1, Outcome.APPLIED),
        run("b", "node-b", 2, None, Outcome.INTERRUPTED),
        run("c", "node-c", 9, 10, Outcome.UNCHANGED),
        run("d", "node-a", 11, 12, Outcome.APPLIED),
    ]
    assert longest_gap(runs) == (9.0, "acme")
    assert longest_gap(runs[1:2]) == (0.0, "")


def test_a_broken_log_line_and_a_traceback_are_findings(tmp_path: Path) -> None:
    log = tmp_path / "node-a.1.log"
    log.write_text(
        '{"event": "daemon.started"}\n'
        "apscheduler.scheduler: Execution of job skipped\n"
        '{"event": "daemon.seats_not_read"}apscheduler.scheduler: Execution of job skipped\n'
        "apscheduler.scheduler: Error notifying listener\n"
        "Traceback (most recent call last):\n"
        '  File "scheduler.py", line 410, in _on_event\n'
        "AttributeError: 'JobSubmissionEvent' object has no attribute 'scheduled_run_time'\n"
    )
    assert check_logs([log]) == [
        'node-a.1.log:3: a broken log line: {"event": "daemon.seats_not_read"}'
        "apscheduler.scheduler: Execution of job skipped",
        "node-a.1.log:5: a traceback: apscheduler.scheduler: Error notifying listener / "
        "AttributeError: 'JobSubmissionEvent' object has no attribute 'scheduled_run_time'",
    ]
    log.write_text('{"event": "daemon.started"}\ndirsync: cannot open the store ...\n')
    assert check_logs([log]) == []


def test_the_evidence_for_an_unfinished_run_is_the_last_log_lines_naming_it(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "node-a.1.log", tmp_path / "node-a.2.log"
    first.write_text(
        '{"event": "sync.started", "run_id": "r1"}\n'
        '{"event": "sync.started", "run_id": "r2"}\n'
        '{"event": "sync.read", "run_id": "r1"}\n'
    )
    second.write_text('{"event": "sync.load", "run_id": "r1"}\n')

    found = log_lines_naming([first, second], "r1", last=2)

    assert found == [
        'node-a.1.log: {"event": "sync.read", "run_id": "r1"}',
        'node-a.2.log: {"event": "sync.load", "run_id": "r1"}',
    ]
