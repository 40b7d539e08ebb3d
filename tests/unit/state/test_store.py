"""The embedded store on real SQLite files: transactions, versions, read-only opens, migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from dirsync.errors import ConcurrentRunError, StoreError
from dirsync.model import Cursor, DirectoryGroup, DirectoryUser, Mirror
from dirsync.organization import MemberStatus, RevokeReason
from dirsync.plan import (
    GroupCreate,
    GroupDelete,
    GroupUpdate,
    Invite,
    MemberUpdate,
    Outcome,
    Plan,
    Remove,
    Restore,
    Revoke,
)
from dirsync.state import apply as apply_module
from dirsync.state import mirror_rows, plan_writes
from dirsync.state.engine import APPLY_CACHE_KIB
from dirsync.state.records import RunRecord, StoredOrganization
from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORG = "acme"


# -- builders ----------------------------------------------------------------------------------


def user(n: int, **changes: Any) -> DirectoryUser:
    values: dict[str, Any] = {
        "external_id": f"u{n}",
        "ref": f"uid=u{n},ou=people,dc=acme",
        "username": f"u{n}",
        "email": f"u{n}@acme.example",
        "name": f"User {n}",
    }
    return DirectoryUser(**(values | changes))


def group(n: int, *members: int, name: str | None = None) -> DirectoryGroup:
    return DirectoryGroup(
        external_id=f"g{n}",
        ref=f"cn=g{n},ou=groups,dc=acme",
        name=name or f"Group {n}",
        member_refs=frozenset(user(m).ref for m in members),
    )


def mirror(users: Sequence[DirectoryUser], groups: Sequence[DirectoryGroup] = ()) -> Mirror:
    return Mirror(
        users={u.external_id: u for u in users}, groups={g.external_id: g for g in groups}
    )


def invite(n: int) -> Invite:
    return Invite(external_id=f"u{n}", email=f"u{n}@acme.example", name=f"User {n}")


def run(run_id: str = "r1", **changes: Any) -> RunRecord:
    values: dict[str, Any] = {
        "run_id": run_id,
        "started_at": NOW,
        "finished_at": NOW + timedelta(seconds=3),
        "outcome": Outcome.APPLIED,
        "full": True,
        "counts": {"invite": 1},
        "entries_read": 10,
    }
    return RunRecord(**(values | changes))


def apply(
    store: SqlStore,
    plan: Plan,
    *,
    before: Mirror | None = None,
    after: Mirror | None = None,
    cursor: Cursor | None = None,
    run_id: str = "r1",
    version: int | None = None,
    now: datetime = NOW,
) -> int:
    loaded = store.load(ORG)
    return store.apply(
        ORG,
        plan=plan,
        mirror_before=before if before is not None else loaded.mirror,
        mirror_after=after if after is not None else loaded.mirror,
        cursor=cursor,
        run=run(run_id),
        expected_version=loaded.version if version is None else version,
        now=now,
    )


def member(loaded: StoredOrganization, email: str) -> Any:
    return next(m for m in loaded.state.members if m.email == email)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table, every row, in a stable order."""
    with sqlite_connection(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"'), key=repr) for t in sorted(tables)}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "dirsync.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqlStore]:
    s = SqlStore.open(f"sqlite:///{db}")
    yield s
    s.close()


def seeded(store: SqlStore) -> Mirror:
    """Three members, two groups, a mirror and a cursor; returns the mirror."""
    m = mirror([user(1), user(2), user(3)], [group(1, 1, 2), group(2, 3)])
    plan = Plan(
        invite=(invite(1), invite(2), invite(3)),
        create_groups=(
            GroupCreate(
                external_id="g1", name="Group 1", member_external_ids=frozenset({"u1", "u2"})
            ),
            GroupCreate(external_id="g2", name="Group 2", member_external_ids=frozenset({"u3"})),
        ),
    )
    apply(store, plan, after=m, cursor=Cursor(kind="usn", value="100"), run_id="seed")
    return m


# -- opening -----------------------------------------------------------------------------------


