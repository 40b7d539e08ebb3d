"""``dirsync run``: the daemon as a process: signals, sd_notify, the watchdog, reloads.

- SIGTERM / SIGINT: stop scheduling, let a run in progress finish (its apply commits whole or
  not at all), exit 0. A second SIGTERM / SIGINT exits at once with 128 + the signal number;
  SQLite rolls an interrupted transaction back on the next open.
- SIGHUP: read the config again. A valid file adds, removes and reschedules organizations; an
  invalid one is logged (``daemon.reload_failed`` with its problems), the STATUS line says the
  file was rejected and why, ``reload.json`` tells ``dirsync reload`` (ExecReload=), and the
  old config runs on.
- systemd (``Type=notify``): READY=1 once every job is scheduled, RELOADING=1 / READY=1 around
  a reload, STOPPING=1, STATUS= one line per organization, and WATCHDOG=1 every half
  ``WatchdogSec`` only while the scheduler is healthy and no run exceeds ``run_budget``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import structlog

from dirsync import logs
from dirsync.config.resolve import resolve_secrets
from dirsync.config.settings import load_config
from dirsync.daemon import memory, metrics, metrics_server, systemd
from dirsync.daemon.reload_report import ReloadReport, remove_report, write_report
from dirsync.daemon.scheduler import Daemon
from dirsync.errors import ConfigError
from dirsync.state.engine import store_file
from dirsync.state.files import exposure_warning
from dirsync.state.sql_store import SqlStore
from dirsync.sync.locks import refuse_root_in_foreign_folder, runtime_directory
from dirsync.sync.run import this_node

if TYPE_CHECKING:
    from dirsync.scim.server import ScimServer

log = structlog.get_logger("dirsync.daemon.process")

#: the main loop wakes up at least this often (seconds) to ping the watchdog and update STATUS
TICK = 1.0


class Signals:
    """Handlers that only set flags; the main loop acts on them."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stop_requested = False
        self.reload_requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_requested:
            # the second signal: leave now; an open transaction is rolled back by the database
            os.write(2, b"dirsync: second signal, exiting at once\n")
            os._exit(128 + signum)
        self.stop_requested = True
        self.wake.set()

    def _reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested = True
        self.wake.set()


def serve(config_path: str | None) -> int:
    """Run until SIGTERM/SIGINT; raises ConfigError (exit 2) or another DirsyncError (exit 1)."""
    arenas_limited = memory.limit_arenas()  # before any thread of ours exists
    config = load_config(config_path)
    resolve_secrets(config)  # every organization's: the daemon acts on all of them
    logs.configure(config.logging.level, config.logging.format)
    notifier = systemd.Notifier.from_environ()
    runtime_dir = runtime_directory(config.store.url)
    refuse_root_in_foreign_folder(runtime_dir, "systemctl start dirsync")
    path = store_file(config.store.url)
    if path is not None and (warning := exposure_warning(path)) is not None:
        log.warning("store.not_owner_only", path=str(path), message=warning)
    with contextlib.ExitStack() as cleanup:
        # brings the schema up to date
        store = SqlStore.open(config.store.url, stall_timeout=config.daemon.takeover)
        cleanup.callback(store.close)
        registry = metrics.Metrics(node=config.daemon.node or this_node())
        if config.daemon.metrics_listen:
            server = metrics_server.serve(registry, config.daemon.metrics_listen)
            cleanup.callback(server.close)
            log.info("daemon.metrics_listening", host=server.host, port=server.port)
        daemon = Daemon(config, store=store, runtime_dir=runtime_dir, metrics=registry)
        cleanup.callback(daemon.shutdown, wait=False)
        if config.daemon.scim_listen:
            # closed before the scheduler (last in, first out): no push starts while stopping
            endpoint = _serve_scim(daemon, store)
            cleanup.callback(endpoint.close)
        signals = Signals()
        signals.install()
        daemon.start()
        log.info(
            "daemon.started",
            organizations=[o.name for o in config.organization],
            memory_trim=memory.give_back(),  # whether freed memory can go back (daemon.memory)
            malloc_arenas=memory.ARENAS if arenas_limited else None,
        )
        notifier.ready(daemon.status_line())
        _loop(daemon, signals, notifier, config_path)
        notifier.stopping()
        log.info("daemon.stopping", waiting_for=daemon.running())
        daemon.shutdown(wait=True)
        remove_report(runtime_dir)
    log.info("daemon.stopped")
    return 0


