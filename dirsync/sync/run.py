"""The imperative shell around the pure core: one organization, one run.

A run is four steps, as ``shared/design.md`` tells it (each below, in order):

1. ``_quiet_look``: a delta from the stored cursor alone (read as the run began); if it
   changed nothing on an organization nobody touched since the last plan, record that and
   stop (no load, no plan).
2. ``_load_and_read``: load only what the delta touches (``mapping.scope``) or the whole
   organization, and read the directory if the quiet look did not already (a whole load
   takes its full-load slot first, see ``FullLoadSlot``).
3. ``_plan``: the pure mapping layer makes the plan and its guards may refuse it.
4. ``_apply_or_record``: a dry run returns the plan; otherwise the store applies it in one
   transaction.

Source failures and refusals are results, not exceptions, so that one organization's trouble
never stops the others; a step that ends the run raises ``_Over`` with its result, which
``run_organization`` returns.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from dirsync.connectors.base import Connector, ProgressCallback
from dirsync.errors import CursorExpired, PlanRefused, SourceError, StoreError
from dirsync.mapping.pipeline import PlannedRun, plan_run
from dirsync.mapping.scope import ScopedOrganization, may_scope, plan_scoped
from dirsync.model import Cursor, Mirror, Reading
from dirsync.plan import Outcome, Plan
from dirsync.rules import SyncRules
from dirsync.state.records import StoredOrganization
from dirsync.state.store import Store
from dirsync.sync import quiet
from dirsync.sync.gcpause import paused_gc
from dirsync.sync.result import Results, RunResult, finished_record, running_record

log = structlog.get_logger("dirsync.sync.run")

Clock = Callable[[], datetime]


class FullLoadSlot(AbstractContextManager["FullLoadSlot"], Protocol):
    """One run's share of the daemon's bound on whole loads (``daemon.full_loads``): entered
    before the directory read (a slow read lends it to other runs); ``hold`` waits for the
    right to load, plan and apply, and keeps it to the end of the run."""

    def hold(self) -> None: ...


def this_node() -> str:
    """This host's name, as run records name the node that ran them."""
    return socket.gethostname()


def utcnow() -> datetime:
    return datetime.now(UTC)


@paused_gc()
def run_organization(
    name: str,
    rules: SyncRules,
    connector: Connector,
    store: Store,
    *,
    dry_run: bool = False,
    full: bool = False,
    now: Clock = utcnow,
    progress: ProgressCallback | None = None,
    approve: str | None = None,
    node: str | None = None,
    actor: str | None = None,
    recent_removals: int = 0,
    full_load_gate: Callable[[], FullLoadSlot] | None = None,
) -> RunResult:
    """Read, plan, guard and (unless dry) apply in one transaction.

    Every run is recorded (except a dry run, which writes nothing at all), and recorded as
    running when it begins, so that one whose process dies shows up; the next run closes it
    as interrupted. ``full`` ignores the stored cursor. ``approve`` is the digest of a refused
    plan to apply anyway (see ``plan_run``). ``node`` names this host in the run's record
    (default: its host name). ``actor`` is who the audit events name (default: the run
    itself). ``recent_removals``: the deprovisionings of the removal window before a push
    (the guards count them with the plan's for a pushed source). The cyclic garbage
    collector is paused meanwhile (see ``gcpause``).
    """
    run = _Run(
        name,
        rules,
        connector,
        store,
        dry_run,
        full,
        now,
        progress,
        approve,
        node or this_node(),
        actor,
        recent_removals,
        full_load_gate,
    )
    try:
        stored = run.begin()
        look = _unlooked(stored, full=full) if full or dry_run else _quiet_look(run, stored)
        loaded = _load_and_read(run, look)
        planned = _plan(run, loaded)
        return _apply_or_record(run, loaded, planned)
    except _Over as over:
        return over.result
    finally:
        run.held.close()


