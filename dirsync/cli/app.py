"""The ``dirsync`` command line; the one place that maps exceptions to exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url

from dirsync import logs
from dirsync.cli import views
from dirsync.cli.json_stream import write_json
from dirsync.cli.process_exit import exit_code_of, finish
from dirsync.config.settings import Config, OrganizationSettings, find_config_path, load_config
from dirsync.connectors.registry import create_connector
from dirsync.daemon.schedule import overdue_problem, read_schedule
from dirsync.errors import DirsyncError, NotFound, UsageError
from dirsync.organization import MemberStatus
from dirsync.plan import Outcome
from dirsync.state.store import Store
from dirsync.sync.gcpause import paused_gc
from dirsync.sync.locks import LockBusy, runtime_directory, take_locks
from dirsync.sync.run import RunResult, run_organization, utcnow

F = TypeVar("F", bound=Callable[..., Any])
log = logs.get_logger("dirsync.cli")

#: the exit code of each outcome; several organizations → the highest
_OUTCOME_EXIT = {Outcome.FAILED: 1, Outcome.REFUSED: 3}


def _emit_json(data: Any) -> None:
    # indented for a person at a terminal; compact for a pipe: the C encoder, several times
    # faster on a 100,000-entry plan (json's indenting encoder is pure Python)
    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(data, indent=indent, sort_keys=False, default=str))


def handle_errors(func: F) -> F:
    """Turn dirsync errors into one-line messages and the contract's exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DirsyncError as exc:
            click.echo(f"dirsync: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # a bug: say so in one line; the traceback goes to the log
            log.exception("cli.internal_error")
            click.echo(f"dirsync: internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


class Context:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            logs.configure(self._config.logging.level, self._config.logging.format)
            for warning in self._config.file_warnings:
                log.warning("config.secrets_readable", message=warning)
        return self._config

    def organization(self, name: str | None) -> OrganizationSettings:
        if name is not None:
            return self.config.get(name)
        orgs = self.config.organization
        if len(orgs) == 1:
            return orgs[0]
        raise UsageError("name an organization with --org (the config has several or none)")

    @contextmanager
    def store(self, *, readonly: bool) -> Iterator[Store]:
        store = Store.open(self.config.store.url, readonly=readonly)
        try:
            yield store
        finally:
            store.close()


pass_context = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default: $DIRSYNC_CONFIG, /etc/dirsync/config.toml, ./dirsync.toml).",
)
@click.version_option(package_name="dirsync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Keep password-manager organizations in step with LDAP, AD and Azure AD directories."""
    logs.configure()
    ctx.obj = Context(config_path)


@cli.command()
@click.option(
    "--org", "orgs", multiple=True, help="Organization to sync (repeatable; all by default)."
)
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
            locked, skipped = take_locks(directory, (o.name for o in selected), held, wait=wait)
            selected = tuple(o for o in selected if o.name in locked)
            for busy in skipped:
                click.echo(f"dirsync: {busy}", err=True)
        store = held.enter_context(ctx.store(readonly=dry_run)) if selected else None
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
                    )
                )
    with paused_gc():  # see _print_results
        _print_results(results, skipped, as_json=as_json)
    code = max((_OUTCOME_EXIT.get(r.outcome, 0) for r in results), default=0)
    sys.exit(max(code, *(b.exit_code for b in skipped)) if skipped else code)


def _print_results(results: list[RunResult], skipped: list[LockBusy], *, as_json: bool) -> None:
    """The runs' results on stdout. Callers pause the cyclic collector: the output's many
    short-lived dicts would set off the full collection that the runs (which pause it) left
    due, and it walks everything still alive, a first sync's 100,000-entry plan included
    (~0.3 s at 100k). The process ends right after, without one (``process_exit``)."""
    if as_json:
        if sys.stdout.isatty():
            _emit_json([r.to_json() for r in results] + [b.to_json() for b in skipped])
        else:  # the same bytes as _emit_json, without the whole document in memory
            write_json(
                [r.to_json(plan_as_is=True) for r in results] + [b.to_json() for b in skipped],
                sys.stdout.write,
            )
            sys.stdout.write("\n")
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
@click.option("--org", help="Organization to test (needed when the config has several).")
@json_option
@pass_context
@handle_errors
def test_command(ctx: Context, org: str | None, as_json: bool) -> None:
    """Connect, bind and show the users and groups the source yields after filters."""
    settings = ctx.organization(org)
    connector = create_connector(settings.source, organization=settings.name)
    try:
        reading = connector.read(None)
    finally:
        connector.close()
    view = views.source_view(settings.name, reading)
    if as_json:
        _emit_json(view)
        return
    from dirsync.cli import render  # rich: imported only to print tables

    out = render.console()
    out.print(f"[bold]{settings.name}[/bold]: connected, {reading.entries_read} entries read")
    for part in render.source_report(view):
        out.print(part)


