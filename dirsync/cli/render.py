"""Human output: rich tables on stdout. JSON output lives with the values (``to_json``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from dirsync.plan import Plan
from dirsync.state.records import (
    CollectionView,
    EventView,
    GroupView,
    MemberView,
    RunRecord,
)
from dirsync.sync.result import RunResult

_PLAN_LABELS = {
    "invite": "invite",
    "update": "update",
    "revoke": "revoke",
    "restore": "restore",
    "remove": "remove",
    "create_groups": "create group",
    "update_groups": "update group",
    "delete_groups": "delete group",
    "create_collections": "create collection",
    "update_collections": "update collection",
    "reinvite": "reinvite",
}


def console() -> Console:
    # rich assumes 80 columns when stdout is not a terminal; a pipe or a file gets room
    return Console(soft_wrap=False, highlight=False, width=None if sys.stdout.isatty() else 200)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


def members_table(members: list[MemberView]) -> Table:
    return table(
        f"{len(members)} member(s)",
        ["email", "name", "status", "role", "groups", "external id", "invited"],
        (
            (
                m.email,
                m.name,
                m.status,
                m.role,
                ", ".join(m.groups),
                m.external_id,
                m.invited_at.strftime("%Y-%m-%d %H:%M") if m.invited_at else None,
            )
            for m in members
        ),
    )


def collections_table(collections: list[CollectionView]) -> Table:
    return table(
        f"{len(collections)} collection(s)",
        ["name", "groups", "members", "external id"],
        (
            (
                c.name + ("" if c.managed else " (not from the config)"),
                ", ".join(f"{g} ({p})" for g, p in c.groups),
                f"{len(c.members)}: " + ", ".join(c.members) if c.members else "0",
                c.external_id,
            )
            for c in collections
        ),
    )


def _brief(values: dict[str, Any] | None) -> str:
    if not values:
        return ""
    return ", ".join(f"{k}={v}" for k, v in values.items())


def events_table(events: list[EventView]) -> Table:
    return table(
        f"{len(events)} event(s)",
        ["at", "actor", "action", "target", "before", "after"],
        (
            (
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.action,
                e.target,
                _brief(e.before),
                _brief(e.after),
            )
            for e in events
        ),
    )


def runs_table(runs: list[RunRecord]) -> Table:
    return table(
        f"{len(runs)} run(s)",
        ["started", "organization", "node", "outcome", "changes", "error"],
        (
            (
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.organization or "",
                r.node or "",
                str(r.outcome),
                ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v),
                r.error or "",
            )
            for r in runs
        ),
    )


def groups_table(groups: list[GroupView]) -> Table:
    return table(
        f"{len(groups)} group(s)",
        ["name", "members", "external id"],
        ((g.name, ", ".join(g.members), g.external_id) for g in groups),
    )


#: a terminal shows this many entries of each kind of change; --json has them all
ROWS_PER_KIND = 50


def plan_rows(plan: Plan) -> list[tuple[str, str, str]]:
    rows = []
    for key, label in _PLAN_LABELS.items():
        entries = getattr(plan, key)
        for entry in entries[:ROWS_PER_KIND]:
            data = entry.to_json()
            target = data.get("email") or data.get("name") or ""
            rows.append((label, str(target), _details(data)))
        if len(entries) > ROWS_PER_KIND:
            rows.append((label, f"... {len(entries) - ROWS_PER_KIND} more", "see --json"))
    return rows


def _details(data: dict[str, Any]) -> str:
    """The interesting part of a plan entry, short: member lists become counts."""
    parts: list[str] = []
    for key, value in data.items():
        if key in {"email", "name", "external_id"} or value in (None, False, [], {}):
            continue
        if key == "changes":
            parts.extend(f"{field}: {c['before']} -> {c['after']}" for field, c in value.items())
        elif key in {"access", "grant", "withdraw"}:  # group access to a collection
            shown = ", ".join(f"{a['group']} ({a['permission']})" for a in value)
            parts.append(f"{key}: {shown}")
        elif isinstance(value, list):
            parts.append(f"{key.replace('_', ' ')}: {len(value)}")
        else:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return ", ".join(parts)


def run_report(result: RunResult) -> list[Any]:
    counts = ", ".join(f"{k} {v}" for k, v in result.plan.counts().items() if v) or "no changes"
    parts: list[Any] = [
        f"[bold]{result.organization}[/bold]: {result.outcome} ({counts}; "
        f"{result.entries_read} entries read)"
    ]
    if result.refusal:
        parts.extend(f"  [red]refused:[/red] {reason}" for reason in result.refusal)
        digest = result.digest()
        parts.append(
            f"  plan {digest}: to apply this exact plan once anyway, review it and run "
            f"dirsync sync --org {result.organization} --approve {digest}"
        )
    elif result.error:
        parts.append(f"  [red]error:[/red] {result.error}")
    rows = plan_rows(result.plan)
    if rows:
        parts.append(table(None, ["change", "target", "details"], rows))
    parts.extend(f"  [yellow]warning:[/yellow] {w}" for w in result.warnings)
    return parts


def source_report(view: dict[str, Any]) -> list[Any]:
    users, groups = view["users"], view["groups"]
    parts: list[Any] = [
        table(
            f"{len(users)} user(s)",
            ["email", "name", "disabled", "external id"],
            (
                (u["email"], u["name"], "yes" if u["disabled"] else "", u["external_id"])
                for u in users
            ),
        ),
        table(
            f"{len(groups)} group(s)",
            ["name", "members", "external id"],
            ((g["name"], ", ".join(g["members"]), g["external_id"]) for g in groups),
        ),
    ]
    parts.extend(f"[yellow]warning:[/yellow] {w}" for w in view["warnings"])
    return parts
