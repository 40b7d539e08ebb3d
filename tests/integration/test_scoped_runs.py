"""Delta runs planned by difference (``mapping.scope``) on a real slapd with syncrepl.

A delta run on an organization the last sync left as it was loads and plans only what the
delta touches (logged as ``sync.scoped`` with its size). Its plan must be the plan a dry run
makes from the whole organization for the same delta (dry runs always plan in full).
"""

from __future__ import annotations

import json

from tests.integration.test_sync_cli import Dirsync, dirsync, modify, set_disabled

__all__ = ["dirsync"]  # the fixture, shared with test_sync_cli

TEAM = [f"p{i:02d}" for i in range(40)]


def _team(dirsync: Dirsync) -> None:
    """40 people in two groups, one nested in the other, and a shared address."""
    tree = dirsync.tree
    people = [tree.person(uid) for uid in TEAM]
    people.append(tree.person("twin", mail="p00@example.org"))
    tree.add(
        *people,
        tree.group("Evens", [tree.user_dn(uid) for uid in TEAM[::2]]),
        tree.group("Everyone", [tree.group_dn("Evens")] + [tree.user_dn(u) for u in TEAM[1::2]]),
    )
    first = dirsync.sync_json()
    assert first["outcome"] == "applied"


def _scope(stderr: str) -> dict[str, int] | None:
    """The size of the scope a run logged (stored mirror users and groups, members loaded),
    or None when it planned the whole organization."""
    for line in stderr.splitlines():
        if '"sync.scoped"' in line:
            event = json.loads(line)
            return {k: event[k] for k in ("users", "groups", "members")}
    return None


def _sync(dirsync: Dirsync) -> tuple[dict[str, object], dict[str, int] | None]:
    code, out, err = dirsync.run("sync", "--json")
    assert code == 0, (out, err)
    (result,) = json.loads(out)
    return result, _scope(err)


def test_a_delta_run_plans_only_what_changed_and_equals_the_full_plan(dirsync: Dirsync) -> None:
    _team(dirsync)
    tree = dirsync.tree
    set_disabled(tree, "p03", True)
    modify(tree, tree.user_dn("p04"), "replace: mail\nmail: p04-new@example.org")
    modify(tree, tree.group_dn("Evens"), f"delete: member\nmember: {tree.user_dn('p06')}")
    tree.add(tree.person("newcomer"))
    (dry,) = dirsync.json("sync", "--dry-run")

    result, scope = _sync(dirsync)

    assert result["outcome"] == "applied"
    assert result["plan"] == dry["plan"] and result["plan_digest"] == dry["plan_digest"]
    assert scope is not None and scope["users"] < len(TEAM) // 2, scope
    members = dirsync.members()
    assert members["p03@example.org"]["status"] == "revoked"
    assert "p04-new@example.org" in members and "newcomer@example.org" in members
    assert "Evens" not in members["p06@example.org"]["groups"]
    assert "Everyone" not in members["p06@example.org"]["groups"]  # only through Evens
    assert "Everyone" in members["p08@example.org"]["groups"]


def test_a_change_to_a_shared_address_brings_every_holder_into_the_scope(
    dirsync: Dirsync,
) -> None:
    _team(dirsync)
    tree = dirsync.tree
    # p00 and twin share an address, so neither was invited; twin moving away frees it
    assert "p00@example.org" not in dirsync.members()
    modify(tree, tree.user_dn("twin"), "replace: mail\nmail: twin@example.org")
    (dry,) = dirsync.json("sync", "--dry-run")

    result, scope = _sync(dirsync)

    assert scope is not None and scope["users"] == 2, scope
    assert result["plan"] == dry["plan"]
    invited = {i["email"] for i in result["plan"]["invite"]}  # type: ignore[index]
    assert invited == {"p00@example.org", "twin@example.org"}


def test_nesting_a_group_reaches_everyone_below_it(dirsync: Dirsync) -> None:
    _team(dirsync)
    tree = dirsync.tree
    tree.add(tree.group("Leads", [tree.user_dn("p01")]))
    dirsync.sync_json()
    modify(tree, tree.group_dn("Leads"), f"add: member\nmember: {tree.group_dn('Evens')}")
    (dry,) = dirsync.json("sync", "--dry-run")

    result, scope = _sync(dirsync)

    # the twenty in Evens, and twin, who shares p00's address
    assert scope is not None and scope["users"] == len(TEAM) // 2 + 1, scope
    assert result["plan"] == dry["plan"]
    assert "Leads" in dirsync.members()["p10@example.org"]["groups"]


def test_a_store_change_or_a_new_rule_plans_the_whole_organization(dirsync: Dirsync) -> None:
    _team(dirsync)
    tree = dirsync.tree
    set_disabled(tree, "p05", True)
    dirsync.sql("DELETE FROM group_members")  # an outside write (bumps the version)
    result, scope = _sync(dirsync)
    assert scope is None and result["plan"]["update_groups"]  # type: ignore[index]

    set_disabled(tree, "p07", True)
    dirsync.set(sync={"remove_disabled": False})
    result, scope = _sync(dirsync)
    assert scope is None and not result["plan"]["revoke"]  # type: ignore[index]

    set_disabled(tree, "p09", True)
    (dry,) = dirsync.json("sync", "--dry-run")
    result, scope = _sync(dirsync)  # the rules are the ones the last run applied: scoped again
    assert scope is not None and result["plan"] == dry["plan"]
    assert not result["plan"]["revoke"] and result["plan"]["update_groups"]  # type: ignore[index]
