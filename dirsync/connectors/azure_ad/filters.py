"""``user_filter`` / ``group_filter`` on group display names ("include:A,B" / "exclude:A,B").

Pure. Names match case-insensitively. A group filter keeps (or drops) the named groups; the
kept groups carry their flattened user membership, so a user reached through a nested group
that the filter dropped still counts. A user filter keeps (or drops) the users who are members
of the named groups, transitively. Names that match no group are warnings.
"""

from __future__ import annotations

from dataclasses import replace

from dirsync.mapping.groups import flatten_groups
from dirsync.model import DirectoryGroup, DirectoryUser


def parse_filter(text: str) -> tuple[str, frozenset[str]] | None:
    """``"include:A, B"`` → ``("include", {"a", "b"})``; empty → None."""
    if not text:
        return None
    mode, _, names = text.partition(":")
    return mode.strip(), frozenset(n.strip().casefold() for n in names.split(",") if n.strip())


def apply_filters(
    users: list[DirectoryUser],
    groups: list[DirectoryGroup],
    *,
    user_filter: str,
    group_filter: str,
) -> tuple[list[DirectoryUser], list[DirectoryGroup], list[str]]:
    warnings: list[str] = []
    by_id = {g.external_id: g for g in groups}
    flat = flatten_groups(by_id, {u.ref: u.external_id for u in users}).users
    names = {g.name.casefold() for g in groups}

    if (parsed := parse_filter(user_filter)) is not None:
        mode, wanted = parsed
        _warn_unknown("user_filter", wanted, names, warnings)
        reached: set[str] = set()
        for group in groups:
            if group.name.casefold() in wanted:
                reached |= flat[group.external_id]
        keep = (
            (lambda u: u.external_id in reached)
            if mode == "include"
            else (lambda u: u.external_id not in reached)
        )
        users = [u for u in users if keep(u)]

    if (parsed := parse_filter(group_filter)) is not None:
        mode, wanted = parsed
        _warn_unknown("group_filter", wanted, names, warnings)
        chosen = [g for g in groups if (g.name.casefold() in wanted) == (mode == "include")]
        groups = [replace(g, member_refs=flat[g.external_id]) for g in chosen]

    kept_users = {u.ref for u in users}
    kept_groups = {g.ref for g in groups}
    groups = [
        replace(g, member_refs=frozenset(r for r in g.member_refs if r in kept_users | kept_groups))
        for g in groups
    ]
    return users, groups, warnings


def _warn_unknown(key: str, wanted: frozenset[str], names: set[str], warnings: list[str]) -> None:
    for name in sorted(wanted - names):
        warnings.append(f"{key}: no group named {name!r} in the tenant; it matches nothing")
