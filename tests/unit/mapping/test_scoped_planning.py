"""Planning by difference equals full planning: generated organizations and deltas, real store.

Each example builds an organization in a real SQLite store (members the sync never made
included), syncs a directory into it until full planning has nothing left to do, then reads a
generated delta. The plan made from only what the delta touches (``SqlStore.load_scoped`` +
``plan_scoped``) must equal the plan made from the whole organization, refusals included; once
applied, the stored mirror must equal the full planner's, and the organization must again be
at the fixed point the next scoped run relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from dirsync.errors import PlanRefused
from dirsync.mapping.pipeline import PlannedRun, plan_run
from dirsync.mapping.scope import plan_scoped
from dirsync.model import (
    DirectoryDelta,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    GroupChange,
    Mirror,
    Reading,
)
from dirsync.organization import MemberStatus, RevokeReason, Role
from dirsync.plan import Outcome, Plan
from dirsync.rules import Deprovision, RemovalLimit, SyncRules
from dirsync.state import counts
from dirsync.state.records import RunRecord
from dirsync.state.schema import MemberRow, MirrorGroupMemberRow, OrganizationRow
from dirsync.state.sql_store import SqlStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_orgs = count(1)
_runs = count(1)

# small pools, so that addresses, refs and names collide often
ADDRESSES = ["ann", "bob", "cy", "dee", "eve", "fay"]


def emails(index: int) -> st.SearchStrategy[str | None]:
    """Mostly the user's own address (so that a delta's scope stays small), else one that
    others share, in any case, or none at all."""
    return st.one_of(
        st.just(f"user{index}@example.org"),
        st.just(f"user{index}@example.org"),
        st.just(f"User{index}@Example.org"),
        st.sampled_from(ADDRESSES).map(lambda n: f"{n}@example.org"),
        st.sampled_from(ADDRESSES).map(lambda n: f" {n.upper()}@Example.org"),
        st.sampled_from([None, "", "no-at-sign"]),
    )


USER_REFS = [f"uid=u{i}" for i in range(10)]
GROUP_REFS = [f"cn=g{i}" for i in range(6)]
# nesting is common: a group names another group about one time in three
refs = st.one_of(
    st.sampled_from(USER_REFS),
    st.sampled_from(GROUP_REFS),
    st.sampled_from(["username:u1", "username:u2", "cn=ghost", "uid=moved1", "cn=renamed0"]),
)


@st.composite
def users(draw: st.DrawFn, index: int, ref: str) -> DirectoryUser:
    return DirectoryUser(
        external_id=f"id{index}",
        ref=ref,
        username=draw(st.sampled_from([None, f"u{index}"])),
        email=draw(emails(index)),
        name=draw(st.sampled_from([None, "A", "B"])),
        disabled=draw(st.sampled_from([False, False, False, True])),
    )


@st.composite
def groups(draw: st.DrawFn, index: int, ref: str) -> DirectoryGroup:
    return DirectoryGroup(
        external_id=f"gid{index}",
        ref=ref,
        name=draw(st.sampled_from(["staff", "ops", f"g{index}"])),
        member_refs=frozenset(draw(st.lists(refs, max_size=5))),
    )


@st.composite
def directories(draw: st.DrawFn) -> DirectorySnapshot:
    # never empty: an empty read is refused whole (tested elsewhere), and would stop the seeding
    user_numbers = draw(st.sets(st.integers(0, 7), min_size=1, max_size=8))
    group_numbers = draw(st.sets(st.integers(0, 3), max_size=4))
    return DirectorySnapshot(
        users=tuple(draw(users(i, f"uid=u{i}")) for i in sorted(user_numbers)),
        groups=tuple(draw(groups(i, f"cn=g{i}")) for i in sorted(group_numbers)),
    )


@st.composite
def deltas(draw: st.DrawFn, before: DirectorySnapshot) -> DirectoryDelta:
    old_users = [u.external_id for u in before.users]
    old_groups = [g.external_id for g in before.groups]
    # one kind of change at a time more often than not: small scopes find more mistakes
    kinds = draw(st.sampled_from(["users", "groups", "partial", "deletions", "mixed", "mixed"]))
    some = {k: kinds in (k, "mixed") for k in ("users", "groups", "partial", "deletions")}
    changed = draw(st.lists(st.integers(0, 9), max_size=4 if some["users"] else 0, unique=True))
    new_users = []
    for i in changed:
        # a user read again: any field may change, its ref too (a rename or a move)
        ref = draw(st.sampled_from([f"uid=u{i}", f"uid=u{i}", f"uid=moved{i}"]))
        new_users.append(draw(users(i, ref)))
    changed_groups = draw(
        st.lists(st.integers(0, 5), max_size=3 if some["groups"] else 0, unique=True)
    )
    new_groups = [
        draw(groups(i, draw(st.sampled_from([f"cn=g{i}", f"cn=g{i}", f"cn=renamed{i}"]))))
        for i in changed_groups
    ]
    partial = [
        GroupChange(
            external_id=f"gid{i}",
            ref=f"cn=g{i}",
            name=draw(st.sampled_from([None, "ops"])),
            added_refs=frozenset(draw(st.lists(refs, max_size=3))),
            removed_refs=frozenset(draw(st.lists(refs, max_size=3))),
        )
        for i in draw(
            st.lists(st.integers(0, 5), max_size=2 if some["partial"] else 0, unique=True)
        )
        if i not in changed_groups
    ]
    deleted_users: set[str] = set()
    deleted_groups: set[str] = set()
    if some["deletions"] and old_users:
        deleted_users = draw(st.sets(st.sampled_from(old_users), max_size=3))
    if some["deletions"] and old_groups:
        deleted_groups = draw(st.sets(st.sampled_from(old_groups), max_size=2))
    return DirectoryDelta(
        users=tuple(u for u in new_users if u.external_id not in deleted_users),
        groups=tuple(g for g in new_groups if g.external_id not in deleted_groups),
        deleted_user_ids=frozenset(deleted_users),
        deleted_group_ids=frozenset(deleted_groups),
        group_changes=tuple(partial),
    )


@st.composite
def outsiders(draw: st.DrawFn) -> list[dict[str, object]]:
    """Members the directory did not make: the MSP's staff, people added by hand, members
    linked to users the directory no longer has, revoked ones."""
    rows: list[dict[str, object]] = []
    for email in draw(st.sets(st.sampled_from(ADDRESSES), max_size=3)):
        status = draw(st.sampled_from(list(MemberStatus)))
        row: dict[str, object] = {
            "email": f"{email}@example.org",
            "external_id": draw(st.sampled_from([None, None, f"gone-{email}", "id3"])),
            "name": None,
            "status": str(status),
            "role": str(draw(st.sampled_from(list(Role)))),
            "restore_status": "confirmed" if status == MemberStatus.REVOKED else None,
            "revoked_reason": (
                str(draw(st.sampled_from(list(RevokeReason))))
                if status == MemberStatus.REVOKED
                else None
            ),
            "invited_at": NOW,
            "updated_at": NOW,
        }
        if row["external_id"] not in {r["external_id"] for r in rows if r["external_id"]}:
            rows.append(row)
    return rows


rule_sets = st.builds(
    SyncRules,
    remove_disabled=st.booleans(),
    overwrite_existing=st.booleans(),
    deprovision=st.sampled_from(list(Deprovision)),
    max_removals=st.sampled_from([RemovalLimit(percent=100), RemovalLimit(count=1)]),
    seats=st.sampled_from([0, 0, 4]),
    groups=st.sampled_from([True, True, False]),
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, Path]]:
    path = tmp_path_factory.mktemp("scoped") / "store.db"
    with SqlStore.open(f"sqlite:///{path}") as store:
        yield store, path


def _seed(path: Path, name: str, rows: list[dict[str, object]]) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(insert(OrganizationRow).values(name=name, version=0, created_at=NOW))
        org_id = connection.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))
        for row in rows:
            connection.execute(insert(MemberRow).values(organization_id=org_id, **row))
    engine.dispose()


def _kept_counts(path: Path, name: str) -> counts.Counts | None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            org_id, version = session.execute(
                select(OrganizationRow.id, OrganizationRow.version).where(
                    OrganizationRow.name == name
                )
            ).one()
            return counts.kept(session, org_id, version)
    finally:
        engine.dispose()  # an engine left to the collector warns under Python 3.13


def _counted(path: Path, name: str) -> counts.Counts:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            org_id = session.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))
            assert org_id is not None
            return counts.counted(session, org_id)
    finally:
        engine.dispose()


def _stored_edges(path: Path, name: str) -> set[tuple[str, str]]:
    """Every mirror group edge the store holds for the organization, as rows."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        org_id = connection.scalar(select(OrganizationRow.id).where(OrganizationRow.name == name))
        table = MirrorGroupMemberRow
        query = select(table.group_external_id, table.member_ref).where(
            table.organization_id == org_id
        )
        edges = {(gid, ref) for gid, ref in connection.execute(query)}
    engine.dispose()
    return edges


