"""The documents that read commands print: plain dicts, the same for --json and for tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from dirsync.config.settings import OrganizationSettings
from dirsync.daemon.schedule import next_after
from dirsync.mapping.desired import desired_organization
from dirsync.mapping.mirror import mirror_of
from dirsync.model import Reading
from dirsync.state.records import MemberView, RunRecord


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, or None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def source_view(organization: str, reading: Reading) -> dict[str, Any]:
    """What ``dirsync test`` shows: the users and groups the source yields after filters."""
    assert reading.snapshot is not None, "dirsync test always reads in full"
    mirror, mirror_warnings = mirror_of(reading.snapshot)
    desired = desired_organization(mirror, linked_ids=frozenset())
    email_by_id = {u.external_id: u.email for u in desired.users}
    return {
        "organization": organization,
        "users": [
            {"email": u.email, "external_id": u.external_id, "name": u.name, "disabled": u.disabled}
            for u in desired.users
        ],
        "groups": [
            {
                "name": g.name,
                "external_id": g.external_id,
                "members": sorted(email_by_id[i] for i in g.member_external_ids),
            }
            for g in desired.groups
        ],
        "warnings": list(reading.warnings + mirror_warnings + desired.warnings),
    }


def status_rows(
    organizations: Iterable[OrganizationSettings],
    runs: Mapping[str, RunRecord],
    next_runs: Mapping[str, datetime | None] | None = None,
) -> list[dict[str, Any]]:
    """One row per organization: its last run, and when the next one is due.

    ``next_runs`` is the running daemon's schedule (``schedule.read_schedule``) or the one
    nodes share in the store; without one, the next run is the last run plus the interval, or
    the next cron time after it.
    """
    rows: list[dict[str, Any]] = []
    for org in organizations:
        run = runs.get(org.name)
        scheduled = (next_runs or {}).get(org.name)
        if run is None:
            rows.append(
                {
                    "organization": org.name,
                    "last_started": None,
                    "last_finished": None,
                    "outcome": None,
                    "counts": {},
                    "error": None,
                    "node": None,
                    "next_run": iso(scheduled),
                }
            )
            continue
        rows.append(
            {
                "organization": org.name,
                "last_started": iso(run.started_at),
                "last_finished": iso(run.finished_at),
                "outcome": str(run.outcome),
                "counts": dict(run.counts),
                "error": run.error,
                "node": run.node,
                "next_run": iso(
                    scheduled or next_after(org, _aware(run.finished_at or run.started_at))
                ),
            }
        )
    return rows


def report_rows(
    members: Iterable[MemberView], collections: Mapping[str, Mapping[str, str]]
) -> list[dict[str, Any]]:
    """``report``: each member with its groups and the collections they reach (the strongest
    permission when several groups lead to the same collection)."""
    return [
        {
            **m.to_json(),
            "collections": [
                {"name": name, "permission": permission}
                for name, permission in sorted(collections.get(m.email, {}).items())
            ],
        }
        for m in members
    ]


def _aware(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