def test_a_readonly_open_of_a_missing_file_creates_nothing_and_reads_as_empty(db: Path) -> None:
    with SqlStore.open(f"sqlite:///{db}", readonly=True) as store:
        loaded = store.load(ORG)
        assert loaded.version == 0
        assert loaded.state.members == () and loaded.state.groups == ()
        assert loaded.mirror == Mirror() and loaded.cursor is None
        assert loaded.last_user_count is None
        assert store.members(ORG) == [] and store.groups(ORG) == []
        assert store.events(ORG) == [] and store.organizations() == []
        assert store.last_runs() == {}
        with pytest.raises(StoreError):
            store.record_run(ORG, run())
    assert not db.parent.exists()


def test_a_readonly_open_leaves_an_existing_file_byte_for_byte_alone(db: Path) -> None:
    with SqlStore.open(f"sqlite:///{db}") as store:
        seeded(store)
    files = sorted(p.name for p in db.parent.iterdir())
    content, mtime = db.read_bytes(), db.stat().st_mtime_ns
    time.sleep(0.01)  # so that a write would show in the mtime

    with SqlStore.open(f"sqlite:///{db}", readonly=True) as ro:
        assert ro.load(ORG).version == 1
        assert [m.email for m in ro.members(ORG)] == [f"u{n}@acme.example" for n in (1, 2, 3)]
        assert ro.organizations() == [ORG]
        with pytest.raises(StoreError):
            apply(ro, Plan(invite=(invite(9),)))

    assert db.read_bytes() == content
    assert db.stat().st_mtime_ns == mtime
    # SQLite's own WAL sidecars may appear (a WAL reader needs the shared-memory index); they
    # hold no data: the write-ahead log stays empty
    extra = {p.name for p in db.parent.iterdir()} - set(files)
    assert extra <= {"dirsync.db-wal", "dirsync.db-shm"}
    wal = db.with_name("dirsync.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_opening_creates_the_parent_directory_turns_on_wal_and_foreign_keys(db: Path) -> None:
    with SqlStore.open(f"sqlite:///{db}") as store:
        engine = store._engine
        assert engine is not None
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    assert db.is_file()


def test_opening_migrates_to_the_alembic_head_and_reopening_is_a_no_op(db: Path) -> None:
    from alembic.script import ScriptDirectory

    from dirsync.state.engine import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    SqlStore.open(f"sqlite:///{db}").close()
    SqlStore.open(f"sqlite:///{db}").close()
    with sqlite_connection(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_a_bad_url_is_a_store_error_that_does_not_repeat_the_url() -> None:
    with pytest.raises(StoreError) as info:
        SqlStore.open("not a url with s3cret")
    assert "s3cret" not in str(info.value)


# -- apply and load ----------------------------------------------------------------------------


def test_apply_then_load_round_trips_members_groups_mirror_cursor_and_version(
    store: SqlStore,
) -> None:
    m = seeded(store)
    loaded = store.load(ORG)
    assert loaded.version == 1
    assert loaded.mirror == m
    assert loaded.cursor == Cursor(kind="usn", value="100")
    assert loaded.last_user_count == 3
    u1 = member(loaded, "u1@acme.example")
    assert (u1.external_id, u1.name, u1.status) == ("u1", "User 1", MemberStatus.INVITED)
    groups = {g.external_id: g for g in loaded.state.groups}
    assert groups["g1"].name == "Group 1"
    assert groups["g1"].member_external_ids == frozenset({"u1", "u2"})
    assert groups["g2"].member_external_ids == frozenset({"u3"})
    assert [(v.email, v.groups) for v in store.members(ORG)] == [
        ("u1@acme.example", ("Group 1",)),
        ("u2@acme.example", ("Group 1",)),
        ("u3@acme.example", ("Group 2",)),
    ]
    assert [(g.name, g.members) for g in store.groups(ORG)] == [
        ("Group 1", ("u1@acme.example", "u2@acme.example")),
        ("Group 2", ("u3@acme.example",)),
    ]
    assert store.organizations() == [ORG]


def test_the_mirror_is_written_by_difference(store: SqlStore) -> None:
    before = seeded(store)
    after = mirror(
        [user(1, name="Renamed"), user(2), user(4, disabled=True)],
        [group(1, 1, 4, name="Group One"), group(3, 2)],
    )
    assert apply(store, Plan(), before=before, after=after, cursor=None, run_id="r2") == 2
    loaded = store.load(ORG)
    assert loaded.mirror == after
    assert loaded.cursor is None
    assert loaded.version == 2


def test_a_delta_run_keeps_the_user_count_of_the_last_complete_read(store: SqlStore) -> None:
    before = seeded(store)
    loaded = store.load(ORG)
    store.apply(
        ORG,
        plan=Plan(),
        mirror_before=before,
        mirror_after=mirror([user(1)]),
        cursor=None,
        run=run("delta", full=False),
        expected_version=loaded.version,
        now=NOW,
    )
    assert store.load(ORG).last_user_count == 3


def test_a_version_conflict_raises_and_changes_nothing(store: SqlStore, db: Path) -> None:
    seeded(store)
    before = dump(db)
    with pytest.raises(ConcurrentRunError):
        apply(store, Plan(invite=(invite(9),)), version=0, run_id="late")
    with pytest.raises(ConcurrentRunError):
        apply(store, Plan(invite=(invite(9),)), version=5, run_id="late")
    assert dump(db) == before


def test_an_organization_that_vanished_since_load_is_a_conflict(store: SqlStore, db: Path) -> None:
    before = dump(db)
    with pytest.raises(ConcurrentRunError):
        apply(store, Plan(invite=(invite(9),)), version=3)
    assert dump(db) == before


def test_adopting_links_an_unlinked_member_to_the_directory_user(store: SqlStore) -> None:
    seeded(store)
    store_member = member(store.load(ORG), "u2@acme.example")
    adopt = MemberUpdate(
        member_id=store_member.id,
        external_id="guid-2",
        email="u2@acme.example",
        name="User Two",
        previous_email="u2@acme.example",
        previous_name="User 2",
        adopt=True,
    )
    rename = MemberUpdate(
        member_id=member(store.load(ORG), "u1@acme.example").id,
        external_id="u1",
        email="one@acme.example",
        name="User 1",
        previous_email="u1@acme.example",
        previous_name="User 1",
    )
    apply(store, Plan(update=(adopt, rename)), run_id="r2")
    loaded = store.load(ORG)
    assert member(loaded, "u2@acme.example").external_id == "guid-2"
    assert member(loaded, "u2@acme.example").name == "User Two"
    assert member(loaded, "one@acme.example").external_id == "u1"
    events = {e.action + ":" + e.target: e for e in store.events(ORG)}
    assert events["member.update:u2@acme.example"].before == {
        "name": "User 2",
        "external_id": None,
    }
    assert events["member.update:one@acme.example"].after == {"email": "one@acme.example"}


def test_a_revoked_member_is_restored_to_its_previous_status(store: SqlStore) -> None:
    seeded(store)
    u3 = member(store.load(ORG), "u3@acme.example")
    revoke = Revoke(
        member_id=u3.id,
        external_id="u3",
        email=u3.email,
        reason=RevokeReason.DISABLED,
        previous_status=MemberStatus.INVITED,
    )
    apply(store, Plan(revoke=(revoke,)), run_id="r2")
    revoked = member(store.load(ORG), "u3@acme.example")
    assert revoked.status is MemberStatus.REVOKED
    assert revoked.restore_status is MemberStatus.INVITED
    assert revoked.revoked_reason is RevokeReason.DISABLED

    restore = Restore(
        member_id=u3.id, external_id="u3", email=u3.email, to_status=MemberStatus.INVITED
    )
    apply(store, Plan(restore=(restore,)), run_id="r3")
    restored = member(store.load(ORG), "u3@acme.example")
    assert restored.status is MemberStatus.INVITED
    assert restored.restore_status is None and restored.revoked_reason is None
    assert store.load(ORG).version == 3


def test_removing_a_member_drops_its_group_memberships(store: SqlStore, db: Path) -> None:
    seeded(store)
    u1 = member(store.load(ORG), "u1@acme.example")
    remove = Remove(
        member_id=u1.id, external_id="u1", email=u1.email, previous_status=MemberStatus.INVITED
    )
    apply(store, Plan(remove=(remove,)), run_id="r2")
    groups = {g.external_id: g for g in store.load(ORG).state.groups}
    assert groups["g1"].member_external_ids == frozenset({"u2"})
    with sqlite_connection(db) as conn:
        ids = {r[0] for r in conn.execute("SELECT member_id FROM group_members")}
    assert u1.id not in ids


def test_a_removed_members_email_can_be_invited_again_in_the_same_plan(store: SqlStore) -> None:
    seeded(store)
    u1 = member(store.load(ORG), "u1@acme.example")
    remove = Remove(
        member_id=u1.id, external_id="u1", email=u1.email, previous_status=MemberStatus.INVITED
    )
    again = Invite(external_id="u1-new", email="u1@acme.example", name="User 1")
    apply(store, Plan(invite=(again,), remove=(remove,)), run_id="r2")
    assert member(store.load(ORG), "u1@acme.example").external_id == "u1-new"


@pytest.mark.parametrize("lookup_limit", [20_000, 0], ids=["named-members", "all-members"])
def test_groups_resolve_members_invited_in_the_same_apply_and_ignore_unknown_ids(
    store: SqlStore, lookup_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of finding member ids: by the external ids the plan names (a delta run), and
    by reading every linked member (a first sync naming more than the limit)."""
    monkeypatch.setattr(plan_writes, "_LOOKUP_LIMIT", lookup_limit)
    seeded(store)
    groups = {g.external_id: g for g in store.load(ORG).state.groups}
    plan = Plan(
        invite=(invite(5),),
        update_groups=(
            GroupUpdate(
                group_id=groups["g1"].id,
                external_id="g1",
                name="Sales",
                previous_name="Group 1",
                add_member_ids=frozenset({"u5", "u3", "nobody"}),
                remove_member_ids=frozenset({"u2", "ghost"}),
            ),
        ),
        delete_groups=(GroupDelete(group_id=groups["g2"].id, external_id="g2", name="Group 2"),),
    )
    apply(store, plan, run_id="r2")
    after = {g.external_id: g for g in store.load(ORG).state.groups}
    assert set(after) == {"g1"}
    assert after["g1"].name == "Sales"
    assert after["g1"].member_external_ids == frozenset({"u1", "u3", "u5"})


def test_one_event_per_plan_entry_names_the_run_as_actor(store: SqlStore) -> None:
    seeded(store)
    events = store.events(ORG)
    assert [(e.action, e.target) for e in events] == [
        ("member.invite", "u1@acme.example"),
        ("member.invite", "u2@acme.example"),
        ("member.invite", "u3@acme.example"),
        ("group.create", "Group 1"),
        ("group.create", "Group 2"),
    ]
    assert {e.actor for e in events} == {"sync:seed"}
    assert events[3].after == {"name": "Group 1", "external_id": "g1", "members": ["u1", "u2"]}
    assert store.events(ORG, since=NOW + timedelta(seconds=1)) == []
    assert len(store.events(ORG, since=NOW)) == 5


def test_datetimes_come_back_timezone_aware_in_utc(store: SqlStore) -> None:
    paris = timezone(timedelta(hours=1))
    started = datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=paris)
    store.record_run(ORG, run("tz", started_at=started, finished_at=None, outcome=Outcome.FAILED))
    last = store.last_runs()[ORG]
    assert last.started_at == started
    assert last.started_at.tzinfo is UTC
    assert last.started_at.hour == 12 and last.started_at.microsecond == 123456
    assert last.finished_at is None


def test_a_naive_datetime_is_refused(store: SqlStore) -> None:
    with pytest.raises(StoreError):
        store.record_run(ORG, run("naive", started_at=datetime(2026, 3, 1)))
    assert store.organizations() == []


def test_record_run_keeps_version_zero_and_last_runs_gives_the_newest(store: SqlStore) -> None:
    failed = run("f1", outcome=Outcome.FAILED, error="bind refused", counts={})
    store.record_run(ORG, failed)
    store.record_run("other", run("o1", outcome=Outcome.REFUSED))
    assert store.load(ORG).version == 0
    assert apply(store, Plan(invite=(invite(1),)), run_id="r2", version=0) == 1
    later = run("r3", started_at=NOW + timedelta(hours=1), warnings=("dup email",))
    store.record_run(ORG, later)
    runs = store.last_runs()
    assert runs[ORG] == later
    assert runs["other"].outcome is Outcome.REFUSED
    assert store.organizations() == ["acme", "other"]


# -- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", apply_module.STAGES)
def test_a_crash_at_any_stage_leaves_every_table_as_it_was(
    stage: str, store: SqlStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_mirror = seeded(store)
    loaded = store.load(ORG)
    groups = {g.external_id: g for g in loaded.state.groups}
    u1, u2 = member(loaded, "u1@acme.example"), member(loaded, "u2@acme.example")
    plan = Plan(
        invite=(invite(4),),
        revoke=(
            Revoke(
                member_id=u2.id,
                external_id="u2",
                email=u2.email,
                reason=RevokeReason.DISABLED,
                previous_status=MemberStatus.INVITED,
            ),
        ),
        remove=(
            Remove(member_id=u1.id, external_id="u1", email=u1.email, previous_status=u1.status),
        ),
        create_groups=(
            GroupCreate(external_id="g3", name="G3", member_external_ids=frozenset({"u4"})),
        ),
        update_groups=(
            GroupUpdate(
                group_id=groups["g2"].id,
                external_id="g2",
                name="G2",
                previous_name="Group 2",
                add_member_ids=frozenset({"u4"}),
            ),
        ),
        delete_groups=(GroupDelete(group_id=groups["g1"].id, external_id="g1", name="Group 1"),),
    )
    after_mirror = mirror([user(2, disabled=True), user(3), user(4)], [group(2, 3, 4), group(3, 4)])
    snapshot = dump(db)

    def crash(at: str) -> None:
        if at == stage:
            raise RuntimeError(f"crash {at}")

    monkeypatch.setattr(apply_module, "_fault_hook", crash)
    with pytest.raises(RuntimeError, match=stage):
        apply(store, plan, before=before_mirror, after=after_mirror, run_id="crash")
    assert dump(db) == snapshot

    monkeypatch.setattr(apply_module, "_fault_hook", None)
    assert apply(store, plan, before=before_mirror, after=after_mirror, run_id="again") == 2
    after = store.load(ORG)
    assert after.mirror == after_mirror
    assert {g.name: g.member_external_ids for g in after.state.groups} == {
        "G2": frozenset({"u3", "u4"}),
        "G3": frozenset({"u4"}),
    }
    assert member(after, "u2@acme.example").status is MemberStatus.REVOKED


@contextmanager
def _statements(prefix: str) -> Iterator[list[str]]:
    """The statements starting with ``prefix`` that every engine runs meanwhile, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().startswith(prefix):
            seen.append(statement.strip())

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("crash", [False, True])
def test_an_apply_writes_with_a_larger_page_cache_and_restores_it(
    crash: bool, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(store)

    def fail(at: str) -> None:
        if crash and at == "before_commit":
            raise RuntimeError("crash")

    monkeypatch.setattr(apply_module, "_fault_hook", fail)
    with _statements("PRAGMA cache_size") as seen, ExitStack() as stack:
        if crash:
            stack.enter_context(pytest.raises(RuntimeError, match="crash"))
        apply(store, Plan(invite=(invite(9),)), run_id="r2")
    assert seen == [
        "PRAGMA cache_size",
        f"PRAGMA cache_size = -{APPLY_CACHE_KIB}",
        "PRAGMA cache_size = -2000",  # SQLite's default, as the connection had it
    ]
    assert len(store.load(ORG).state.members) == (3 if crash else 4)


def _indexes(db: Path, table: str) -> list[str]:
    """The table's explicitly created indexes (not the primary key's or unique constraints')."""
    with sqlite_connection(db) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL ORDER BY name",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_first_large_mirror_rebuilds_its_indexes_in_the_same_transaction(
    store: SqlStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync of many users drops the mirror's lookup indexes and builds them after
    the inserts; a crash in between leaves them (and everything else) as they were."""
    monkeypatch.setattr(mirror_rows, "_REBUILD_AT", 2)
    indexes = _indexes(db, "mirror_users")
    assert indexes == [
        "ix_mirror_users_org_email_key",
        "ix_mirror_users_org_idp_id",
        "ix_mirror_users_org_ref",
        "ix_mirror_users_org_username_key",
    ]
    users = [user(1), user(2), user(3)]
    snapshot = dump(db)

    def crash(at: str) -> None:
        if at == "after_mirror":
            raise RuntimeError("crash after_mirror")

    monkeypatch.setattr(apply_module, "_fault_hook", crash)
    with pytest.raises(RuntimeError):
        apply(store, Plan(invite=(invite(1),)), after=mirror(users), run_id="crash")
    assert dump(db) == snapshot and _indexes(db, "mirror_users") == indexes

    monkeypatch.setattr(apply_module, "_fault_hook", None)
    apply(store, Plan(invite=(invite(1),)), after=mirror(users), run_id="first")
    assert _indexes(db, "mirror_users") == indexes
    assert store.load(ORG).mirror == mirror(users)
    with sqlite_connection(db) as conn:  # the rebuilt index holds every row
        plan = " ".join(
            str(r)
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT external_id FROM mirror_users "
                "WHERE organization_id = 1 AND ref = ?",
                (users[1].ref,),
            )
        )
        assert "ix_mirror_users_org_ref" in plan
        found = conn.execute(
            "SELECT external_id FROM mirror_users INDEXED BY ix_mirror_users_org_ref "
            "WHERE organization_id = 1 AND ref = ?",
            (users[1].ref,),
        ).fetchall()
    assert found == [(users[1].external_id,)]


def test_a_first_sync_with_many_group_edges_rebuilds_their_member_index_in_its_transaction(
    store: SqlStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_writes, "_REBUILD_AT", 2)
    assert _indexes(db, "group_members") == ["ix_group_members_member_id"]
    plan = Plan(
        invite=(invite(1), invite(2), invite(3)),
        create_groups=(
            GroupCreate(external_id="g1", name="G1", member_external_ids=frozenset({"u1", "u2"})),
            GroupCreate(external_id="g2", name="G2", member_external_ids=frozenset({"u2", "u3"})),
        ),
    )
    snapshot = dump(db)

    def crash(at: str) -> None:
        if at == "after_groups":
            raise RuntimeError("crash after_groups")

    monkeypatch.setattr(apply_module, "_fault_hook", crash)
    with pytest.raises(RuntimeError):
        apply(store, plan, run_id="crash")
    assert dump(db) == snapshot and _indexes(db, "group_members") == ["ix_group_members_member_id"]

    monkeypatch.setattr(apply_module, "_fault_hook", None)
    with _statements("DROP INDEX") as dropped:
        apply(store, plan, run_id="first")
    assert dropped == ["DROP INDEX ix_group_members_member_id"]
    assert _indexes(db, "group_members") == ["ix_group_members_member_id"]
    with sqlite_connection(db) as conn:  # the rebuilt index holds every edge
        (u2,) = conn.execute("SELECT id FROM members WHERE external_id = 'u2'").fetchone()
        found = conn.execute(
            "SELECT g.external_id FROM group_members INDEXED BY ix_group_members_member_id "
            "JOIN groups g ON g.id = group_id WHERE member_id = ? ORDER BY 1",
            (u2,),
        ).fetchall()
    assert found == [("g1",), ("g2",)]
    # removing a member still unlinks it from every group (the cascade finds it by the index)
    loaded = store.load(ORG)
    gone = member(loaded, "u2@acme.example")
    remove = Remove(
        member_id=gone.id, external_id="u2", email=gone.email, previous_status=gone.status
    )
    apply(store, Plan(remove=(remove,)), run_id="second")
    groups = {g.external_id: g.member_external_ids for g in store.load(ORG).state.groups}
    assert groups == {"g1": frozenset({"u1"}), "g2": frozenset({"u3"})}


# -- scale -------------------------------------------------------------------------------------


def test_group_edges_written_a_slice_at_a_time_all_land_in_their_groups(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created groups' edges stream out in slices, the groups in id order whatever the plan's
    order; an update's added edges go the same way."""
    monkeypatch.setattr(plan_writes, "SLICE", 3)
    members = {"g3": {1, 2, 3, 4}, "g1": {2, 5}, "g2": set(), "g4": {1, 3, 5, 6, 7}}
    plan = Plan(
        invite=tuple(invite(i) for i in range(1, 8)),
        create_groups=tuple(
            GroupCreate(external_id=g, name=g, member_external_ids=frozenset(f"u{m}" for m in ms))
            for g, ms in members.items()
        ),
    )
    apply(store, plan)
    loaded = {g.external_id: g for g in store.load(ORG).state.groups}
    assert {g: set(v.member_external_ids) for g, v in loaded.items()} == {
        g: {f"u{m}" for m in ms} for g, ms in members.items()
    }
    update = tuple(
        GroupUpdate(
            group_id=loaded[g].id,
            external_id=g,
            name=g,
            previous_name=g,
            add_member_ids=frozenset({"u6", "u7"}),
            remove_member_ids=frozenset(),
        )
        for g in ("g3", "g2", "g1")
    )
    apply(store, Plan(update_groups=update), run_id="r2")
    after = {g.external_id: set(g.member_external_ids) for g in store.load(ORG).state.groups}
    assert after == {
        "g1": {"u2", "u5", "u6", "u7"},
        "g2": {"u6", "u7"},
        "g3": {"u1", "u2", "u3", "u4", "u6", "u7"},
        "g4": {"u1", "u3", "u5", "u6", "u7"},
    }


def test_twenty_thousand_invites_and_their_mirror_apply_in_one_go(store: SqlStore) -> None:
    n = 20_000
    users = [user(i) for i in range(n)]
    big = mirror(users, [group(1, *range(0, n, 2))])
    plan = Plan(
        invite=tuple(invite(i) for i in range(n)),
        create_groups=(
            GroupCreate(
                external_id="g1",
                name="Half",
                member_external_ids=frozenset(f"u{i}" for i in range(0, n, 2)),
            ),
        ),
    )
    assert apply(store, plan, after=big) == 1
    loaded = store.load(ORG)
    assert len(loaded.state.members) == n
    assert len(loaded.state.groups[0].member_external_ids) == n // 2
    assert loaded.mirror == big
    # a second run that changes one user rewrites only that row
    changed = replace(big, users=big.users | {"u7": user(7, name="Seven")})
    assert apply(store, Plan(), before=big, after=changed, run_id="r2") == 2
    assert store.load(ORG).mirror.users["u7"].name == "Seven"


# -- more edges --------------------------------------------------------------------------------


def test_a_readonly_open_of_a_file_without_tables_reads_as_empty(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.touch()
    with SqlStore.open(f"sqlite:///{db}", readonly=True) as store:
        assert store.load(ORG).version == 0
        assert store.organizations() == []
    assert db.read_bytes() == b""


def test_two_nodes_that_loaded_the_same_version_cannot_both_apply(db: Path) -> None:
    url = f"sqlite:///{db}"
    with SqlStore.open(url) as first, SqlStore.open(url) as second:
        seeded(first)
        a, b = first.load(ORG), second.load(ORG)

        def apply_as(store: SqlStore, loaded: StoredOrganization, n: int) -> int:
            return store.apply(
                ORG,
                plan=Plan(invite=(invite(n),)),
                mirror_before=loaded.mirror,
                mirror_after=loaded.mirror,
                cursor=None,
                run=run(f"r{n}", started_at=NOW + timedelta(minutes=n)),
                expected_version=loaded.version,
                now=NOW,
            )

        assert apply_as(first, a, 8) == 2
        with pytest.raises(ConcurrentRunError):
            apply_as(second, b, 9)
        emails = [m.email for m in second.members(ORG)]
        assert "u8@acme.example" in emails and "u9@acme.example" not in emails
        assert second.last_runs()[ORG].run_id == "r8"


def test_an_event_without_a_before_stores_null_not_json_null(store: SqlStore, db: Path) -> None:
    seeded(store)
    assert store.events(ORG)[0].before is None
    with sqlite_connection(db) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE before IS NULL").fetchone() == (5,)
