"""``[store] keep_runs``/``keep_events`` on every backend: old runs go, but each organization
keeps its latest run and its latest success whatever their age."""

from __future__ import annotations

from datetime import timedelta

from dirsync.plan import Outcome
from dirsync.state.sql_store import SqlStore
from dirsync.state.store import Store
from tests.contract.test_store_contract import NOW, record


def test_old_runs_go_but_each_organizations_latest_and_latest_success_stay(store: Store) -> None:
    assert isinstance(store, SqlStore)
    for organization, runs in {
        "acme": [
            ("a-old-success", Outcome.APPLIED, 0),
            ("a-latest-success", Outcome.UNCHANGED, 10),
            ("a-failed", Outcome.FAILED, 20),
            ("a-failed-later", Outcome.FAILED, 30),
            ("a-latest", Outcome.FAILED, 60 * 24 * 30),  # younger than the cutoff
        ],
        "globex": [("g-old", Outcome.APPLIED, 0), ("g-latest", Outcome.APPLIED, 5)],
        "initech": [("i-only-failed", Outcome.FAILED, 0), ("i-old-failed", Outcome.FAILED, -5)],
    }.items():
        for run_id, outcome, minutes in runs:
            store.record_run(organization, record(run_id, outcome, minutes=minutes))

    pruned = store.prune(runs_before=NOW + timedelta(days=1), events_before=None)

    kept = {r.run_id for r in store.runs(["acme", "globex", "initech"])}
    assert kept == {"a-latest-success", "a-latest", "g-latest", "i-only-failed"}
    assert (pruned.runs, pruned.events) == (5, 0)
