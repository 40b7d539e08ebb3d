"""Administrator changes in the store: one transaction, one event, a version bump."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dirsync.errors import ConcurrentRunError, NotFound, TransitionRefused
from dirsync.lifecycle import AdminAction, AdminChange, decide
from dirsync.model import DirectoryDelta, Mirror
from dirsync.organization import Member, Role
from dirsync.plan import Invite, Outcome, Plan
from dirsync.state import admin, counts
from dirsync.state.records import RunRecord
from dirsync.state.schema import OrganizationRow
from dirsync.state.sql_store import SqlStore

ORG = "acme"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.open(f"sqlite:///{tmp_path / 'dirsync.db'}")
    plan = Plan(invite=(Invite(external_id="u1", email="ann@acme.example", name="Ann"),))
    s.apply(
        ORG,
        plan=plan,
        mirror_before=Mirror(),
        mirror_after=Mirror(),
        cursor=None,
        run=RunRecord(
            run_id="r1", started_at=NOW, finished_at=NOW, outcome=Outcome.APPLIED, full=True
        ),
        expected_version=0,
        now=NOW,
    )
    yield s
    s.close()


def act(store: SqlStore, action: AdminAction, role: Role | None = None) -> AdminChange | None:
    decider = partial(decide, email="ann@acme.example", action=action, role=role)
    return store.admin_change(ORG, decider, actor="admin:root", now=NOW)


def test_an_admin_change_writes_the_member_an_event_and_a_new_version(store: SqlStore) -> None:
    assert store.load(ORG).version == 1
    act(store, AdminAction.ACCEPT)
    loaded = store.load(ORG)
    assert loaded.version == 2 and loaded.state.members[0].status == "accepted"
    event = store.events(ORG)[-1]
    assert (event.actor, event.action, event.target) == (
        "admin:root",
        "member.accept",
        "ann@acme.example",
    )
    assert event.before == {"status": "invited", "role": "user"}
    assert event.after == {"status": "accepted", "role": "user"}


def test_a_refused_change_leaves_the_store_as_it_was(store: SqlStore) -> None:
    events = store.events(ORG)
    with pytest.raises(TransitionRefused):
        act(store, AdminAction.CONFIRM)
    assert store.load(ORG).version == 1 and store.events(ORG) == events


def test_the_same_role_again_changes_nothing(store: SqlStore) -> None:
    assert act(store, AdminAction.SET_ROLE, Role.USER) is None
    assert store.load(ORG).version == 1


def test_remove_deletes_the_member(store: SqlStore) -> None:
    act(store, AdminAction.REMOVE)
    assert store.members(ORG) == []
    assert store.events(ORG)[-1].after is None


def test_an_unknown_organization_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="globex"):
        store.admin_change("globex", lambda s: None, actor="admin:root", now=NOW)


def test_a_version_bumped_in_between_makes_the_change_a_conflict(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = admin.load_members

    def load_then_someone_else_writes(session: Session, org_id: int) -> tuple[Member, ...]:
        members = original(session, org_id)
        session.execute(update(OrganizationRow).values(version=OrganizationRow.version + 1))
        return members

    monkeypatch.setattr(admin, "load_members", load_then_someone_else_writes)
    with pytest.raises(ConcurrentRunError, match="changed while"):
        act(store, AdminAction.ACCEPT)
    monkeypatch.undo()
    assert store.load(ORG).version == 1
    assert store.load(ORG).state.members[0].status == "invited"


def _kept_and_counted(store: SqlStore) -> tuple[counts.Counts | None, counts.Counts]:
    assert store._engine is not None
    with Session(store._engine) as session:
        org_id, version = session.execute(
            select(OrganizationRow.id, OrganizationRow.version).where(OrganizationRow.name == ORG)
        ).one()
        return counts.kept(session, org_id, version), counts.counted(session, org_id)


def test_the_counts_a_run_keeps_are_never_taken_after_an_admin_change(store: SqlStore) -> None:
    """A run's apply stamps the organization's counts with its version; an administrator's
    change bumps the version without keeping them, so they stop being taken, and the next
    scoped load counts (the seat guard must see the revoked member's seat free)."""
    kept, now = _kept_and_counted(store)
    assert kept == now == counts.Counts(members=1, seated=1, mirror_users=0, mirror_groups=0)
    act(store, AdminAction.REVOKE)
    kept, now = _kept_and_counted(store)
    assert kept is None and now.seated == 0
    scoped = store.load_scoped(ORG, DirectoryDelta(), seats=True)
    assert scoped is not None and scoped.counted.seated == 0 and scoped.counted.members == 1
