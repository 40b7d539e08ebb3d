"""The store's organization side on a real SQLite file: collections, access, re-invitations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dirsync.model import Mirror
from dirsync.organization import Permission
from dirsync.plan import (
    CollectionCreate,
    CollectionUpdate,
    GroupAccess,
    GroupCreate,
    GroupDelete,
    GroupUpdate,
    Invite,
    Outcome,
    Plan,
    Reinvite,
)
from dirsync.state import apply as apply_module
from dirsync.state.engine import head_revisions
from dirsync.state.records import RunRecord
from dirsync.state.sql_store import SqlStore
from dirsync.testing.store_files import sqlite_connection, store_at_revision

ORG = "acme"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def apply(store: SqlStore, plan: Plan, run_id: str, now: datetime = NOW) -> None:
    loaded = store.load(ORG)
    store.apply(
        ORG,
        plan=plan,
        mirror_before=loaded.mirror,
        mirror_after=loaded.mirror,
        cursor=None,
        run=RunRecord(
            run_id=run_id, started_at=now, finished_at=now, outcome=Outcome.APPLIED, full=True
        ),
        expected_version=loaded.version,
        now=now,
    )


def access(group: str, permission: Permission = Permission.EDIT) -> GroupAccess:
    return GroupAccess(group_external_id=f"g-{group}", group_name=group, permission=permission)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.open(f"sqlite:///{tmp_path / 'dirsync.db'}")
    yield s
    s.close()


def seed(store: SqlStore) -> None:
    """ann and bob in Marketing, cy in Sales; Social Media for Marketing, created in one plan."""
    invites = tuple(
        Invite(external_id=u, email=f"{u}@acme.example", name=None) for u in ("ann", "bob", "cy")
    )
    plan = Plan(
        invite=invites,
        create_groups=(
            GroupCreate(
                external_id="g-Marketing",
                name="Marketing",
                member_external_ids=frozenset({"ann", "bob"}),
            ),
            GroupCreate(external_id="g-Sales", name="Sales", member_external_ids=frozenset({"cy"})),
        ),
        create_collections=(
            CollectionCreate(
                external_id="col-social",
                name="Social Media",
                access=(access("Marketing"), access("Ghost")),
            ),
        ),
    )
    apply(store, plan, "seed")


def test_collections_are_created_with_access_for_groups_created_in_the_same_plan(
    store: SqlStore,
) -> None:
    seed(store)
    (view,) = store.collections(ORG)
    assert view.to_json() == {
        "name": "Social Media",
        "external_id": "col-social",
        "managed": True,
        "groups": [{"name": "Marketing", "permission": "edit"}],
        "members": ["ann@acme.example", "bob@acme.example"],
    }
    (loaded,) = store.load(ORG).state.collections
    assert {(a.group_external_id, a.permission) for a in loaded.access} == {
        ("g-Marketing", Permission.EDIT)
    }
    events = [(e.action, e.target) for e in store.events(ORG)]
    assert ("collection.create", "Social Media") in events


def test_an_update_replaces_access_and_members_follow_group_changes(store: SqlStore) -> None:
    seed(store)
    (stored,) = store.load(ORG).state.collections
    groups = {g.external_id: g for g in store.load(ORG).state.groups}
    plan = Plan(
        update_groups=(
            GroupUpdate(
                group_id=groups["g-Sales"].id,
                external_id="g-Sales",
                name="Sales",
                previous_name="Sales",
                add_member_ids=frozenset({"ann"}),
            ),
        ),
        update_collections=(
            CollectionUpdate(
                collection_id=stored.id,
                external_id="col-social",
                name="Social",
                previous_name="Social Media",
                access=(access("Sales", Permission.READ),),
                previous_access=(access("Marketing"),),
            ),
        ),
    )
    apply(store, plan, "r2")
    (view,) = store.collections(ORG)
    assert view.name == "Social" and view.groups == (("Sales", "read"),)
    assert view.members == ("ann@acme.example", "cy@acme.example")
    assert store.member_collections(ORG)["ann@acme.example"] == {"Social": "read"}
    (event,) = [e for e in store.events(ORG) if e.action == "collection.update"]
    assert event.actor == "sync:r2"
    assert event.before == {
        "access": [{"group": "Marketing", "permission": "edit"}],
        "name": "Social Media",
    }


def test_deleting_a_group_drops_its_access(store: SqlStore) -> None:
    seed(store)
    groups = {g.external_id: g for g in store.load(ORG).state.groups}
    marketing = groups["g-Marketing"]
    apply(
        store,
        Plan(
            delete_groups=(
                GroupDelete(group_id=marketing.id, external_id="g-Marketing", name="Marketing"),
            )
        ),
        "r2",
    )
    (view,) = store.collections(ORG)
    assert view.groups == () and view.members == ()


def test_a_reinvite_records_the_time_and_an_event(store: SqlStore) -> None:
    seed(store)
    ann = next(m for m in store.load(ORG).state.members if m.email == "ann@acme.example")
    assert ann.invited_at == NOW
    later = NOW + timedelta(days=8)
    plan = Plan(
        reinvite=(Reinvite(member_id=ann.id, external_id="ann", email=ann.email, invited_at=NOW),)
    )
    apply(store, plan, "r3", now=later)
    ann = next(m for m in store.load(ORG).state.members if m.email == "ann@acme.example")
    assert ann.invited_at == later
    (event,) = [e for e in store.events(ORG) if e.action == "member.reinvite"]
    assert event.before == {"invited_at": "2026-11-25T09:00:00Z"}
    assert event.after == {"invited_at": "2026-12-03T09:00:00Z"}
    stale = store.summaries({ORG: later - timedelta(days=7)})[ORG]
    assert stale.members["invited"] == 3 and stale.stale_invitations == 2


def test_a_store_at_revision_0001_upgrades_and_keeps_its_members_and_mirror(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store_at_revision(db, "0001").dispose()
    with sqlite_connection(db) as conn:
        conn.execute(
            "INSERT INTO organizations (id, name, version, created_at, last_user_count) "
            "VALUES (1, 'acme', 3, '2026-01-01 00:00:00', 1)"
        )
        conn.execute(
            "INSERT INTO members (organization_id, email, external_id, name, status, role, "
            "invited_at, updated_at) VALUES (1, 'old@acme.example', 'u-old', NULL, 'invited', "
            "'user', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
        )
        conn.execute(
            "INSERT INTO mirror_users VALUES (1, 'u-old', 'uid=old', 'old', ' Old@ACME.example ', "
            "NULL, 0)"
        )
    with SqlStore.open(f"sqlite:///{db}") as store:
        loaded = store.load(ORG)
        assert loaded.version == 3 and loaded.state.collections == ()
        (old,) = loaded.state.members
        assert old.invited_at == datetime(2026, 1, 1, tzinfo=UTC)
    with sqlite_connection(db) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert set(revision) == head_revisions()
        # the address as the planner normalizes it, for lookups by address
        assert conn.execute("SELECT email_key FROM mirror_users").fetchall() == [
            ("old@acme.example",)
        ]
        assert conn.execute("SELECT count(*) FROM collection_access").fetchone() == (0,)


def test_an_empty_store_has_empty_summaries(tmp_path: Path) -> None:
    with SqlStore.open(f"sqlite:///{tmp_path / 'none.db'}", readonly=True) as store:
        summary = store.summaries({ORG: NOW})[ORG]
        assert summary.members == {"invited": 0, "accepted": 0, "confirmed": 0, "revoked": 0}
        assert store.collections(ORG) == [] and store.load(ORG).mirror == Mirror()


def test_a_crash_after_the_collections_leaves_every_table_as_it_was(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    (stored,) = store.load(ORG).state.collections
    ann = next(m for m in store.load(ORG).state.members if m.email == "ann@acme.example")
    plan = Plan(
        create_collections=(
            CollectionCreate(external_id="col-x", name="X", access=(access("Sales"),)),
        ),
        update_collections=(
            CollectionUpdate(
                collection_id=stored.id,
                external_id="col-social",
                name="Social",
                previous_name="Social Media",
                access=(),
                previous_access=(access("Marketing"),),
            ),
        ),
        reinvite=(Reinvite(member_id=ann.id, external_id="ann", email=ann.email, invited_at=NOW),),
    )
    db = tmp_path / "dirsync.db"

    def dump() -> dict[str, list[tuple[object, ...]]]:
        with sqlite_connection(db) as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in names}

    snapshot = dump()

    def crash(stage: str) -> None:
        if stage == "after_events":
            raise RuntimeError("crash")

    monkeypatch.setattr(apply_module, "_fault_hook", crash)
    with pytest.raises(RuntimeError, match="crash"):
        apply(store, plan, "crash", now=NOW + timedelta(days=8))
    assert dump() == snapshot
