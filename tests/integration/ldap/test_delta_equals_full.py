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

The features that make a plan depend on more than the delta are walked too, on and off
(``FEATURES``, one setting per walk, rotated by the seed): ``reinvite_after``, with the clock
frozen for each step's two runs and moved on between steps, so that invitations come due; and
collections naming groups the walk creates, renames and deletes. Some steps change nothing
in the directory and only move the clock (a quiet run, unless an invitation came due).

The seed of each walk is in the test id; ``DIRSYNC_WALK_STEPS`` and ``DIRSYNC_WALK_SEEDS``
(comma-separated) make a longer run, e.g. ``DIRSYNC_WALK_SEEDS=1,2,3,4,5 DIRSYNC_WALK_STEPS=200
pytest tests/integration/ldap/test_delta_equals_full.py``.
"""

from __future__ import annotations

import json
import os
import random
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from tests.integration.ldap.directory_walk import CONTRACTOR, DISABLED, Walk
from tests.integration.test_organization_cli import OrgDirsync as Dirsync
from tests.integration.test_organization_cli import dirsync

__all__ = ["dirsync"]  # the fixture (with collections), shared with test_organization_cli

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


#: (reinvite_after, collections) of each walk, rotated by the walk's place and its seed
FEATURES = [(True, True), (True, False), (False, True), (False, False)]
#: invitations come due after two days; the clock moves up to a day and a half per step
REINVITE_AFTER = timedelta(days=2)


def _features(dirsync: Dirsync, walk: Walk, *, reinvite: bool, collections: bool) -> None:
    if reinvite:
        dirsync.set(sync={"reinvite_after": f"{int(REINVITE_AFTER.total_seconds())}s"})
    if collections:
        plain = sorted(g.cn for g in walk.groups.values() if g.ou == "Groups")
        # groups of the seed (renamed and deleted as the walk goes), names the walk may give a
        # group it adds or renames later, and one no group will have
        dirsync.collections = [
            {"name": "Projects", "external_id": "col-projects", "groups": plain[:2],
             "permission": "edit"},
            {"name": "Later", "external_id": "col-later", "groups": ["g014", "g020", "g026"],
             "permission": "read"},
            {"name": "Nobody", "external_id": "col-nobody", "groups": ["no such group"]},
        ]  # fmt: skip
        dirsync.write()


class _Clock:
    """The time of each step's two runs: frozen, and moved on between steps (with
    ``reinvite_after`` only; otherwise the real time)."""

    def __init__(self, rng: random.Random, *, frozen: bool) -> None:
        self.rng = rng
        self.frozen = frozen
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def step(self) -> AbstractContextManager[Any]:
        if not self.frozen:
            return nullcontext()
        self.now += timedelta(hours=self.rng.uniform(2, 36))
        return freeze_time(self.now)


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
    place = 2 * ["syncrepl", "modify_timestamp"].index(mechanism)
    reinvite, collections = FEATURES[
        (place + ["employeeType", "memberOf"].index(filter_on) + seed) % 4
    ]
    _features(dirsync, walk, reinvite=reinvite, collections=collections)
    clock = _Clock(walk.rng, frozen=reinvite)
    with clock.step():
        first = _plan(dirsync)
    assert first["outcome"] == "applied"
    planned: set[str] = set()
    for number in range(1, STEPS + 1):
        if reinvite and walk.rng.random() < 0.2:
            walk.history.append("(the clock only)")
        else:
            walk.step()
        with clock.step():
            full = _plan(dirsync, "--dry-run", "--full")
            delta = _plan(dirsync)
        planned.update(kind for kind, items in full["plan"].items() if items)
        assert (delta["plan"], delta["refusal"]) == (full["plan"], full["refusal"]), (
            f"seed {seed}, {mechanism}, filter on {filter_on}, deprovision = {deprovision}, "
            f"reinvite_after {reinvite}, collections {collections}: step {number} planned "
            "differently by delta than by a full read; the walk so far:\n  "
            + "\n  ".join(walk.history)
        )
    # the features were exercised: invitations came due, the collections were created
    if reinvite:
        assert "reinvite" in planned, planned
    if collections:
        assert len(first["plan"]["create_collections"]) == 3, first["plan"]
    # the walk tested deltas, not full reads: most runs after the first read a delta
    fulls = [bool(full) for (full,) in dirsync.sql("SELECT full FROM runs ORDER BY started_at")]
    assert fulls[0] and fulls.count(False) >= STEPS // (3 if filter_on == "memberOf" else 2), fulls
