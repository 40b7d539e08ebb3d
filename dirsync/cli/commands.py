"""The commands that read a directory or run the daemon: ``sync``, ``test``, ``run``,
``config check`` and ``db upgrade``. They add themselves to the ``dirsync`` group of ``app``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
import structlog

from dirsync.cli import views
from dirsync.cli.admin import os_user
from dirsync.cli.app import (
    Context,
    cli,
    emit_json,
    handle_errors,
    json_option,
    orgs_option,
    pass_context,
)
from dirsync.cli.json_stream import pieces, write_json
from dirsync.config.resolve import secret_problems, split_for_check
from dirsync.config.settings import OrganizationSettings, find_config_path, load_config
from dirsync.connectors.cycle import one_cycle
from dirsync.connectors.registry import create_connector
from dirsync.errors import DirsyncError, UsageError
from dirsync.plan import Outcome
from dirsync.state.engine import display_url
from dirsync.sync.approvals import approve_push
from dirsync.sync.gcpause import paused_gc
from dirsync.sync.locks import LockBusy, runtime_directory
from dirsync.sync.result import RunResult
from dirsync.sync.retention import prune_store
from dirsync.sync.run import run_organization, utcnow
from dirsync.sync.store_lock import take_locks

log = structlog.get_logger("dirsync.cli.commands")

#: the exit code of each outcome; several organizations → the highest
_OUTCOME_EXIT = {Outcome.FAILED: 1, Outcome.REFUSED: 3}


@cli.command()
@orgs_option("Organization to sync (repeatable; all by default).")
@click.option("--dry-run", is_flag=True, help="Read and plan, print the plan, write nothing.")
@click.option("--full", is_flag=True, help="Ignore delta cursors and read everything.")
@click.option(
    "--approve",
    metavar="HASH",
    help="Apply a plan a safety guard refused, once, if this run's plan still has this hash.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for a sync of the same organization that is running (default: skip it, exit 4).",
)
@json_option
@pass_context
@handle_errors
def sync(
    ctx: Context,
    orgs: tuple[str, ...],
    dry_run: bool,
    full: bool,
    wait: bool,
    approve: str | None,
    as_json: bool,
) -> None:
    """Sync the named organizations (all by default) once."""
    selected = ctx.config.select(orgs)
    if approve is not None and len(selected) != 1:
        raise UsageError("--approve applies to one organization: name it with --org")
    if approve is not None and selected[0].rules().pushed:
        _approve_push(ctx, selected[0].name, approve, as_json=as_json)
        return
    ctx.resolve_secrets(selected)
    # every connector first: a missing one is a config error (exit 2) before anything runs
    connectors = {org.name: create_connector(org.source, organization=org.name) for org in selected}
    results: list[RunResult] = []
    skipped: list[LockBusy] = []
    with ExitStack() as held:
        for connector in connectors.values():
            held.callback(connector.close)
        # one run per organization at a time, the daemon's included: the locks come first,
        # before the store is opened (which waits for another process's write transaction)
        # (a dry run writes nothing, not even a lock file, and takes no lock)
        if not dry_run:
            directory = runtime_directory(ctx.config.store.url)
            locked, skipped = take_locks(
                ctx.config.store.url,
                directory,
                (o.name for o in selected),
                held,
                takeover=ctx.config.daemon.takeover,
                wait=wait,
            )
            selected = tuple(o for o in selected if o.name in locked)
            for busy in skipped:
                click.echo(f"dirsync: {busy}", err=True)
        store = held.enter_context(ctx.store(readonly=dry_run)) if selected else None
        held.enter_context(one_cycle())  # the organizations share what a server said once
        for org in selected:
            assert store is not None
            with _progress(enabled=not as_json, label=org.name) as progress:
                results.append(
                    run_organization(
                        org.name,
                        org.rules(),
                        connectors[org.name],
                        store,
                        dry_run=dry_run,
                        full=full,
                        progress=progress,
                        approve=approve,
                        node=ctx.config.daemon.node,
                    )
                )
        if store is not None and not dry_run:
            prune_store(store, ctx.config.store, utcnow())
    with paused_gc():  # see _print_results
        _print_results(results, skipped, as_json=as_json)
    code = max((_OUTCOME_EXIT.get(r.outcome, 0) for r in results), default=0)
    sys.exit(max(code, *(b.exit_code for b in skipped)) if skipped else code)


def _approve_push(ctx: Context, organization: str, digest: str, *, as_json: bool) -> None:
    """``--approve`` for a pushed organization: nothing to read, so the approval is recorded
    for the identity provider's retry of the refused request (``sync.approvals``)."""
    actor = f"admin:{os_user()}"
    now = datetime.now(UTC)
    with ctx.store(readonly=False) as store:
        refused = approve_push(store, organization, digest, actor=actor, now=now)
    log.info("sync.push_approved", organization=organization, plan=digest, actor=actor)
    if as_json:
        emit_json(
            {
                "organization": organization,
                "approved": digest,
                "refused_at": refused.isoformat(),
                "approved_at": now.isoformat(),
                "actor": actor,
            }
        )
        return
    click.echo(
        f"plan {digest} of {organization} approved: the identity provider's next retry of the "
        f"refused request applies it, and the removal window of {organization} restarts now"
    )


