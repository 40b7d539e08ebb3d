"""The invariant of delta reads on a real Samba AD DC, for what AD's deltas promise: after
every change of a seeded random walk, a delta run (DirSync as the Administrator, uSNChanged
polling as the reader) plans exactly what a full read plans.

The walk adds, deletes, renames and re-creates users (same name and address, a new
objectGUID), changes addresses, disables and enables, changes group membership and nesting,
and adds, renames and deletes groups. It leaves out what README lists as AD's known limits:
moves out of ``user_path``/``group_path`` and changes that only move an object in or out of
the filters, which the next full read notices. ``DIRSYNC_AD_WALK_STEPS`` and
``DIRSYNC_AD_WALK_SEED`` make a longer or another walk.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.ad.conftest import DISABLED, ENABLED, AdOu
from tests.integration.ad.test_ad_sync_cli import AdDirsync, ad

__all__ = ["ad"]  # the fixture, shared with test_ad_sync_cli
pytestmark = pytest.mark.samba

STEPS = int(os.environ.get("DIRSYNC_AD_WALK_STEPS", "16"))
SEED = int(os.environ.get("DIRSYNC_AD_WALK_SEED", "20261205"))


class AdWalk:
    """A model of one OU's people and groups, changed at random through the DC."""

    def __init__(self, ou: AdOu, rng: random.Random) -> None:
        self.ou = ou
        self.rng = rng
        self.people: dict[str, str] = {}  # name -> DN
        self.mail: dict[str, str] = {}
        self.groups: dict[str, str] = {}  # name -> DN
        self.serial = 0
        self.history: list[str] = []

    def _fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def seed(self) -> None:
        names = [self._fresh("u") for _ in range(6)]
        for name, dn in zip(names, self.ou.users(*names), strict=True):
            self.people[name], self.mail[name] = dn, self.ou.email(name)
        for _ in range(3):
            name = self._fresh("g")
            members = [dn for dn in self.people.values() if self.rng.random() < 0.5]
            self.groups[name] = self.ou.group(name, members)
        first, second = list(self.groups.values())[:2]
        self.ou.add_member(first, second)

    def step(self) -> None:
        moves: list[tuple[int, Callable[[], str | None]]] = [
            (3, self.add_person),
            (2, self.delete_person),
            (3, self.rename_person),
            (2, self.change_mail),
            (2, self.flip_disabled),
            (4, self.join_group),
            (4, self.leave_group),
            (1, self.nest_group),
            (1, self.rename_group),
            (1, self.add_group),
            (1, self.delete_group),
            (2, self.recreate_person),
        ]
        while True:
            said = self.rng.choices([m for _, m in moves], weights=[w for w, _ in moves])[0]()
            if said is not None:
                self.history.append(said)
                return

    def _person(self) -> str | None:
        return self.rng.choice(sorted(self.people)) if len(self.people) > 3 else None

    def add_person(self) -> str:
        name = self._fresh("u")
        (self.people[name],) = self.ou.users(name)
        self.mail[name] = self.ou.email(name)
        return f"add {name}"

    def delete_person(self) -> str | None:
        name = self._person()
        if name is None:
            return None
        self.ou.delete(self.people.pop(name))
        return f"delete {name}"

    def recreate_person(self) -> str | None:
        name = self._person()
        if name is None:
            return None
        self.ou.delete(self.people[name])
        (self.people[name],) = self.ou.users(name, mail=self.mail[name])
        return f"re-create {name}"

    def rename_person(self) -> str | None:
        name = self._person()
        if name is None:
            return None
        self.people[name] = self.ou.rename(self.people[name], f"CN={self._fresh('r')}")
        return f"rename {name} -> {self.people[name]}"

    def change_mail(self) -> str | None:
        name = self._person()
        if name is None:
            return None
        self.mail[name] = f"{self._fresh('m')}@{self.ou.name}.example"
        self.ou.modify(self.people[name], mail=self.mail[name])
        return f"mail {name} = {self.mail[name]}"

    def flip_disabled(self) -> str | None:
        name = self._person()
        if name is None:
            return None
        flag = self.rng.choice([ENABLED, DISABLED])
        self.ou.modify(self.people[name], userAccountControl=flag)
        return f"userAccountControl {name} = {flag}"

    def join_group(self) -> str | None:
        name = self._person()
        if name is None or not self.groups:
            return None
        group = self.rng.choice(sorted(self.groups))
        try:
            self.ou.add_member(self.groups[group], self.people[name])
        except Exception:  # already a member: the DC says so; nothing changed
            return None
        return f"{group} += {name}"

    def leave_group(self) -> str | None:
        name = self._person()
        if name is None or not self.groups:
            return None
        group = self.rng.choice(sorted(self.groups))
        try:
            self.ou.remove_member(self.groups[group], self.people[name])
        except Exception:  # not a member: nothing changed
            return None
        return f"{group} -= {name}"

    def nest_group(self) -> str | None:
        if len(self.groups) < 2:
            return None
        parent, child = self.rng.sample(sorted(self.groups), 2)
        try:
            self.ou.add_member(self.groups[parent], self.groups[child])
        except Exception:
            return None
        return f"{parent} += group {child}"

    def rename_group(self) -> str | None:
        if not self.groups:
            return None
        group = self.rng.choice(sorted(self.groups))
        self.groups[group] = self.ou.rename(self.groups[group], f"CN={self._fresh('rg')}")
        return f"rename group {group} -> {self.groups[group]}"

    def add_group(self) -> str:
        name = self._fresh("g")
        members = [dn for dn in self.people.values() if self.rng.random() < 0.3]
        self.groups[name] = self.ou.group(name, members)
        return f"add group {name} with {len(members)}"

    def delete_group(self) -> str | None:
        if len(self.groups) < 3:
            return None
        group = self.rng.choice(sorted(self.groups))
        self.ou.delete(self.groups.pop(group))
        return f"delete group {group}"


