"""Flattening nested groups, cycle-safe, in one pass over the group graph.

Strongly connected components (Tarjan, iterative so that deep nesting cannot hit the recursion
limit) make cycles harmless: every group in a cycle has the same flattened membership. Tarjan
emits a component only after every component it reaches, so one pass with memoization gives
each group its transitive users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dirsync.model import DirectoryGroup


@dataclass(frozen=True, slots=True, kw_only=True)
class Flattened:
    #: group external id → external ids of the users reached directly or through nested groups
    users: dict[str, frozenset[str]]
    #: group external id → member refs that are neither a known user nor a known group
    unresolved: dict[str, frozenset[str]]


def flatten_groups(
    groups: Mapping[str, DirectoryGroup], user_ids_by_ref: Mapping[str, str]
) -> Flattened:
    group_ids_by_ref = {g.ref: g.external_id for g in groups.values()}
    direct_users: dict[str, set[str]] = {}
    children: dict[str, list[str]] = {}
    unresolved: dict[str, frozenset[str]] = {}
    for gid, group in groups.items():
        users: set[str] = set()
        nested: list[str] = []
        missing: set[str] = set()
        for ref in group.member_refs:
            if (uid := user_ids_by_ref.get(ref)) is not None:
                users.add(uid)
            elif (child := group_ids_by_ref.get(ref)) is not None:
                nested.append(child)
            else:
                missing.add(ref)
        direct_users[gid] = users
        children[gid] = nested
        if missing:
            unresolved[gid] = frozenset(missing)
    return Flattened(users=_transitive(direct_users, children), unresolved=unresolved)


def _transitive(
    direct: dict[str, set[str]], children: dict[str, list[str]]
) -> dict[str, frozenset[str]]:
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: dict[str, frozenset[str]] = {}
    counter = 0

    for root in direct:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_pos = work.pop()
            if child_pos == 0:
                index[node] = lowlink[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            kids = children[node]
            if child_pos < len(kids):
                work.append((node, child_pos + 1))
                child = kids[child_pos]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            if lowlink[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                users: set[str] = set()
                in_component = set(component)
                for member in component:
                    users |= direct[member]
                    for child in children[member]:
                        if child not in in_component:
                            users |= result[child]
                frozen = frozenset(users)
                for member in component:
                    result[member] = frozen
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
    return result
