"""The ``dirsync`` group and what every command shares: the context (config, store), the
JSON writer, and ``handle_errors``, the one place that maps exceptions to exit codes.

The commands live in ``commands``, ``store_commands`` and ``admin``; ``main`` puts them
together."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from dirsync import logs, version
from dirsync.config.file_safety import ALLOW_UNSAFE_ENV, unsafe_files_allowed
from dirsync.config.resolve import resolve_secrets
from dirsync.config.settings import Config, OrganizationSettings, load_config
from dirsync.errors import DirsyncError, UsageError
from dirsync.state.engine import store_file
from dirsync.state.files import exposure_warning
from dirsync.state.sql_store import SqlStore

F = TypeVar("F", bound=Callable[..., Any])
log = logs.get_logger("dirsync.cli.app")


def emit_json(data: Any) -> None:
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

    def resolve_secrets(self, organizations: Iterable[OrganizationSettings]) -> None:
        """Read the secrets of these organizations (only theirs); exit 2 naming any missing."""
        resolve_secrets(self.config, [org.name for org in organizations])

    def organization(self, name: str | None) -> OrganizationSettings:
        if name is not None:
            return self.config.get(name)
        orgs = self.config.organization
        if len(orgs) == 1:
            return orgs[0]
        raise UsageError("name an organization with --org (the config has several or none)")

    @contextmanager
    def store(self, *, readonly: bool) -> Iterator[SqlStore]:
        self.warn_about_exposed_store()
        store = SqlStore.open(
            self.config.store.url, readonly=readonly, stall_timeout=self.config.daemon.takeover
        )
        try:
            yield store
        finally:
            store.close()

    def warn_about_exposed_store(self) -> None:
        """A store others may read gets a warning naming the fix (log event and stderr)."""
        path = store_file(self.config.store.url)
        if path is not None and (warning := exposure_warning(path)) is not None:
            log.warning("store.not_owner_only", path=str(path), message=warning)
            click.echo(f"dirsync: warning: {warning}", err=True)


pass_context = click.make_pass_decorator(Context)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def complete_organizations(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``--org``: the organizations of the config the command line names
    (``--config``, else the usual places); none when it cannot be read."""
    path = ctx.find_root().params.get("config_path")
    try:
        config = load_config(path)  # reads no secret
    except DirsyncError:
        return []
    return [CompletionItem(o.name) for o in config.organization if o.name.startswith(incomplete)]


#: ``--org NAME`` for a command on one organization (the only one may go unnamed)
org_option = click.option(
    "--org",
    help="Organization (needed when the config has several).",
    shell_complete=complete_organizations,
)


def orgs_option(help_text: str) -> Callable[[F], F]:
    """``--org NAME``, repeatable, for a command on several organizations."""
    return click.option(
        "--org", "orgs", multiple=True, help=help_text, shell_complete=complete_organizations
    )


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # asked for only here: in a checkout it runs git, which no other command should wait for
    if value and not ctx.resilient_parsing:
        click.echo(f"dirsync {version.current()}")
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default: $DIRSYNC_CONFIG, /etc/dirsync/config.toml, ./dirsync.toml).",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Keep password-manager organizations in step with LDAP, AD and Azure AD directories."""
    logs.configure()
    if unsafe_files_allowed():
        log.warning("config.unsafe_files_allowed", variable=ALLOW_UNSAFE_ENV)
    ctx.obj = Context(config_path)
