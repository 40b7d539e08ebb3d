"""The commands that read the store: ``status`` (the MSP overview), ``members`` and ``groups``.
They add themselves to the ``dirsync`` group of ``app``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dirsync.cli import views
from dirsync.cli.app import (
    Context,
    cli,
    emit_json,
    handle_errors,
    json_option,
    org_option,
    orgs_option,
    pass_context,
)
from dirsync.daemon.schedule import read_schedule
from dirsync.errors import DirsyncError
from dirsync.organization import MemberStatus
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import runtime_directory
from dirsync.sync.run import utcnow
from dirsync.sync.store_lock import is_postgresql

if TYPE_CHECKING:
    from dirsync.cli.check import CheckResult


@cli.command()
@orgs_option("Organization (repeatable; all by default).")
@click.option(
    "--check",
    is_flag=True,
    help="Monitoring plugin: OK/WARNING/CRITICAL/UNKNOWN, perfdata, exit 0/1/2/3.",
)
@click.option(
    "--intervals",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --check: how many of its intervals an organization may go without a success.",
)
@json_option
@pass_context
@handle_errors
def status(ctx: Context, orgs: tuple[str, ...], check: bool, intervals: int, as_json: bool) -> None:
    """Per organization: the last run, its outcome and counts, and the next run.

    Without --org, one overview of every client organization: seats, members by status,
    pending invitations, the last sync's outcome, age and warnings.
    """
    from dirsync.cli import check as plugin

    if not check:
        rows, _verdict = _status(ctx, orgs, None)
        if as_json:
            emit_json(rows)
        else:
            from dirsync.cli import overview, render  # rich: imported only to print tables

            render.console().print(overview.overview_table(rows))
        return
    try:
        rows, verdict = _status(ctx, orgs, intervals)
    except DirsyncError as exc:  # the config or the store cannot be read
        verdict = plugin.unknown(str(exc))
        rows = []
    assert verdict is not None
    if as_json:
        emit_json(rows)
    else:
        click.echo(verdict.line)
    sys.exit(verdict.code)


def _status(
    ctx: Context, orgs: tuple[str, ...], intervals: int | None
) -> tuple[list[dict[str, Any]], CheckResult | None]:
    """The status rows and, given ``intervals``, the monitoring plugin's verdict."""
    from dirsync.cli import check as plugin
    from dirsync.cli import overview

    selected = ctx.config.select(orgs)
    now = utcnow()
    with ctx.store(readonly=True) as store:
        runs = store.last_runs()
        next_runs = read_schedule(runtime_directory(ctx.config.store.url))
        if next_runs is None and is_postgresql(ctx.config.store.url):
            next_runs = dict(store.due_times())  # no daemon here: the shared schedule
        rows = views.status_rows(selected, runs, next_runs)
        summaries = store.summaries(overview.stale_cutoffs(selected, now))
        successes = store.last_successes() if intervals is not None else {}
    rows = overview.extend(rows, selected, runs, summaries, now)
    if intervals is None:
        return rows, None
    verdict = plugin.check(
        selected,
        latest=runs,
        successes=successes,
        seats_used={row["organization"]: row["seats"]["used"] for row in rows},
        now=now,
        intervals=intervals,
    )
    return rows, verdict


def _show_store_listing(
    ctx: Context,
    org: str | None,
    as_json: bool,
    fetch: Callable[[SqlStore, str], list[Any]],
    table: str,
) -> None:
    """Print one organization's rows from the store, as JSON or a table."""
    name = ctx.organization(org).name
    with ctx.store(readonly=True) as store:
        found = fetch(store, name)
    if as_json:
        emit_json([row.to_json() for row in found])
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        render.console().print(getattr(render, table)(found))


@cli.command()
@org_option
@click.option(
    "--status", type=click.Choice([str(s) for s in MemberStatus]), help="Only members in it."
)
@json_option
@pass_context
@handle_errors
def members(ctx: Context, org: str | None, status: str | None, as_json: bool) -> None:
    """The organization's members in the embedded store."""

    def fetch(store: SqlStore, name: str) -> list[Any]:
        return [m for m in store.members(name) if status is None or m.status == status]

    _show_store_listing(ctx, org, as_json, fetch, "members_table")


@cli.command()
@org_option
@json_option
@pass_context
@handle_errors
def groups(ctx: Context, org: str | None, as_json: bool) -> None:
    """The organization's groups in the embedded store, with their members."""
    _show_store_listing(ctx, org, as_json, SqlStore.groups, "groups_table")


@cli.command()
@orgs_option("Organization (repeatable; all by default).")
@click.option(
    "--since", help="Only runs started at or after this ISO 8601 time (UTC unless given)."
)
@json_option
@pass_context
@handle_errors
def runs(ctx: Context, orgs: tuple[str, ...], since: str | None, as_json: bool) -> None:
    """The run history, oldest first: which node ran what, when, and how it ended."""
    from dirsync.cli.admin import parse_since

    names = [ctx.config.get(name).name for name in orgs] or None
    start = parse_since(since)
    with ctx.store(readonly=True) as store:
        found = store.runs(names, since=start)
    if as_json:
        emit_json([run.to_json() for run in found])
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        render.console().print(render.runs_table(found))
