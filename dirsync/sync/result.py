"""What one run ends with: the ``RunResult`` the drivers print, and the ``RunRecord`` the store
keeps of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dirsync.errors import PlanRefused
from dirsync.plan import Outcome, Plan
from dirsync.state.records import RunRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    organization: str
    run_id: str
    dry_run: bool
    outcome: Outcome
    plan: Plan
    warnings: tuple[str, ...] = ()
    error: str | None = None
    refusal: tuple[str, ...] = ()
    entries_read: int = 0
    #: users and groups in the directory's mirror after the run (None when it did not plan)
    directory_users: int | None = None
    directory_groups: int | None = None
    #: the plan's digest once a step needed it (~0.3 s to compute at 100,000 entries)
    plan_digest: str | None = None

    def digest(self) -> str:
        return self.plan_digest if self.plan_digest is not None else self.plan.digest()

    def to_json(self, *, plan_as_is: bool = False) -> dict[str, Any]:
        """The contract's result object; ``plan_as_is`` leaves the ``Plan`` itself under
        "plan", for ``json_stream`` to encode an entry at a time."""
        return {
            "organization": self.organization,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "outcome": str(self.outcome),
            "plan": self.plan if plan_as_is else self.plan.to_json(),
            "counts": self.plan.counts(),
            "plan_digest": self.digest(),
            "entries_read": self.entries_read,
            "warnings": list(self.warnings),
            "refusal": list(self.refusal),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    """Makes the results of one run, which all name the same organization and run."""

    name: str
    run_id: str
    dry_run: bool

    def done(
        self, outcome: Outcome, plan: Plan, warnings: tuple[str, ...], entries_read: int
    ) -> RunResult:
        return RunResult(
            organization=self.name,
            run_id=self.run_id,
            dry_run=self.dry_run,
            outcome=outcome,
            plan=plan,
            warnings=warnings,
            entries_read=entries_read,
        )

    def failed(self, error: str, *, plan: Plan | None = None) -> RunResult:
        return RunResult(
            organization=self.name,
            run_id=self.run_id,
            dry_run=self.dry_run,
            outcome=Outcome.FAILED,
            plan=plan or Plan(),
            error=error,
        )

    def refused(self, refused: PlanRefused, *, entries_read: int) -> RunResult:
        digest = refused.plan.digest()
        return RunResult(
            organization=self.name,
            run_id=self.run_id,
            dry_run=self.dry_run,
            outcome=Outcome.REFUSED,
            plan=refused.plan,
            warnings=refused.warnings,
            error=(
                f"refused: {refused} (plan {digest}; to apply this exact plan once anyway: "
                f"dirsync sync --org {self.name} --approve {digest})"
            ),
            refusal=tuple(refused.reasons),
            entries_read=entries_read,
            plan_digest=digest,
        )


def running_record(
    run_id: str, started: datetime, *, full: bool, node: str | None = None
) -> RunRecord:
    """The record of a run that has begun (closed as interrupted if its process dies)."""
    return RunRecord(
        node=node,
        run_id=run_id,
        started_at=started,
        finished_at=None,
        outcome=Outcome.RUNNING,
        full=full,
        counts={},
        entries_read=0,
        error=None,
        warnings=(),
        plan_digest=None,
    )


def finished_record(
    result: RunResult,
    started: datetime,
    finished: datetime,
    *,
    full: bool,
    node: str | None = None,
) -> RunRecord:
    """The record of a run that has ended, as ``result`` says it did."""
    return RunRecord(
        node=node,
        run_id=result.run_id,
        started_at=started,
        finished_at=finished,
        outcome=result.outcome,
        full=full,
        counts=result.plan.counts(),
        entries_read=result.entries_read,
        error=result.error,
        warnings=result.warnings,
        plan_digest=result.digest(),
    )