@cli.command()
@click.option("--org", "orgs", multiple=True, help="Organization (repeatable; all by default).")
@click.option(
    "--check",
    is_flag=True,
    help="Monitoring: exit 1 when an organization has not succeeded within --intervals.",
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
    from dirsync.cli import (
        overview,
        render,  # rich: imported only where tables are printed
    )

    selected = ctx.config.select(orgs)
    now = utcnow()
    with ctx.store(readonly=True) as store:
        runs = store.last_runs()
        next_runs = read_schedule(runtime_directory(ctx.config.store.url))
        rows = views.status_rows(selected, runs, next_runs)
        summaries = store.summaries(overview.stale_cutoffs(selected, now))
        successes = store.last_successes() if check else {}
    rows = overview.extend(rows, selected, runs, summaries, now)
    overdue = [
        problem
        for org in selected
        if (problem := overdue_problem(org, successes.get(org.name), now, intervals))
    ]
    if as_json:
        _emit_json(rows)
    elif check:
        for problem in overdue:
            click.echo(f"CRITICAL: {problem}")
        if not overdue:
            click.echo(f"OK: {len(selected)} organization(s) synced within {intervals} intervals")
    else:
        render.console().print(overview.overview_table(rows))
    if check and overdue:
        sys.exit(1)


def _show_store_listing(
    ctx: Context,
    org: str,
    as_json: bool,
    fetch: Callable[[Store, str], list[Any]],
    table: str,
) -> None:
    """Print one organization's rows from the store, as JSON or a table."""
    name = ctx.config.get(org).name
    with ctx.store(readonly=True) as store:
        found = fetch(store, name)
    if as_json:
        _emit_json([row.to_json() for row in found])
    else:
        from dirsync.cli import render  # rich: imported only to print tables

        render.console().print(getattr(render, table)(found))


@cli.command()
@click.option("--org", required=True, help="Organization.")
@click.option(
    "--status", type=click.Choice([str(s) for s in MemberStatus]), help="Only members in it."
)
@json_option
@pass_context
@handle_errors
def members(ctx: Context, org: str, status: str | None, as_json: bool) -> None:
    """The organization's members in the embedded store."""

    def fetch(store: Store, name: str) -> list[Any]:
        return [m for m in store.members(name) if status is None or m.status == status]

    _show_store_listing(ctx, org, as_json, fetch, "members_table")


@cli.command()
@click.option("--org", required=True, help="Organization.")
@json_option
@pass_context
@handle_errors
def groups(ctx: Context, org: str, as_json: bool) -> None:
    """The organization's groups in the embedded store, with their members."""
    _show_store_listing(ctx, org, as_json, Store.groups, "groups_table")


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
        problems = getattr(exc, "problems", [str(exc)])
        if as_json:
            _emit_json({"config": path, "valid": False, "problems": problems})
        else:
            click.echo(f"{path}: {len(problems)} problem(s)", err=True)
            for problem in problems:
                click.echo(f"  {problem}", err=True)
        sys.exit(exc.exit_code)
    names = [o.name for o in loaded.organization]
    warnings = loaded.file_warnings
    if as_json:
        _emit_json(
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


# The administrator commands live in their own module, which adds them to ``cli`` when it is
# imported; it needs the names above (Context, handle_errors...), hence the import down here.
from dirsync.cli import admin as cli_admin  # noqa: E402, F401


@cli.command()
@pass_context
@handle_errors
def run(ctx: Context) -> None:
    """The daemon: sync every organization on its schedule until SIGTERM; SIGHUP reloads."""
    from dirsync.daemon import process as service  # the scheduler's imports, only for the daemon

    sys.exit(service.serve(ctx.config_path))


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
    shown = make_url(url).render_as_string(hide_password=True)
    click.echo(f"{shown}: the schema is up to date")


def main() -> None:
    try:
        cli.main(prog_name="dirsync", standalone_mode=True)
    except NotFound as exc:  # raised outside a command wrapper (e.g. while parsing)
        click.echo(f"dirsync: {exc}", err=True)
        code = exc.exit_code
    except SystemExit as exc:  # click ends every command this way
        code = exit_code_of(exc)
    else:
        code = 0
    finish(code)
