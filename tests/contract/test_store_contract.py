"""What every ``Store`` promises the sync shell, scenario by scenario (see ``state/store.py``).

Plans come from the pure core itself, so a scenario is a real run's worth of writes: what the
store gives back must plan to nothing, carry the cursor and version it was given, and refuse a
write from a run that loaded an older version.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dirsync.errors import ConcurrentRunError, RunTakenOver
from dirsync.mapping.pipeline import PlannedRun, plan_run
from dirsync.mapping.scope import plan_scoped
from dirsync.model import Cursor, DirectoryDelta, Reading
from dirsync.organization import MemberStatus
from dirsync.plan import Outcome
from dirsync.rules import SyncRules
from dirsync.state.records import OpenedRun, RunRecord
from dirsync.state.store import Store
from dirsync.testing.builders import group, reading, user

ORG = "acme"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RULES = SyncRules()
ANN, BOB, CAT = user("ann"), user("bob"), user("cat")
STAFF = group("Staff", ANN, BOB)
OPS = group("Ops", CAT)
FIRST = reading(ANN, BOB, CAT, STAFF, OPS)


def record(run_id: str, outcome: Outcome = Outcome.APPLIED, *, minutes: int = 0) -> RunRecord:
    started = NOW + timedelta(minutes=minutes)
    return RunRecord(
        run_id=run_id,
        started_at=started,
        finished_at=None if outcome == Outcome.RUNNING else started + timedelta(seconds=2),
        outcome=outcome,
        full=True,
        counts={},
        entries_read=0,
    )


def plan_from(store: Store, read: Reading) -> tuple[PlannedRun, int]:
    loaded = store.load(ORG)
    planned = plan_run(
        mirror=loaded.mirror, reading=read, current=loaded.state, rules=RULES, now=NOW
    )
    return planned, loaded.version


def sync(store: Store, read: Reading, *, cursor: str, run_id: str, minutes: int = 0) -> int:
    """Plan ``read`` against the store and apply it, as a run does; the new version."""
    planned, version = plan_from(store, read)
    before = store.load(ORG).mirror
    return store.apply(
        ORG,
        plan=planned.plan,
        mirror_before=before,
        mirror_after=planned.mirror,
        cursor=Cursor(kind="test", value=cursor),
        run=record(run_id, minutes=minutes),
        expected_version=version,
        now=NOW + timedelta(minutes=minutes),
    )


def test_an_organization_never_written_loads_empty_at_version_zero(store: Store) -> None:
    loaded = store.load(ORG)
    assert (loaded.version, loaded.cursor) == (0, None)
    assert loaded.state.members == () and loaded.state.groups == ()
    assert loaded.mirror.users == {} and loaded.mirror.groups == {}
    assert store.quick_look(ORG) == (None, 0)
    assert store.load_scoped(ORG, DirectoryDelta(users=(ANN,))) is None


def test_what_was_applied_loads_back_and_plans_to_nothing(store: Store) -> None:
    planned, _ = plan_from(store, FIRST)
    assert len(planned.plan.invite) == 3 and len(planned.plan.create_groups) == 2

    version = sync(store, FIRST, cursor="c1", run_id="r1")

    loaded = store.load(ORG)
    assert loaded.version == version == 1
    assert loaded.cursor == Cursor(kind="test", value="c1")
    assert loaded.mirror == planned.mirror
    assert sorted(m.email for m in loaded.state.members) == [
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
    ]
    assert {m.status for m in loaded.state.members} == {MemberStatus.INVITED}
    assert {g.name: g.member_external_ids for g in loaded.state.groups} == {
        "Staff": {ANN.external_id, BOB.external_id},
        "Ops": {CAT.external_id},
    }
    again, _ = plan_from(store, FIRST)
    assert again.plan.is_empty


def test_a_later_run_changes_only_what_the_directory_changed(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    renamed = replace(BOB, name="Robert")
    later = reading(ANN, renamed, CAT, group("Staff", ANN, renamed), OPS)

    planned, _ = plan_from(store, later)
    assert [u.email for u in planned.plan.update] == ["bob@example.org"]
    assert sync(store, later, cursor="c2", run_id="r2", minutes=5) == 2

    assert plan_from(store, later)[0].plan.is_empty
    bob = next(m for m in store.load(ORG).state.members if m.email == "bob@example.org")
    assert bob.name == "Robert"


def test_an_apply_from_an_older_version_is_refused_and_writes_nothing(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    stale, version = plan_from(store, reading(ANN, BOB, STAFF))
    sync(store, reading(ANN, BOB, CAT, STAFF, OPS, user("dan")), cursor="c2", run_id="r2")
    before = store.load(ORG)

    with pytest.raises(ConcurrentRunError):
        store.apply(
            ORG,
            plan=stale.plan,
            mirror_before=before.mirror,
            mirror_after=stale.mirror,
            cursor=Cursor(kind="test", value="stale"),
            run=record("r3", minutes=9),
            expected_version=version,
            now=NOW,
        )

    after = store.load(ORG)
    assert (after.version, after.cursor, after.mirror) == (
        before.version,
        before.cursor,
        before.mirror,
    )
    assert sorted(m.email for m in after.state.members) == sorted(
        m.email for m in before.state.members
    )


def test_quick_look_gives_the_cursor_and_version_the_last_apply_left(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    assert store.quick_look(ORG) == (Cursor(kind="test", value="c1"), 1)


def test_opening_a_run_begins_it_and_gives_what_quick_look_gives(store: Store) -> None:
    first = store.open_run(ORG, record("r0", Outcome.RUNNING))
    assert first == OpenedRun(closed=0, cursor=None, version=0)  # never written before
    sync(store, FIRST, cursor="c1", run_id="r1", minutes=1)
    store.begin_run(ORG, record("died", Outcome.RUNNING, minutes=3))

    opened = store.open_run(ORG, record("r2", Outcome.RUNNING, minutes=5))

    assert opened == OpenedRun(closed=1, cursor=Cursor(kind="test", value="c1"), version=1)
    assert store.quick_look(ORG) == (opened.cursor, opened.version)
    outcomes = {r.run_id: r.outcome for r in store.runs([ORG])}
    assert (outcomes["died"], outcomes["r2"]) == (Outcome.INTERRUPTED, Outcome.RUNNING)


def test_a_quiet_run_moves_the_cursor_and_leaves_the_version(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    store.begin_run(ORG, record("r2", Outcome.RUNNING, minutes=5))

    recorded = store.record_quiet_run(
        ORG,
        cursor=Cursor(kind="test", value="c2"),
        run=record("r2", Outcome.UNCHANGED, minutes=5),
        expected_version=1,
    )

    assert recorded
    assert store.quick_look(ORG) == (Cursor(kind="test", value="c2"), 1)
    assert store.begin_run(ORG, record("r3", Outcome.RUNNING, minutes=9)) == 0


def test_a_quiet_run_after_another_run_applied_writes_nothing(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    sync(store, reading(ANN, BOB, STAFF), cursor="c2", run_id="r2", minutes=5)

    recorded = store.record_quiet_run(
        ORG,
        cursor=Cursor(kind="test", value="quiet"),
        run=record("r3", Outcome.UNCHANGED, minutes=9),
        expected_version=1,
    )

    assert not recorded
    assert store.quick_look(ORG) == (Cursor(kind="test", value="c2"), 2)


def test_a_run_left_running_is_closed_when_the_next_begins(store: Store) -> None:
    assert store.begin_run(ORG, record("r1", Outcome.RUNNING)) == 0
    assert store.begin_run(ORG, record("r2", Outcome.RUNNING, minutes=5)) == 1
    assert store.begin_run(ORG, record("r3", Outcome.RUNNING, minutes=9)) == 1


def test_a_run_begins_by_closing_only_its_organizations_runs_left_running(store: Store) -> None:
    for number in range(5):
        store.record_run(ORG, record(f"done-{number}", minutes=number))
    store.begin_run(ORG, record("died", Outcome.RUNNING, minutes=10))
    store.begin_run("other", record("other-running", Outcome.RUNNING, minutes=10))

    assert store.begin_run(ORG, record("next", Outcome.RUNNING, minutes=15)) == 1

    outcomes = {r.run_id: r.outcome for r in store.runs()}
    assert outcomes == {
        **{f"done-{number}": Outcome.APPLIED for number in range(5)},
        "died": Outcome.INTERRUPTED,
        "other-running": Outcome.RUNNING,
        "next": Outcome.RUNNING,
    }


def test_recording_a_failed_run_closes_it_and_changes_nothing_else(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    before = store.load(ORG)
    store.begin_run(ORG, record("r2", Outcome.RUNNING, minutes=5))

    store.record_run(ORG, replace(record("r2", Outcome.FAILED, minutes=5), error="unreachable"))

    after = store.load(ORG)
    assert (after.version, after.cursor, after.mirror) == (
        before.version,
        before.cursor,
        before.mirror,
    )
    assert store.begin_run(ORG, record("r3", Outcome.RUNNING, minutes=9)) == 0


def test_the_part_a_delta_touches_plans_as_the_whole_organization_does(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    delta = DirectoryDelta(users=(replace(CAT, name="Catherine"),), deleted_user_ids=frozenset())
    read = Reading(delta=delta, cursor=Cursor(kind="test", value="c2"), entries_read=1)

    scoped = store.load_scoped(ORG, delta)

    assert scoped is not None and scoped.version == 1
    assert set(scoped.mirror.users) == {CAT.external_id}
    whole, _ = plan_from(store, read)
    part = plan_scoped(scoped, read, RULES, now=NOW)
    assert part.plan == whole.plan
    assert [u.email for u in part.plan.update] == ["cat@example.org"]


def test_a_run_that_another_run_began_after_applies_nothing(store: Store) -> None:
    """The fencing: a node that lost the organization (stalled past ``takeover``) and resumes
    finds its run closed by the run that began after it, and writes nothing, even where the
    version alone would let it (the other run has not applied yet)."""
    sync(store, FIRST, cursor="c1", run_id="r1")
    store.begin_run(ORG, record("stalled", Outcome.RUNNING, minutes=5))
    planned, version = plan_from(store, reading(ANN, BOB, STAFF))
    before = store.load(ORG)
    store.begin_run(ORG, record("took-over", Outcome.RUNNING, minutes=7))

    with pytest.raises(RunTakenOver, match="another run of it began after this one"):
        store.apply(
            ORG,
            plan=planned.plan,
            mirror_before=before.mirror,
            mirror_after=planned.mirror,
            cursor=Cursor(kind="test", value="stale"),
            run=record("stalled", minutes=5),
            expected_version=version,
            now=NOW,
        )
    with pytest.raises(RunTakenOver):
        store.record_quiet_run(
            ORG,
            cursor=Cursor(kind="test", value="stale"),
            run=record("stalled", Outcome.UNCHANGED, minutes=5),
            expected_version=version,
        )

    after = store.load(ORG)
    assert (after.version, after.cursor, after.mirror) == (
        before.version,
        before.cursor,
        before.mirror,
    )
    # the run that took over applies as usual
    sync(store, reading(ANN, BOB, STAFF), cursor="c2", run_id="took-over", minutes=7)
    assert store.quick_look(ORG) == (Cursor(kind="test", value="c2"), 2)


def test_a_quiet_run_is_not_recorded_while_an_invitation_is_due(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")  # ann, bob and cat invited at NOW
    store.begin_run(ORG, record("r2", Outcome.RUNNING, minutes=5))

    def quiet(sent_before: datetime) -> bool:
        return store.record_quiet_run(
            ORG,
            cursor=Cursor(kind="test", value="quiet"),
            run=record("r2", Outcome.UNCHANGED, minutes=5),
            expected_version=1,
            reinvite_before=sent_before,
        )

    assert not quiet(NOW)  # sent at NOW: due from then on
    assert store.quick_look(ORG) == (Cursor(kind="test", value="c1"), 1)
    assert quiet(NOW - timedelta(microseconds=1))
    assert store.quick_look(ORG) == (Cursor(kind="test", value="quiet"), 1)


def test_known_ids_are_those_the_organization_holds_among_few_and_many(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    others = {f"elsewhere-{n}" for n in range(150)}
    for unknown in (set(), others):
        users = {ANN.external_id, CAT.external_id} | unknown
        groups = {STAFF.external_id} | unknown
        assert store.known_ids(ORG, users, groups) == (
            {ANN.external_id, CAT.external_id},
            {STAFF.external_id},
        )
    assert store.known_ids("nobody", {ANN.external_id}, set()) == (frozenset(), frozenset())


def test_held_refs_are_the_refs_the_mirror_holds_for_those_ids(store: Store) -> None:
    sync(store, FIRST, cursor="c1", run_id="r1")
    asked = {ANN.external_id, STAFF.external_id, "elsewhere"}
    assert store.held_refs(ORG, asked) == {ANN.external_id: ANN.ref, STAFF.external_id: STAFF.ref}
    assert store.held_refs("nobody", asked) == {}