class _Over(Exception):
    """A step ended the run early with ``result`` (recorded already)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.outcome)
        self.result = result


@dataclass(slots=True)
class _Run:
    """One run's inputs, its id and start, and its log; ends runs that stop early."""

    name: str
    rules: SyncRules
    connector: Connector
    store: Store
    dry_run: bool
    full: bool
    now: Clock
    progress: ProgressCallback | None
    approve: str | None
    node: str
    actor: str | None
    recent_removals: int
    full_load_gate: Callable[[], FullLoadSlot] | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: datetime = field(init=False)
    results: Results = field(init=False)
    log: Any = field(init=False)
    #: what the run holds until it ends (the full-load gate, once taken)
    held: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        self.started = self.now()
        self.results = Results(name=self.name, run_id=self.run_id, dry_run=self.dry_run)
        self.log = log.bind(organization=self.name, run_id=self.run_id, dry_run=self.dry_run)

    def begin(self) -> tuple[Cursor | None, int]:
        """Record the run as running (a dry run writes nothing); the stored cursor and
        version, read in the same transaction. A store that fails ends the run."""
        try:
            if self.dry_run:
                return self.store.quick_look(self.name)
            record = running_record(self.run_id, self.started, full=self.full, node=self.node)
            opened = self.store.open_run(self.name, record)
        except StoreError as exc:
            self.log.error("sync.begin_failed", error=str(exc))
            raise _Over(self.results.failed(str(exc))) from exc
        if opened.closed:
            self.log.warning("sync.interrupted_runs_closed", count=opened.closed)
        return opened.cursor, opened.version

    def held_refs(self, ids: Collection[str]) -> Mapping[str, str]:
        """What the stored mirror holds of these ids (a delta read's ``held``): the run plans
        against this mirror, or, if another run applied meanwhile, fails its version check."""
        return self.store.held_refs(self.name, ids)

    def read_failed(self, exc: SourceError) -> _Over:
        self.log.error("sync.read_failed", error=str(exc))
        return self.over(self.results.failed(str(exc)), full=self.full)

    def over(self, result: RunResult, *, full: bool) -> _Over:
        """End the run with a result that changed nothing else (failed or refused): it is
        recorded, except in a dry run."""
        if not result.dry_run:
            record = finished_record(result, self.started, self.now(), full=full, node=self.node)
            try:
                self.store.record_run(self.name, record)
            except StoreError as exc:
                self.log.error("sync.record_failed", error=str(exc))
        return _Over(result)


@dataclass(frozen=True, slots=True)
class _Look:
    """What the stored cursor alone gave: a delta (if one was read) and the version then;
    without a reading, the cursor a read starts from (None: a read in full)."""

    reading: Reading | None = None
    version: int = -1
    key: str | None = None
    expired: bool = False
    cursor: Cursor | None = None

    def as_last_planned(self, rules: SyncRules) -> bool:
        """Whether the organization is as the last plan left it (the quiet key says so)."""
        return self.key == quiet.quiet_key(rules, self.version)


def _unlooked(stored: tuple[Cursor | None, int], *, full: bool) -> _Look:
    """Step 1 skipped (a full or a dry run): a run in full reads without a cursor; a dry run
    from the stored one, and is never quiet."""
    stored_cursor, version = stored
    return _Look(version=version, cursor=None if full else quiet.unwrap(stored_cursor)[0])


