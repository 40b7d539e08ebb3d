"""The invariant of delta reads, on a real slapd with memberof + refint + syncprov: after any
sequence of directory changes, a delta run plans exactly what a full read would.

A seeded random walk (``directory_walk.py``) changes the directory one step at a time through
LDIF (adds, deletes, renames and moves, mail changes, disable/enable, leaving and entering an
attribute ``user_filter``, group membership, nesting, group renames, adds and deletes, access
granted and withdrawn through a group a ``memberOf`` filter names, delete and re-create).
After every step, ``sync --dry-run --full`` plans from a full read, then a plain ``sync``
reads the delta and applies its plan; the two plans must be equal. The applied delta run
leaves the store where the full plan would, so the walk goes on from the same place.

Both incremental mechanisms are walked: syncrepl, and the modifyTimestamp fallback with an id
scan on every run (between scans it does not see deletions, by design). ``overwrite_existing``
is on: without it an explicit deletion deprovisions and mere absence does not, so a delta and
a full read differ by design on deletions.

The seed of each walk is in the test id; ``DIRSYNC_WALK_STEPS`` and ``DIRSYNC_WALK_SEEDS``
(comma-separated) make a longer run, e.g. ``DIRSYNC_WALK_SEEDS=1,2,3,4,5 DIRSYNC_WALK_STEPS=200
pytest tests/integration/ldap/test_delta_equals_full.py``.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from tests.integration.ldap.directory_walk import CONTRACTOR, DISABLED, Walk
from tests.integration.test_sync_cli import Dirsync, dirsync

__all__ = ["dirsync"]  # the fixture, shared with test_sync_cli

STEPS = int(os.environ.get("DIRSYNC_WALK_STEPS", "30"))
SEEDS = [int(s) for s in os.environ.get("DIRSYNC_WALK_SEEDS", "20261205").split(",")]


def _configure(dirsync: Dirsync, walk: Walk, *, mechanism: str, filter_on: str) -> str:
    if filter_on == "memberOf":
        user_filter = f"(memberOf={walk.group_dn(walk.access)})"
    else:
        user_filter = f"(!(employeeType={CONTRACTOR}))"
    source: dict[str, Any] = {
        "incremental": mechanism,
        "user_filter": user_filter,
        "disabled_filter": f"(employeeType={DISABLED})",
    }
    if mechanism == "modify_timestamp":
        source["deletion_scan_interval"] = "1ms"  # an id scan on every run
    deprovision = walk.rng.choice(["revoke", "remove"])
    dirsync.set(
        source=source,
        sync={
            "overwrite_existing": True,
            "deprovision": deprovision,
            "max_removals": 1000,
            "min_source_ratio": 0.0,
        },
    )
    return deprovision


def _plan(dirsync: Dirsync, *args: str) -> dict[str, Any]:
    code, out, err = dirsync.run("sync", "--json", *args)
    # a guard may refuse (a walk can leave nobody in the read): then both must refuse alike
    assert code in (0, 3), (code, out, err[-3000:])
    (result,) = json.loads(out)
    assert result["outcome"] in ("applied", "unchanged", "dry_run", "refused"), result
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("filter_on", ["employeeType", "memberOf"])
@pytest.mark.parametrize("mechanism", ["syncrepl", "modify_timestamp"])
def test_after_every_change_a_delta_run_plans_what_a_full_read_plans(
    dirsync: Dirsync, mechanism: str, filter_on: str, seed: int
) -> None:
    walk = Walk(dirsync.tree, random.Random(f"{seed}-{mechanism}-{filter_on}"))
    walk.seed()
    deprovision = _configure(dirsync, walk, mechanism=mechanism, filter_on=filter_on)
    first = _plan(dirsync)
    assert first["outcome"] == "applied"
    for number in range(1, STEPS + 1):
        walk.step()
        full = _plan(dirsync, "--dry-run", "--full")
        delta = _plan(dirsync)
        assert (delta["plan"], delta["refusal"]) == (full["plan"], full["refusal"]), (
            f"seed {seed}, {mechanism}, filter on {filter_on}, deprovision = {deprovision}: "
            f"step {number} planned "
            "differently by delta than by a full read; the walk so far:\n  "
            + "\n  ".join(walk.history)
        )
    # the walk tested deltas, not full reads: most runs after the first read a delta
    fulls = [bool(full) for (full,) in dirsync.sql("SELECT full FROM runs ORDER BY started_at")]
    assert fulls[0] and fulls.count(False) >= STEPS // (3 if filter_on == "memberOf" else 2), fulls
