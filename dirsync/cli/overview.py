"""The MSP overview: ``dirsync status`` across every client organization.

Adds to each of the contract's status objects what an MSP watches: seats used of total,
members by status, pending invitations (and those older than ``reinvite_after``), the age of the
last sync and its warnings. The same rows print as one table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.table import Table

from dirsync.cli.render import table
from dirsync.config.settings import OrganizationSettings
from dirsync.organization import SEATED_STATUSES
from dirsync.state.records import OrganizationSummary, RunRecord


def stale_cutoffs(
    organizations: Iterable[OrganizationSettings], now: datetime
) -> dict[str, datetime | None]:
    """Per organization: invitations sent at or before this time are pending too long."""
    return {
        org.name: now - org.sync.reinvite_after if org.sync.reinvite_after else None
        for org in organizations
    }


def extend(
    rows: list[dict[str, Any]],
    organizations: Iterable[OrganizationSettings],
    runs: Mapping[str, RunRecord],
    summaries: Mapping[str, OrganizationSummary],
    now: datetime,
) -> list[dict[str, Any]]:
    """The status rows with the overview's keys added (the contract's keys stay as they are)."""
    settings = {org.name: org for org in organizations}
    out = []
    for row in rows:
        name = row["organization"]
        org, run, summary = settings[name], runs.get(name), summaries.get(name)
        members = dict(summary.members) if summary else {}
        used = sum(n for status, n in members.items() if status in SEATED_STATUSES)
        last = (run.finished_at or run.started_at) if run else None
        out.append(
            {
                **row,
                "seats": {"used": used, "total": org.seats},
                "members": members,
                "pending_invitations": members.get("invited", 0),
                "stale_invitations": (
                    summary.stale_invitations if summary and org.sync.reinvite_after else None
                ),
                "reinvite_after": (
                    f"{org.sync.reinvite_after.total_seconds():g}s"
                    if org.sync.reinvite_after
                    else None
                ),
                "last_sync_age_seconds": int((now - last).total_seconds()) if last else None,
                "warnings": list(run.warnings) if run else [],
            }
        )
    return out


def _age(seconds: int | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def overview_table(rows: list[dict[str, Any]]) -> Table:
    return table(
        f"{len(rows)} organization(s)",
        [
            "organization",
            "seats",
            "invited",
            "accepted",
            "confirmed",
            "revoked",
            "pending (old)",
            "last sync",
            "warnings",
            "next run",
            "error",
        ],
        (
            (
                r["organization"],
                f"{r['seats']['used']}/{r['seats']['total'] or 'unlimited'}",
                r["members"].get("invited", 0),
                r["members"].get("accepted", 0),
                r["members"].get("confirmed", 0),
                r["members"].get("revoked", 0),
                f"{r['pending_invitations']}"
                + (f" ({r['stale_invitations']})" if r["stale_invitations"] else ""),
                f"{r['outcome'] or 'never run'} {_age(r['last_sync_age_seconds'])}".strip(),
                len(r["warnings"]) or "",
                r["next_run"],
                r["error"],
            )
            for r in rows
        ),
    )