def _quiet_look(run: _Run, stored: tuple[Cursor | None, int]) -> _Look:
    """Step 1: read a delta from the stored cursor (and the version with it, as the run's
    begin read them); end the run if nothing changed."""
    stored_cursor, version = stored
    cursor, key = quiet.unwrap(stored_cursor)
    if cursor is None:
        return _Look(version=version, key=key)
    try:
        reading = run.connector.read(cursor, progress=run.progress, held=run.held_refs)
    except CursorExpired as exc:
        run.log.info("sync.cursor_expired", reason=str(exc))
        return _Look(version=version, key=key, expired=True)
    except SourceError as exc:
        raise run.read_failed(exc) from exc
    reading = _known_deletions(run, reading)
    look = _Look(reading, version, key)
    if look.as_last_planned(run.rules) and quiet.nothing_changed(reading):
        done = run.results.done(Outcome.UNCHANGED, Plan(), reading.warnings, reading.entries_read)
        try:
            recorded = run.store.record_quiet_run(
                run.name,
                cursor=quiet.wrap(reading.cursor, quiet.quiet_key(run.rules, version)),
                run=finished_record(done, run.started, run.now(), full=False, node=run.node),
                expected_version=version,
                reinvite_before=quiet.reinvite_cutoff(run.rules, run.started),
            )
        except StoreError as exc:  # e.g. another node took the run over
            run.log.error("sync.record_failed", error=str(exc))
            raise run.over(run.results.failed(str(exc)), full=False) from exc
        if recorded:
            run.log.info("sync.unchanged", entries_read=reading.entries_read, quiet=True)
            raise _Over(done)
    return look


def _known_deletions(run: _Run, reading: Reading) -> Reading:
    """The reading without deletions of entries the organization never held: they change
    no plan, and a source may report many (syncprov's session log names every entry changed
    anywhere below the suffix to every search it no longer matches)."""
    delta = reading.delta
    if delta is None or not (delta.deleted_user_ids or delta.deleted_group_ids):
        return reading
    users, groups = run.store.known_ids(run.name, delta.deleted_user_ids, delta.deleted_group_ids)
    # a partial change of a group deleted in the same delta stays ignored (see apply_delta)
    groups |= delta.deleted_group_ids & {c.external_id for c in delta.group_changes}
    if len(users) == len(delta.deleted_user_ids) and len(groups) == len(delta.deleted_group_ids):
        return reading
    run.log.debug(
        "sync.unknown_deletions_dropped",
        users=len(delta.deleted_user_ids) - len(users),
        groups=len(delta.deleted_group_ids) - len(groups),
    )
    pruned = replace(delta, deleted_user_ids=users, deleted_group_ids=groups)
    return replace(reading, delta=pruned)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """The reading to plan from and the organization it is planned against: either the part
    a delta touches (``scoped``) or all of it (``stored``)."""

    reading: Reading
    scoped: ScopedOrganization | None = None
    stored: StoredOrganization | None = None

    @property
    def mirror(self) -> Mirror:
        return self.scoped.mirror if self.scoped is not None else self._whole.mirror

    @property
    def version(self) -> int:
        return self.scoped.version if self.scoped is not None else self._whole.version

    def directory_counts(self, mirror_after: Mirror) -> tuple[int, int]:
        """Users and groups in the whole mirror once ``mirror_after`` replaces ours."""
        if self.scoped is None:
            return len(mirror_after.users), len(mirror_after.groups)
        added_users = len(mirror_after.users) - len(self.scoped.mirror.users)
        added_groups = len(mirror_after.groups) - len(self.scoped.mirror.groups)
        return (
            self.scoped.counted.directory_users + added_users,
            self.scoped.directory_groups + added_groups,
        )

    @property
    def _whole(self) -> StoredOrganization:
        assert self.stored is not None
        return self.stored


def _load_and_read(run: _Run, look: _Look) -> _Loaded:
    """Step 2: a delta on the organization as the last plan left it can change the plan only
    for what it touches, so only that is loaded; otherwise all of it, and a read from its
    cursor (or in full) unless the quiet look's delta is still good for it. A whole load
    enters its full-load slot before that read (a finished reading costs memory while it
    waits) and holds it for the load, the plan and the apply."""
    reading = look.reading
    if (
        reading is not None
        and reading.delta is not None
        and look.as_last_planned(run.rules)
        and may_scope(run.rules, reading)
    ):
        rules = run.rules
        scoped = run.store.load_scoped(
            run.name,
            reading.delta,
            seats=bool(rules.seats),
            reinvite_before=quiet.reinvite_cutoff(rules, run.started),
            collection_groups=(
                {g for c in rules.collections for g in c.groups} if rules.collections else None
            ),
        )
        if scoped is not None and scoped.version == look.version:
            run.log.info(
                "sync.scoped",
                users=len(scoped.mirror.users),
                groups=len(scoped.mirror.groups),
                members=len(scoped.state.members),
            )
            return _Loaded(reading, scoped=scoped)
    slot = None if run.full_load_gate is None else run.held.enter_context(run.full_load_gate())
    if reading is None:
        reading = _read(run, look.cursor)
    if slot is not None:
        slot.hold()
    stored = run.store.load(run.name)
    if stored.version != look.version:  # applied by another since: read from what it left
        full = run.full or look.expired
        reading = _read(run, None if full else quiet.unwrap(stored.cursor)[0])
    return _Loaded(reading, stored=stored)