def _plan(plan: object) -> tuple[Plan, tuple[str, ...]]:
    """A plan and the guards' reasons (empty when it was not refused)."""
    if isinstance(plan, PlanRefused):
        return plan.plan, tuple(plan.reasons)
    assert isinstance(plan, PlannedRun)
    return plan.plan, ()


def _full(
    store: SqlStore, name: str, reading: Reading, rules: SyncRules
) -> PlannedRun | PlanRefused:
    stored = store.load(name)
    try:
        return plan_run(
            mirror=stored.mirror, reading=reading, current=stored.state, rules=rules, now=NOW
        )
    except PlanRefused as refused:
        return refused


def _apply(store: SqlStore, name: str, planned: PlannedRun, before: Mirror, version: int) -> None:
    run = RunRecord(
        run_id=f"r{next(_runs)}",
        started_at=NOW,
        finished_at=NOW,
        outcome=Outcome.APPLIED,
        full=False,
    )
    store.apply(
        name,
        plan=planned.plan,
        mirror_before=before,
        mirror_after=planned.mirror,
        cursor=None,
        run=run,
        expected_version=version,
        now=NOW,
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), rules=rule_sets)
def test_planning_only_what_a_delta_touches_equals_planning_everything(
    db: tuple[SqlStore, Path], data: st.DataObject, rules: SyncRules
) -> None:
    store, path = db
    name = f"org{next(_orgs)}"
    directory = data.draw(directories())
    _seed(path, name, data.draw(outsiders()))
    lenient = SyncRules(
        remove_disabled=rules.remove_disabled,
        overwrite_existing=rules.overwrite_existing,
        deprovision=rules.deprovision,
        groups=rules.groups,
        max_removals=RemovalLimit(percent=100),
    )
    first = _full(store, name, Reading(snapshot=directory), lenient)
    assert isinstance(first, PlannedRun)
    stored = store.load(name)
    _apply(store, name, first, stored.mirror, stored.version)
    settled = _full(store, name, Reading(snapshot=directory), lenient)
    assert isinstance(settled, PlannedRun) and settled.plan.is_empty, settled

    delta = Reading(delta=data.draw(deltas(directory)))
    full = _full(store, name, delta, rules)
    scoped_org = store.load_scoped(name, delta.delta, seats=bool(rules.seats))  # type: ignore[arg-type]
    assert scoped_org is not None
    try:
        scoped: PlannedRun | PlanRefused = plan_scoped(scoped_org, delta, rules, now=NOW)
    except PlanRefused as refused:
        scoped = refused
    assert _plan(scoped) == _plan(full)

    if isinstance(scoped, PlannedRun) and isinstance(full, PlannedRun):
        _apply(store, name, scoped, scoped_org.mirror, scoped_org.version)
        after = store.load(name)
        assert after.mirror == full.mirror
        # the counts the guards take, kept on the organization, are the counted ones
        assert _kept_counts(path, name) == _counted(path, name)
        # and no edge is left behind of a group the mirror no longer has (a scoped load
        # reads only some of a group's edges)
        assert _stored_edges(path, name) == {
            (gid, ref) for gid, group in full.mirror.groups.items() for ref in group.member_refs
        }
        again = plan_run(
            mirror=after.mirror,
            reading=Reading(delta=DirectoryDelta()),
            current=after.state,
            rules=rules,
            now=NOW,
        )
        assert again.plan.is_empty, again.plan


