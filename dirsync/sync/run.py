"""The imperative shell around the pure core: one organization, one run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from dirsync.connectors.base import Connector, ProgressCallback
from dirsync.errors import CursorExpired, PlanRefused, SourceError, StoreError
from dirsync.mapping.pipeline import plan_run
from dirsync.mapping.scope import ScopedOrganization, may_scope, plan_scoped
from dirsync.model import Reading
from dirsync.plan import Outcome, Plan
from dirsync.rules import SyncRules
from dirsync.state.records import RunRecord, StoredOrganization
from dirsync.state.sql_store import SqlStore
from dirsync.sync import quiet
from dirsync.sync.gcpause import paused_gc

log = structlog.get_logger("dirsync.sync")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


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


@paused_gc()
def run_organization(
    name: str,
    rules: SyncRules,
    connector: Connector,
    store: SqlStore,
    *,
    dry_run: bool = False,
    full: bool = False,
    now: Clock = utcnow,
    progress: ProgressCallback | None = None,
    approve: str | None = None,
) -> RunResult:
    """Read, plan, guard and (unless dry) apply in one transaction.

    Source failures and refusals are results, not exceptions, so that one organization's
    trouble never stops the others; each is recorded as a run (except in a dry run, which
    writes nothing at all). A run is recorded as running when it begins, so that one whose
    process dies shows up, and is closed as interrupted when the next run begins.
    ``approve`` is the digest of a refused plan to apply anyway (see ``plan_run``).
    The cyclic garbage collector is paused meanwhile (see ``gcpause``).
    """
    run_id = uuid.uuid4().hex[:12]
    started = now()
    bound = log.bind(organization=name, run_id=run_id, dry_run=dry_run)
    result = _Result(name=name, run_id=run_id, dry_run=dry_run)
    if not dry_run:
        try:
            closed = store.begin_run(name, _running(run_id, started, full=full))
        except StoreError as exc:
            bound.error("sync.begin_failed", error=str(exc))
            return result.failed(str(exc))
        if closed:
            bound.warning("sync.interrupted_runs_closed", count=closed)

    reading: Reading | None = None
    quick_version = -1
    key: str | None = None
    expired = False
    if not full and not dry_run:
        # a delta first, from the stored cursor alone: no change → no need to load and plan
        stored_cursor, quick_version = store.quick_look(name)
        cursor, key = quiet.unwrap(stored_cursor)
        if cursor is not None:
            try:
                reading = connector.read(cursor, progress=progress)
            except CursorExpired as exc:
                bound.info("sync.cursor_expired", reason=str(exc))
                expired = True
            except SourceError as exc:
                bound.error("sync.read_failed", error=str(exc))
                return _finish(store, result.failed(str(exc)), started, now, full=False)
            if (
                reading is not None
                and key == quiet.quiet_key(rules, quick_version)
                and quiet.may_be_quiet(rules)
                and quiet.nothing_changed(reading)
            ):
                done = result.done(
                    Outcome.UNCHANGED, Plan(), reading.warnings, reading.entries_read
                )
                if store.record_quiet_run(
                    name,
                    cursor=quiet.wrap(reading.cursor, key),
                    run=_record(done, started, now(), full=False),
                    expected_version=quick_version,
                ):
                    bound.info("sync.unchanged", entries_read=reading.entries_read, quiet=True)
                    return done

    # the organization as the last plan left it (the quiet key says so): a delta can change
    # the plan only for what it touches, so only that is loaded and planned (``scope``)
    scoped: ScopedOrganization | None = None
    if (
        reading is not None
        and reading.delta is not None
        and key == quiet.quiet_key(rules, quick_version)
        and may_scope(rules, reading)
    ):
        scoped = store.load_scoped(name, reading.delta, seats=bool(rules.seats))
        if scoped is not None and scoped.version != quick_version:
            scoped = None
    stored: StoredOrganization | None = None
    if scoped is None:
        stored = store.load(name)
        if reading is None or stored.version != quick_version:
            try:
                reading = _read(
                    connector, stored, full=full or expired, progress=progress, log=bound
                )
            except SourceError as exc:
                bound.error("sync.read_failed", error=str(exc))
                return _finish(store, result.failed(str(exc)), started, now, full=full)
    else:
        bound.info(
            "sync.scoped",
            users=len(scoped.mirror.users),
            groups=len(scoped.mirror.groups),
            members=len(scoped.state.members),
        )
    assert reading is not None

    try:
        if scoped is not None:
            planned = plan_scoped(scoped, reading, rules, approve=approve, now=started)
        else:
            assert stored is not None
            planned = plan_run(
                mirror=stored.mirror,
                reading=reading,
                current=stored.state,
                rules=rules,
                approve=approve,
                now=started,
            )
    except PlanRefused as refused:
        bound.warning("sync.refused", reasons=refused.reasons, **refused.plan.counts())
        return _finish(
            store,
            result.refused(refused, entries_read=reading.entries_read),
            started,
            now,
            full=reading.is_full,
        )

    for warning in planned.warnings:
        bound.warning("sync.warning", message=warning)
    if planned.approved_over:
        bound.warning("sync.approved", plan_digest=approve, overridden=list(planned.approved_over))
    plan = planned.plan
    if dry_run:
        bound.info("sync.planned", **plan.counts())
        return result.done(Outcome.DRY_RUN, plan, planned.warnings, reading.entries_read)

    if scoped is not None:
        mirror_before, version = scoped.mirror, scoped.version
        users = (
            scoped.counted.directory_users + len(planned.mirror.users) - len(mirror_before.users)
        )
        groups = scoped.directory_groups + len(planned.mirror.groups) - len(mirror_before.groups)
    else:
        assert stored is not None
        mirror_before, version = stored.mirror, stored.version
        users, groups = len(planned.mirror.users), len(planned.mirror.groups)
    outcome = Outcome.UNCHANGED if plan.is_empty else Outcome.APPLIED
    done = replace(
        result.done(outcome, plan, planned.warnings, reading.entries_read),
        directory_users=users,
        directory_groups=groups,
        plan_digest=plan.digest(),
    )
    record = _record(done, started, now(), full=reading.is_full)
    try:
        store.apply(
            name,
            plan=plan,
            mirror_before=mirror_before,
            mirror_after=planned.mirror,
            cursor=quiet.wrap(reading.cursor, quiet.quiet_key(rules, version + 1)),
            run=record,
            expected_version=version,
            now=record.started_at,
        )
    except StoreError as exc:
        bound.error("sync.apply_failed", error=str(exc))
        return _finish(store, result.failed(str(exc), plan=plan), started, now, full=full)
    event = "sync.applied" if outcome == Outcome.APPLIED else "sync.unchanged"
    bound.info(event, entries_read=reading.entries_read, **plan.counts())
    return done


def _read(
    connector: Connector,
    stored: StoredOrganization,
    *,
    full: bool,
    progress: ProgressCallback | None,
    log: Any,
) -> Reading:
    cursor = None if full else quiet.unwrap(stored.cursor)[0]
    try:
        return connector.read(cursor, progress=progress)
    except CursorExpired as exc:
        log.info("sync.cursor_expired", reason=str(exc))
        return connector.read(None, progress=progress)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Result:
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


def _running(run_id: str, started: datetime, *, full: bool) -> RunRecord:
    return RunRecord(
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


def _record(result: RunResult, started: datetime, finished: datetime, *, full: bool) -> RunRecord:
    return RunRecord(
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


def _finish(
    store: SqlStore, result: RunResult, started: datetime, now: Clock, *, full: bool
) -> RunResult:
    """Record a run that changed nothing else (failed or refused); a dry run records nothing."""
    if not result.dry_run:
        try:
            store.record_run(result.organization, _record(result, started, now(), full=full))
        except StoreError as exc:
            log.error("sync.record_failed", organization=result.organization, error=str(exc))
    return result
