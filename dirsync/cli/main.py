"""The whole command line: the ``dirsync`` group with every command module added, and
``main``, which runs it and ends the process with the contract's exit code."""

from __future__ import annotations

import click

# first: structlog loads without rich this way (see ``logs``)
from dirsync import logs  # noqa: F401

# each module adds its commands to ``cli`` when imported
from dirsync.cli import admin, commands, service, store_commands  # noqa: F401
from dirsync.cli.app import cli
from dirsync.cli.process_exit import exit_code_of, finish
from dirsync.errors import NotFound


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