def _print_results(results: list[RunResult], skipped: list[LockBusy], *, as_json: bool) -> None:
    """The runs' results on stdout. Callers pause the cyclic collector: the output's many
    short-lived dicts would set off the full collection that the runs (which pause it) left
    due, and it walks everything still alive, a first sync's 100,000-entry plan included
    (~0.3 s at 100k). The process ends right after, without one (``process_exit``)."""
    if as_json:
        if sys.stdout.isatty():
            emit_json([r.to_json() for r in results] + [b.to_json() for b in skipped])
        else:  # the same bytes as emit_json, without the whole document in memory
            with pieces(sys.stdout.write) as write:
                write_json(
                    [r.to_json(plan_as_is=True) for r in results] + [b.to_json() for b in skipped],
                    write,
                )
                write("\n")
            sys.stdout.flush()
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        out = render.console()
        for result in results:
            for part in render.run_report(result):
                out.print(part)


@contextmanager
def _progress(*, enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr while reading a large directory, only on a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed} entries read"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.update(task, completed=n)


@cli.command("test")
@orgs_option("Organization to test (repeatable; all by default).")
@json_option
@pass_context
@handle_errors
def test_command(ctx: Context, orgs: tuple[str, ...], as_json: bool) -> None:
    """Connect, bind and show the users and groups the source yields after filters.

    With several organizations (all by default), each is tested in turn, e.g. after a CA
    rotation: one line each (with --json, a list of the documents, each with its "error"),
    and the exit code is the highest of theirs."""
    selected = ctx.config.select(orgs)
    if len(selected) == 1:
        _test_one(ctx, selected[0], as_json=as_json)
        return
    views_found: list[dict[str, Any]] = []
    code = 0
    for settings in selected:
        try:
            ctx.resolve_secrets([settings])
            view = {**_read_source(settings), "error": None}
        except DirsyncError as exc:
            code = max(code, exc.exit_code)
            view = {
                "organization": settings.name,
                "users": [],
                "groups": [],
                "warnings": [],
                "error": str(exc),
            }
        views_found.append(view)
        if not as_json:
            click.echo(_test_line(view))
    if as_json:
        emit_json(views_found)
    sys.exit(code)


def _read_source(settings: OrganizationSettings) -> dict[str, Any]:
    connector = create_connector(settings.source, organization=settings.name)
    try:
        reading = connector.read(None)
    finally:
        connector.close()
    return {**views.source_view(settings.name, reading), "entries_read": reading.entries_read}


def _test_line(view: dict[str, Any]) -> str:
    if view["error"] is not None:
        return f"{view['organization']}: FAILED: {view['error']}"
    warnings = f", {len(view['warnings'])} warning(s)" if view["warnings"] else ""
    return (
        f"{view['organization']}: ok, {len(view['users'])} users, "
        f"{len(view['groups'])} groups{warnings}"
    )


def _test_one(ctx: Context, settings: OrganizationSettings, *, as_json: bool) -> None:
    ctx.resolve_secrets([settings])
    view = _read_source(settings)
    entries_read = view.pop("entries_read")
    if as_json:
        emit_json(view)
        return
    from dirsync.cli import render  # rich: imported only to print tables

    out = render.console()
    out.print(f"[bold]{settings.name}[/bold]: connected, {entries_read} entries read")
    for part in render.source_report(view):
        out.print(part)


@cli.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@json_option
@click.pass_obj
def config_check(ctx: Context, as_json: bool) -> None:
    """Validate the config file and say exactly what is wrong and where."""
    path = str(find_config_path(ctx.config_path))
    try:
        loaded = load_config(path)
    except DirsyncError as exc:
        _invalid(path, getattr(exc, "problems", [str(exc)]), exc.exit_code, as_json=as_json)
    names = [o.name for o in loaded.organization]
    problems, secret_warnings = split_for_check(secret_problems(loaded))
    if problems:
        _invalid(path, problems, 2, as_json=as_json)
    warnings = loaded.file_warnings + secret_warnings
    if as_json:
        emit_json(
            {
                "config": path,
                "valid": True,
                "organizations": names,
                "problems": [],
                "warnings": warnings,
            }
        )
    else:
        click.echo(f"{path}: valid, {len(names)} organization(s): {', '.join(names) or 'none'}")
        for warning in warnings:
            click.echo(f"  warning: {warning}", err=True)


def _invalid(path: str, problems: list[str], code: int, *, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"config": path, "valid": False, "problems": problems})
    else:
        click.echo(f"{path}: {len(problems)} problem(s)", err=True)
        for problem in problems:
            click.echo(f"  {problem}", err=True)
    sys.exit(code)


@cli.command()
@pass_context
@handle_errors
def run(ctx: Context) -> None:
    """The daemon: sync every organization on its schedule until SIGTERM; SIGHUP reloads."""
    from dirsync.daemon import process  # the scheduler's imports, only for the daemon

    sys.exit(process.serve(ctx.config_path))


@cli.group()
def db() -> None:
    """The organization store."""


@db.command("upgrade")
@pass_context
@handle_errors
def db_upgrade(ctx: Context) -> None:
    """Create the store or bring its schema to this version (the daemon also does on start)."""
    url = ctx.config.store.url
    with ctx.store(readonly=False):
        pass
    click.echo(f"{display_url(url)}: the schema is up to date")