def _serve_scim(daemon: Daemon, store: SqlStore) -> ScimServer:
    """The SCIM endpoint of ``[daemon] scim_listen``; it reads the daemon's current config, so
    a reload adds, removes and re-keys organizations without a restart."""
    # imported here, not at the top: uvicorn, starlette and scim2_models (pydantic models,
    # lark's grammar) cost a daemon without ``scim_listen`` 9 MB it never uses
    from dirsync.scim import app as scim_app
    from dirsync.scim import server as scim_server
    from dirsync.scim.push import Pusher

    settings = daemon.config.daemon
    assert settings.scim_listen and settings.scim_cert_file and settings.scim_key_file
    pusher = Pusher(
        store=store,
        store_url=daemon.config.store.url,
        runtime_dir=daemon.runtime_dir,
        takeover=settings.takeover,
    )
    app = scim_app.application(lambda: daemon.config, store, pusher)
    endpoint = scim_server.serve(
        app,
        settings.scim_listen,
        cert_file=settings.scim_cert_file,
        key_file=settings.scim_key_file,
    )
    log.info("daemon.scim_listening", host=endpoint.host, port=endpoint.port)
    return endpoint


def _loop(
    daemon: Daemon, signals: Signals, notifier: systemd.Notifier, config_path: str | None
) -> None:
    watchdog = systemd.watchdog_interval()
    tick = min(TICK, watchdog) if watchdog else TICK
    last_status = ""
    last_problems: list[str] = []
    while not signals.stop_requested:
        signals.wake.wait(tick)
        signals.wake.clear()
        if signals.stop_requested:
            break
        if signals.reload_requested:
            signals.reload_requested = False
            reload(daemon, notifier, config_path)
            last_status = ""
        problems = daemon.problems()
        if problems != last_problems:
            if problems:
                log.error("daemon.unhealthy", problems=problems)
            else:
                log.info("daemon.healthy")
            last_problems = problems
        if watchdog and not problems:
            notifier.watchdog()
        daemon.check_stale()
        status = daemon.status_line()
        if status != last_status:
            notifier.status(status)
            last_status = status


def reload(daemon: Daemon, notifier: systemd.Notifier, config_path: str | None) -> bool:
    """SIGHUP: adopt the config file if it is valid; otherwise keep the running one and say
    so where an operator looks: the error log, the unit's STATUS line (until a reload
    succeeds) and the report ``dirsync reload`` (ExecReload=) waits for."""
    notifier.reloading()
    try:
        config = load_config(config_path)
        resolve_secrets(config)
    except ConfigError as exc:
        log.error("daemon.reload_failed", problems=exc.problems, path=exc.path)
        daemon.rejected = _rejection(exc)
        _report(daemon, adopted=False, problems=exc.problems)
        notifier.ready(daemon.status_line())
        return False
    if config.logging != daemon.config.logging:
        logs.configure(config.logging.level, config.logging.format)
    daemon.rejected = None
    summary = daemon.apply_config(config)
    log.info(
        "daemon.reloaded",
        added=list(summary.added),
        removed=list(summary.removed),
        rescheduled=list(summary.rescheduled),
    )
    if summary.needs_restart:
        log.warning("daemon.reload_needs_restart", keys=list(summary.needs_restart))
    _report(daemon, adopted=True, problems=[])
    notifier.ready(daemon.status_line())
    return True


def _rejection(exc: ConfigError) -> str:
    """The STATUS line's words for a refused file: where, and its first problem."""
    more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
    first = exc.problems[0] if exc.problems else str(exc)
    return f"{exc.path}: {first}{more}" if exc.path else f"{first}{more}"


def _report(daemon: Daemon, *, adopted: bool, problems: list[str]) -> None:
    daemon.reloads += 1
    report = ReloadReport(
        pid=os.getpid(), generation=daemon.reloads, adopted=adopted, problems=tuple(problems)
    )
    try:
        write_report(daemon.runtime_dir, report)
    except OSError as exc:
        log.warning("daemon.reload_report_not_written", error=exc.strerror or str(exc))