def _read(run: _Run, cursor: Cursor | None) -> Reading:
    """Read from ``cursor`` (None: in full), in full if the source no longer has it; a
    source that fails ends the run."""
    try:
        try:
            return run.connector.read(cursor, progress=run.progress, held=run.held_refs)
        except CursorExpired as exc:
            run.log.info("sync.cursor_expired", reason=str(exc))
            return run.connector.read(None, progress=run.progress)
    except SourceError as exc:
        raise run.read_failed(exc) from exc


def _plan(run: _Run, loaded: _Loaded) -> PlannedRun:
    """Step 3: the pure core plans; a guard's refusal ends the run (recorded, not applied)."""
    reading = loaded.reading
    try:
        if loaded.scoped is not None:
            planned = plan_scoped(
                loaded.scoped,
                reading,
                run.rules,
                approve=run.approve,
                now=run.started,
                recent_removals=run.recent_removals,
            )
        else:
            assert loaded.stored is not None
            planned = plan_run(
                mirror=loaded.stored.mirror,
                reading=reading,
                current=loaded.stored.state,
                rules=run.rules,
                approve=run.approve,
                now=run.started,
                recent_removals=run.recent_removals,
            )
    except PlanRefused as refused:
        run.log.warning("sync.refused", reasons=refused.reasons, **refused.plan.counts())
        result = run.results.refused(refused, entries_read=reading.entries_read)
        raise run.over(result, full=reading.is_full) from refused
    for warning in planned.warnings:
        run.log.warning("sync.warning", message=warning)
    if planned.approved_over:
        run.log.warning(
            "sync.approved", plan_digest=run.approve, overridden=list(planned.approved_over)
        )
    return planned


def _apply_or_record(run: _Run, loaded: _Loaded, planned: PlannedRun) -> RunResult:
    """Step 4: a dry run returns the plan; otherwise one transaction writes the plan, the
    mirror, the cursor and the run record, if nobody applied since the load."""
    plan, reading = planned.plan, loaded.reading
    if run.dry_run:
        run.log.info("sync.planned", **plan.counts())
        return run.results.done(Outcome.DRY_RUN, plan, planned.warnings, reading.entries_read)
    users, groups = loaded.directory_counts(planned.mirror)
    outcome = Outcome.UNCHANGED if plan.is_empty else Outcome.APPLIED
    done = replace(
        run.results.done(outcome, plan, planned.warnings, reading.entries_read),
        directory_users=users,
        directory_groups=groups,
        plan_digest=plan.digest(),
    )
    record = replace(
        finished_record(done, run.started, run.now(), full=reading.is_full, node=run.node),
        actor=run.actor,
    )
    try:
        run.store.apply(
            run.name,
            plan=plan,
            mirror_before=loaded.mirror,
            mirror_after=planned.mirror,
            cursor=quiet.wrap(reading.cursor, quiet.quiet_key(run.rules, loaded.version + 1)),
            run=record,
            expected_version=loaded.version,
            now=record.started_at,
        )
    except StoreError as exc:
        run.log.error("sync.apply_failed", error=str(exc))
        raise run.over(run.results.failed(str(exc), plan=plan), full=run.full) from exc
    event = "sync.applied" if outcome == Outcome.APPLIED else "sync.unchanged"
    run.log.info(event, entries_read=reading.entries_read, **plan.counts())
    return done
