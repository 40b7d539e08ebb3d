"""The commands that look after the running service: ``reload`` and ``db backup``.

``dirsync reload`` is what systemd's ``ExecReload=`` runs (no ``kill`` from procps needed).

It checks the config file as the daemon will (exit 2 with the problems, and the daemon is not
disturbed), sends SIGHUP to the daemon, and waits for the daemon's report of that reload
(``daemon.reload_report``): exit 0 when the daemon adopted the file, 2 when it kept its running
config (the problems are printed), 1 when it did not answer. So ``systemctl reload dirsync``
fails visibly when the file on disk was rejected.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from dirsync.cli.app import Context, cli, handle_errors, pass_context
from dirsync.cli.commands import db
from dirsync.daemon.reload_report import read_report
from dirsync.daemon.schedule import daemon_pid
from dirsync.errors import ConfigError, DirsyncError, UsageError
from dirsync.state.engine import display_url, store_file
from dirsync.state.upkeep import backup_sqlite
from dirsync.sync.locks import runtime_directory

#: how long to wait for the daemon's report (a reload reads the file and reschedules: < 1 s)
REPLY_TIMEOUT = 30.0


class ReloadUnconfirmed(DirsyncError):
    """The daemon did not report the reload in time (exit 1)."""


@cli.command("reload")
@click.option("--pid", type=int, help="The daemon's pid (ExecReload=: $MAINPID); default: found.")
@pass_context
@handle_errors
def reload_command(ctx: Context, pid: int | None) -> None:
    """Make the running daemon re-read the config; fail if the file is rejected."""
    # exit 2 with the problems: the daemon would refuse the same file. Secrets are not read
    # here: they are the daemon's to read (under systemd, ExecReload= may not read the
    # service's credentials, which only its main process sees); a secret the daemon cannot
    # read comes back in its report
    config = ctx.config
    directory = runtime_directory(config.store.url)
    pid = pid or daemon_pid(directory)
    if pid is None:
        raise UsageError(f"no running daemon found (no live pid in {directory}); give --pid")
    before = read_report(directory)
    previous = before.generation if before is not None and before.pid == pid else 0
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise UsageError(f"no process {pid}") from None
    except PermissionError:
        raise UsageError(f"not allowed to signal process {pid}") from None
    deadline = time.monotonic() + REPLY_TIMEOUT
    while time.monotonic() < deadline:
        report = read_report(directory)
        if report is not None and report.pid == pid and report.generation > previous:
            if not report.adopted:
                kept = "the daemon rejected the file and runs on with its previous config"
                raise ConfigError([kept, *report.problems], path=config.path)
            click.echo(f"dirsync (pid {pid}) reloaded {config.path}", err=True)
            sys.exit(0)
        time.sleep(0.05)
    raise ReloadUnconfirmed(f"the daemon (pid {pid}) did not report the reload within 30 s")


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
@handle_errors
def db_backup(ctx: Context, path: Path) -> None:
    """Write a consistent copy of the SQLite store to PATH, also while syncs run."""
    url = ctx.config.store.url
    source = store_file(url)
    if source is None:
        raise UsageError(
            f"db backup copies a SQLite store; back up {display_url(url)} with its own tools "
            "(pg_dump for PostgreSQL)"
        )
    size = backup_sqlite(source, path)
    click.echo(f"{source} backed up to {path} ({size} bytes)")
