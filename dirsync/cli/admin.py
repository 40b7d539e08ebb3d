"""Administrator commands on the store, outside the sync: member lifecycle, events,
collections and the client report. They add themselves to the ``dirsync`` group of ``app``."""

from __future__ import annotations

import csv
import getpass
import io
import os
from datetime import UTC, datetime
from functools import partial
from typing import Any

import click
import structlog

from dirsync.cli import views
from dirsync.cli.app import (
    Context,
    cli,
    emit_json,
    handle_errors,
    json_option,
    org_option,
    pass_context,
)
from dirsync.errors import NotFound, UsageError
from dirsync.lifecycle import AdminAction, decide
from dirsync.organization import Role

log = structlog.get_logger("dirsync.cli.admin")


def os_user() -> str:
    """The administrator as the operating system knows them (``sudo`` keeps the real one)."""
    if sudo := os.environ.get("SUDO_USER"):
        return sudo
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (e.g. a bare container)
        return str(os.getuid())


@click.group()
def member() -> None:
    """Change one member as an administrator: accept, confirm, revoke, restore, set-role, remove.

    Each change is checked against the lifecycle rules (exit 2 and the reason when refused),
    and written in one transaction with one audit event, actor admin:<os user>.
    """


def _change(
    ctx: Context, org: str | None, email: str, action: AdminAction, role: Role | None, as_json: bool
) -> None:
    settings = ctx.organization(org)
    with ctx.store(readonly=True) as store:  # an unknown organization creates no store
        if settings.name not in store.organizations():
            raise NotFound(f"organization {settings.name!r} has no members in the store yet")
    actor = f"admin:{os_user()}"
    decider = partial(decide, email=email, action=action, role=role, seats=settings.seats)
    with ctx.store(readonly=False) as store:
        change = store.admin_change(settings.name, decider, actor=actor, now=datetime.now(UTC))
    shown_email = change.before.email if change else email.strip().lower()
    if change is not None:
        log.info(
            "admin.member_changed", organization=settings.name, action=str(action), actor=actor
        )
    if as_json:
        emit_json(
            {
                "organization": settings.name,
                "email": shown_email,
                "action": str(action),
                "changed": change is not None,
                "before": change.before_json() if change else None,
                "after": change.after_json() if change else None,
            }
        )
    elif change is None:
        click.echo(f"{settings.name}: {shown_email} already has that role; nothing changed")
    elif change.after is None:
        click.echo(f"{settings.name}: {shown_email} removed (was {change.before.status})")
    else:
        before, after = change.before_json(), change.after_json() or {}
        moved = [f"{k} {before.get(k)} -> {v}" for k, v in after.items() if before.get(k) != v]
        click.echo(f"{settings.name}: {shown_email}: {', '.join(moved)}")


def _lifecycle_command(action: AdminAction, help_text: str) -> None:
    @member.command(str(action), help=help_text)
    @org_option
    @click.argument("email")
    @json_option
    @pass_context
    @handle_errors
    def command(ctx: Context, org: str | None, email: str, as_json: bool) -> None:
        _change(ctx, org, email, action, None, as_json)


_lifecycle_command(AdminAction.ACCEPT, "An invited member accepted the invitation.")
_lifecycle_command(AdminAction.CONFIRM, "Confirm an accepted member (only accepted ones).")
_lifecycle_command(AdminAction.REVOKE, "Revoke a member; restore brings back its status.")
_lifecycle_command(AdminAction.RESTORE, "Restore a revoked member to the status it had.")
_lifecycle_command(AdminAction.REMOVE, "Remove a member from the organization.")


@member.command("set-role")
@org_option
@click.argument("email")
@click.argument("role", type=click.Choice([str(r) for r in Role]))
@json_option
@pass_context
@handle_errors
def set_role(ctx: Context, org: str | None, email: str, role: str, as_json: bool) -> None:
    """Give a member the role owner, admin, manager or user."""
    _change(ctx, org, email, AdminAction.SET_ROLE, Role(role), as_json)


def parse_since(value: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not an ISO 8601 time, e.g. 2026-11-25 or 2026-11-25T08:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.command()
@org_option
@click.option("--since", help="Only events at or after this ISO 8601 time (UTC unless given).")
@json_option
@pass_context
@handle_errors
def events(ctx: Context, org: str | None, since: str | None, as_json: bool) -> None:
    """The audit trail: every change by a sync run or an administrator, oldest first."""
    settings = ctx.organization(org)
    start = parse_since(since)
    with ctx.store(readonly=True) as store:
        found = store.events(settings.name, since=start)
    if as_json:
        emit_json([e.to_json() for e in found])
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        render.console().print(render.events_table(found))


@click.command()
@org_option
@json_option
@pass_context
@handle_errors
def collections(ctx: Context, org: str | None, as_json: bool) -> None:
    """Collections with their groups, permissions and the members who reach them."""
    settings = ctx.organization(org)
    with ctx.store(readonly=True) as store:
        found = store.collections(settings.name)
    if as_json:
        emit_json([c.to_json() for c in found])
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        render.console().print(render.collections_table(found))


@click.command()
@org_option
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@json_option
@pass_context
@handle_errors
def report(ctx: Context, org: str | None, fmt: str, as_json: bool) -> None:
    """Export the members with their groups and collections, for client reporting.

    --json is --format json, as every read command takes it."""
    if as_json:
        fmt = "json"
    settings = ctx.organization(org)
    with ctx.store(readonly=True) as store:
        rows = views.report_rows(
            store.members(settings.name), store.member_collections(settings.name)
        )
    if fmt == "json":
        emit_json(
            {
                "organization": settings.name,
                "generated_at": views.iso(datetime.now(UTC)),
                "members": rows,
            }
        )
        return
    click.echo(report_csv(rows), nl=False)


REPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "role",
    "external_id",
    "invited_at",
    "groups",
    "collections",
)


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def report_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        cells = dict(row)
        cells["groups"] = "; ".join(row["groups"])
        cells["collections"] = "; ".join(
            f"{c['name']} ({c['permission']})" for c in row["collections"]
        )
        writer.writerow(_cell(cells[c]) for c in REPORT_COLUMNS)
    return out.getvalue()


for _command in (member, events, collections, report):
    cli.add_command(_command)