def _u(i: int, **changes: object) -> DirectoryUser:
    values: dict[str, object] = {
        "external_id": f"id{i}",
        "ref": f"uid=u{i}",
        "email": f"user{i}@example.org",
    }
    values.update(changes)
    return DirectoryUser(**values)  # type: ignore[arg-type]


def _g(i: int, *member_refs: str, ref: str = "") -> DirectoryGroup:
    return DirectoryGroup(
        external_id=f"gid{i}",
        ref=ref or f"cn=g{i}",
        name=f"g{i}",
        member_refs=frozenset(member_refs),
    )


PARENT_OF_NESTED = (_g(0, "cn=g1", "uid=u2"), _g(1, "uid=u0", "uid=u1"))
SCENARIOS = {
    "a partial change adds a user to a group": (
        (_g(0, "uid=u0"),),
        DirectoryDelta(
            group_changes=(
                GroupChange(external_id="gid0", ref="cn=g0", added_refs=frozenset({"uid=u1"})),
            )
        ),
    ),
    "a partial change creates a group another group already named": (
        (_g(0, "cn=g1"),),
        DirectoryDelta(
            group_changes=(
                GroupChange(external_id="gid1", ref="cn=g1", added_refs=frozenset({"uid=u0"})),
            )
        ),
    ),
    "a new group appears under a ref another group already named": (
        (_g(0, "cn=g1"),),
        DirectoryDelta(groups=(_g(1, "uid=u0"),)),
    ),
    "a nested group is deleted": (
        PARENT_OF_NESTED,
        DirectoryDelta(deleted_group_ids=frozenset({"gid1"})),
    ),
    "a nested group is renamed and its parent still names the old ref": (
        PARENT_OF_NESTED,
        DirectoryDelta(groups=(_g(1, "uid=u0", "uid=u1", ref="cn=renamed1"),)),
    ),
    "a group joins another": (
        (_g(0, "uid=u2"), _g(1, "uid=u0", "uid=u1")),
        DirectoryDelta(groups=(_g(0, "uid=u2", "cn=g1"),)),
    ),
    "a user moves and the groups still name the old ref": (
        PARENT_OF_NESTED,
        DirectoryDelta(users=(_u(0, ref="uid=moved0"),)),
    ),
    "a user gives up an address another user then takes": (
        (),
        DirectoryDelta(users=(_u(0, email="user9@example.org"), _u(1, email="user0@example.org"))),
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_way_a_delta_reaches_beyond_its_entries(db: tuple[SqlStore, Path], name: str) -> None:
    """The scope's rules one at a time; each scenario changes something outside the delta's
    own entries, so a scope that missed it would plan less than full planning does."""
    store, path = db
    org = f"scenario{next(_orgs)}"
    directory_groups, change = SCENARIOS[name]
    directory = DirectorySnapshot(users=tuple(_u(i) for i in range(3)), groups=directory_groups)
    _seed(path, org, [])
    rules = SyncRules(max_removals=RemovalLimit(percent=100))
    first = _full(store, org, Reading(snapshot=directory), rules)
    assert isinstance(first, PlannedRun)
    _apply(store, org, first, Mirror(), 0)

    delta = Reading(delta=change)
    full = _full(store, org, delta, rules)
    scoped_org = store.load_scoped(org, change)
    assert scoped_org is not None
    assert len(scoped_org.mirror.users) < len(directory.users) or not directory_groups
    scoped = plan_scoped(scoped_org, delta, rules, now=NOW)
    assert isinstance(full, PlannedRun) and not full.plan.is_empty
    assert scoped.plan == full.plan
