"""The ``dirsync`` command line; the one place that maps exceptions to exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import structlog

from dirsync import logs, views
from dirsync.config import Config, OrganizationSettings, find_config_path, load_config
from dirsync.connectors.registry import create_connector
from dirsync.errors import DirsyncError, NotFound, UsageError
from dirsync.plan import Outcome
from dirsync.state.sql import Store
from dirsync.sync import RunResult, run_organization

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger("dirsync.cli")

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
@json_option
@pass_context
@handle_errors
def sync(ctx: Context, orgs: tuple[str, ...], dry_run: bool, full: bool, as_json: bool) -> None:
    """Sync the named organizations (all by default) once."""
    selected = ctx.config.select(orgs)
    # every connector first: a missing one is a config error (exit 2) before anything runs
    connectors = {org.name: create_connector(org.source, organization=org.name) for org in selected}
    results: list[RunResult] = []
    with ctx.store(readonly=dry_run) as store:
        for org in selected:
            connector = connectors[org.name]
            try:
                with _progress(enabled=not as_json, label=org.name) as progress:
                    results.append(
                        run_organization(
                            org.name,
                            org.rules(),
                            connector,
                            store,
                            dry_run=dry_run,
                            full=full,
                            progress=progress,
                        )
                    )
            finally:
                connector.close()
    if as_json:
        _emit_json([r.to_json() for r in results])
    else:
        from dirsync import render  # rich: imported only to print tables

        out = render.console()
        for result in results:
            for part in render.run_report(result):
                out.print(part)
    code = max((_OUTCOME_EXIT.get(r.outcome, 0) for r in results), default=0)
    sys.exit(code)


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
    from dirsync import render  # rich: imported only to print tables

    out = render.console()
    out.print(f"[bold]{settings.name}[/bold]: connected, {reading.entries_read} entries read")
    for part in render.source_report(view):
        out.print(part)


@cli.command()
@click.option("--org", "orgs", multiple=True, help="Organization (repeatable; all by default).")
@json_option
@pass_context
@handle_errors
def status(ctx: Context, orgs: tuple[str, ...], as_json: bool) -> None:
    """Per organization: the last run, its outcome and counts, and the next run."""
    selected = ctx.config.select(orgs)
    with ctx.store(readonly=True) as store:
        rows = views.status_rows(selected, store.last_runs())
    if as_json:
        _emit_json(rows)
    else:
        from dirsync import render  # rich: imported only to print tables

        render.console().print(render.status_table(rows))


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
        from dirsync import render  # rich: imported only to print tables

        render.console().print(getattr(render, table)(found))


@cli.command()
@click.option("--org", required=True, help="Organization.")
@json_option
@pass_context
@handle_errors
def members(ctx: Context, org: str, as_json: bool) -> None:
    """The organization's members in the embedded store."""
    _show_store_listing(ctx, org, as_json, Store.members, "members_table")


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
    if as_json:
        _emit_json({"config": path, "valid": True, "organizations": names, "problems": []})
    else:
        click.echo(f"{path}: valid, {len(names)} organization(s): {', '.join(names) or 'none'}")


def main() -> None:
    try:
        cli.main(prog_name="dirsync", standalone_mode=True)
    except NotFound as exc:  # raised outside a command wrapper (e.g. while parsing)
        click.echo(f"dirsync: {exc}", err=True)
        sys.exit(exc.exit_code)
