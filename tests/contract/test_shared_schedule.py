"""The organization's schedule in the store (``state/schedules.py``), on SQLite and PostgreSQL:
one claim per due time whichever node asks, a lease another node may take after, and a
finish that only the latest claim may write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dirsync.state.sql_store import SqlStore
from dirsync.state.store import Store

ORG = "acme"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def test_an_organization_is_claimed_once_per_due_time(store: Store) -> None:
    assert isinstance(store, SqlStore)
    first = store.claim_schedule(ORG, node="a", now=NOW, lease_until=NOW + LEASE)
    assert first.won and first.number == 1 and first.failures == 0

    other = store.claim_schedule(ORG, node="b", now=NOW, lease_until=NOW + LEASE)
    assert not other.won and other.next_due == NOW + LEASE

    later = NOW + timedelta(minutes=15)
    assert store.finish_schedule(ORG, number=1, next_due=later, failures=0, last_full=NOW)
    assert store.next_due(ORG) == later
    early = store.claim_schedule(ORG, node="b", now=NOW + LEASE, lease_until=NOW + 2 * LEASE)
    assert not early.won and early.next_due == later

    due = store.claim_schedule(ORG, node="b", now=later, lease_until=later + LEASE)
    assert due.won and due.number == 2 and due.last_full == NOW


def test_a_lease_that_runs_out_lets_another_node_claim(store: Store) -> None:
    """A node that claimed and never finished (killed, cut off) leaves the lease: once it has
    passed, another node claims, and the first one's late finish writes nothing."""
    assert isinstance(store, SqlStore)
    store.claim_schedule(ORG, node="a", now=NOW, lease_until=NOW + LEASE)
    taken = store.claim_schedule(ORG, node="b", now=NOW + LEASE, lease_until=NOW + 2 * LEASE)
    assert taken.won and taken.number == 2

    late = store.finish_schedule(
        ORG, number=1, next_due=NOW + timedelta(hours=1), failures=3, last_full=None
    )

    assert not late
    assert store.next_due(ORG) == NOW + 2 * LEASE
    assert store.finish_schedule(ORG, number=2, next_due=NOW, failures=1, last_full=None)
    again = store.claim_schedule(ORG, node="a", now=NOW + LEASE, lease_until=NOW + 2 * LEASE)
    assert again.won and again.failures == 1
