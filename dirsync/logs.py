"""structlog set-up: console on a TTY, JSON otherwise, always stderr; secrets redacted.

Under systemd, stderr is a stream to the journal, which reads a ``<N>`` prefix on each line
as that line's syslog priority (sd-daemon(3); ``SyslogLevelPrefix=``, on by default). When
``$JOURNAL_STREAM`` names the very file stderr is, every line, dirsync's and that of the
libraries' standard ``logging`` alike, gets the priority of its level: error 3, warning 4,
info 6, debug 7, so ``journalctl -p warning`` shows warnings and errors.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from dirsync.config.secrets import MASK, Secret

# structlog imports rich as it loads, when rich is installed, only to offer rich tracebacks in
# its console renderer: ~0.1 s of every process start (rich and pygments). dirsync prints
# plain tracebacks instead, so rich is hidden while structlog loads (unless something imported
# it already); ``render`` still imports it where tables are printed. ``cli.main`` imports
# this module before anything that imports structlog; tests/unit/cli/test_start_up.py checks
# that the command line's imports skip rich.
_HIDE_RICH = "rich" not in sys.modules and "structlog" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
try:
    import structlog
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

_SECRET_KEYS = ("password", "secret", "token", "passphrase", "credential")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Belt and braces: a Secret or a key that names a secret never reaches the output."""
    for key, value in list(event.items()):
        if isinstance(value, Secret) or (
            any(word in key.lower() for word in _SECRET_KEYS) and value is not None
        ):
            event[key] = MASK
    return event


#: syslog priorities (sd-daemon(3)) of the log levels
PRIORITIES = {"critical": 2, "error": 3, "exception": 3, "warning": 4, "info": 6, "debug": 7}


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether stderr is systemd's stream to the journal: ``$JOURNAL_STREAM`` is
    ``device:inode`` of it (the variable alone may have been inherited by a child that
    writes elsewhere, e.g. a command run from a service's shell into a pipe)."""
    env = os.environ if environ is None else environ
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # no real file (a test's captured stderr)
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def with_priority(text: str, level: str) -> str:
    """``text`` with the journal's ``<N>`` prefix of ``level`` on each of its lines."""
    prefix = f"<{PRIORITIES.get(level, 6)}>"
    return "\n".join(prefix + line for line in text.split("\n"))


def _prefixed(renderer: Callable[..., Any]) -> Callable[..., Any]:
    def render(logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        level = str(event.get("level", method))
        return with_priority(str(renderer(logger, method, event)), level)

    return render


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _LibraryFormatter(logging.Formatter):
    """A library's record on one line, ``<logger>: <message>``, an exception as its type and
    the first line of its message: never a stack, so that every line stays one event (the
    pool of a store connection cut off logs its failed rollback with the whole traceback)."""

    def __init__(self, *, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            text += f": {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return with_priority(text, record.levelname.lower()) if self.journal else text


def _route_standard_logging(journal: bool) -> None:
    """The libraries' ``logging`` (APScheduler, Alembic) to stderr, warnings and up, with the
    journal's priorities when stderr is the journal; one handler, replaced on reconfiguring."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "dirsync", False)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.dirsync = True  # type: ignore[attr-defined]  # marks the handler as ours
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_LibraryFormatter(journal=journal))
    root.addHandler(handler)


def configure(level: str = "info", fmt: str = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    journal = stderr_is_journal()
    renderer: Any = (
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            _prefixed(renderer) if journal else renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # one write per line, its newline included (print() writes it apart): the libraries'
        # lines, written by other threads under another lock, cannot land inside one of ours
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_standard_logging(journal)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
