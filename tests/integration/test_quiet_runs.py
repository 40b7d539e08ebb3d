"""Runs whose syncrepl delta is empty: recorded without planning, unless something else moved."""

from __future__ import annotations

from tests.integration.test_sync_cli import Dirsync, company, dirsync, set_disabled

__all__ = ["dirsync"]  # the fixture, shared with test_sync_cli


def _last_run(dirsync: Dirsync) -> tuple[str, int, int]:
    (row,) = dirsync.sql(
        "SELECT outcome, full, entries_read FROM runs ORDER BY started_at DESC LIMIT 1"
    )
    return row[0], row[1], row[2]


def test_a_run_with_no_directory_change_reads_nothing_and_is_recorded_unchanged(
    dirsync: Dirsync,
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    result = dirsync.sync_json()
    assert result["outcome"] == "unchanged" and result["entries_read"] == 0
    assert _last_run(dirsync) == ("unchanged", 0, 0)


def test_a_changed_rule_takes_effect_on_the_next_run_without_a_directory_change(
    dirsync: Dirsync,
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    set_disabled(dirsync.tree, "bob", True)
    dirsync.set(sync={"remove_disabled": False})
    dirsync.sync_json()  # bob's change: read and applied, not revoked
    assert dirsync.members()["bob@example.org"]["status"] == "invited"
    dirsync.set(sync={"remove_disabled": True})
    result = dirsync.sync_json()
    assert [r["email"] for r in result["plan"]["revoke"]] == ["bob@example.org"]


def test_a_store_change_outside_the_sync_is_planned_for_even_without_a_directory_change(
    dirsync: Dirsync,
) -> None:
    company(dirsync.tree)
    dirsync.sync_json()
    dirsync.sql("DELETE FROM group_members")  # bumps the version, as every writer must
    result = dirsync.sync_json()
    assert result["outcome"] == "applied" and result["plan"]["update_groups"]
