"""The several-nodes soak, briefly and with a fixed seed (``python -m bench.nodes_soak`` runs
it for minutes): three ``dirsync run`` processes on one PostgreSQL and the session's slapd,
killed, stopped and cut off at random moments while the directories change; afterwards every
organization's store equals a fresh full sync, every run has a record and no organization
ran on two nodes at once (``dirsync.testing.nodes_soak``)."""

from __future__ import annotations

from pathlib import Path

from dirsync.testing.nodes_soak import NodesSoak, SoakSettings
from dirsync.testing.postgres import Postgres
from dirsync.testing.slapd import Slapd


def test_three_nodes_under_random_faults_leave_every_store_as_a_fresh_sync_would(
    slapd: Slapd, postgres: Postgres, tmp_path: Path
) -> None:
    settings = SoakSettings(seed=21, seconds=30, organizations=6, users=10)
    report = NodesSoak(settings, slapd, postgres, tmp_path).run()

    assert report.findings == [], "\n".join(report.lines())
    assert sum(report.faults.values()) >= 3, report.lines()  # the faults happened
    assert sum(report.changes.values()) >= 10, report.lines()  # and so did the changes
    # every node took part: completed runs of its own (which node gets to apply the changes is
    # up to the random faults and claims; a node may see only unchanged organizations)
    completed = {node for node, outcome in report.runs if outcome in ("applied", "unchanged")}
    assert completed == {"node-a", "node-b", "node-c"}, report.lines()
    assert any(outcome == "applied" for _, outcome in report.runs), report.lines()