def _sync(ad: AdDirsync, *args: str) -> dict[str, Any]:
    code, out, err = ad.run("sync", "--json", *args)
    assert code in (0, 3), (code, out, err[-3000:])
    (result,) = json.loads(out)
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize("in_chain", [False, True], ids=["flattened", "in-chain"])
def test_after_every_change_an_ad_delta_run_plans_what_a_full_read_plans(
    ad: AdDirsync, in_chain: bool
) -> None:
    walk = AdWalk(ad.ou, random.Random(f"{SEED}-{ad.source['bind_dn']}-{in_chain}"))
    walk.seed()
    ad.set(
        source={"nested_groups_in_chain": in_chain},
        sync={"overwrite_existing": True, "max_removals": 1000, "min_source_ratio": 0.0},
    )
    assert _sync(ad)["outcome"] == "applied"
    for number in range(1, STEPS + 1):
        walk.step()
        full = _sync(ad, "--dry-run", "--full")
        delta = _sync(ad)
        assert (delta["plan"], delta["refusal"]) == (full["plan"], full["refusal"]), (
            f"seed {SEED}: step {number} planned differently by delta than by a full read; "
            "the walk so far:\n  " + "\n  ".join(walk.history)
        )
    fulls = [bool(full) for (full,) in ad.sql("SELECT full FROM runs ORDER BY started_at")]
    assert fulls[0] and fulls.count(False) >= STEPS // 2, fulls


def test_leaving_an_access_group_named_by_a_member_of_filter_offboards_on_the_next_run(
    ad: AdDirsync,
) -> None:
    """AD changes a user's memberOf without changing the user: the groups a memberOf filter
    names are watched, and their change makes the run read in full."""
    ou = ad.ou
    ann, ben, _ = ou.users("ann", "ben", "outsider")
    access = ou.group("Access", [ann, ben])
    ad.set(
        source={"user_filter": f"(memberOf={access})"},
        sync={"overwrite_existing": True, "max_removals": 10},
    )
    first = ad.sync_json()
    assert sorted(i["email"] for i in first["plan"]["invite"]) == [
        ou.email("ann"),
        ou.email("ben"),
    ]

    ou.remove_member(access, ben)
    code, out, log = ad.run("sync", "--json")
    assert code == 0, (out, log)
    (result,) = json.loads(out)
    assert [r["email"] for r in result["plan"]["revoke"]] == [ou.email("ben")]
    expired = [json.loads(line) for line in log.splitlines() if "sync.cursor_expired" in line]
    assert expired and "memberOf" in expired[0]["reason"], log

    ou.add_member(access, ou.user_dn("outsider"))
    assert [i["email"] for i in ad.sync_json()["plan"]["invite"]] == [ou.email("outsider")]

    ou.modify(ann, mail="ann.new@example.org")
    code, out, log = ad.run("sync", "--json")
    (result,) = json.loads(out)
    assert [u["email"] for u in result["plan"]["update"]] == ["ann.new@example.org"]
    assert "sync.cursor_expired" not in log
    fulls = [bool(full) for (full,) in ad.sql("SELECT full FROM runs ORDER BY started_at")]
    assert fulls == [True, True, True, False]
