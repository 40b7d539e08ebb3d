"""Whose turn a run is (``daemon/claims.py``): a daemon alone always; nodes sharing a store
take turns, the node that ran an organization last pausing longer before the next claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dirsync.daemon.claims import MAX_PAUSE, LocalClaims, SharedClaims
from dirsync.state.sql_store import SqlStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TAKEOVER = timedelta(seconds=60)
INTERVAL = timedelta(minutes=15)


def test_a_daemon_alone_always_runs_at_once(tmp_path: Path) -> None:
    claims = LocalClaims()
    claim = claims.claim("acme", NOW, failures=2, last_full=NOW)
    assert claim.won and (claim.failures, claim.last_full) == (2, NOW)
    assert claims.pause("acme", INTERVAL) == 0
    assert claims.look_again("acme", NOW) is None


def test_the_node_that_ran_an_organization_last_lets_the_others_claim_first(
    tmp_path: Path,
) -> None:
    with SqlStore.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        a = SharedClaims(store, node="a", takeover=TAKEOVER)
        b = SharedClaims(store, node="b", takeover=TAKEOVER)
        longest = MAX_PAUSE.total_seconds()

        assert a.claim("acme", NOW, failures=0, last_full=None).won
        lost = b.claim("acme", NOW, failures=0, last_full=None)
        assert not lost.won and lost.next_due == NOW + TAKEOVER

        for _ in range(20):  # random pauses: a's is always the longer one
            assert longest <= a.pause("acme", INTERVAL) <= 2 * longest
            assert 0 <= b.pause("acme", INTERVAL) <= longest
        # a short interval keeps the pauses to a tenth of it
        assert b.pause("acme", timedelta(seconds=2)) <= 0.2


def test_a_node_looks_again_when_the_lease_ends_and_never_sooner_than_a_quarter_takeover(
    tmp_path: Path,
) -> None:
    with SqlStore.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        b = SharedClaims(store, node="b", takeover=TAKEOVER)
        assert b.look_again("acme", NOW) == NOW + TAKEOVER / 4  # never claimed yet
        store.claim_schedule("acme", node="a", now=NOW, lease_until=NOW + TAKEOVER)
        assert b.look_again("acme", NOW) == NOW + TAKEOVER
        assert b.look_again("acme", NOW + TAKEOVER) == NOW + TAKEOVER * 5 / 4
