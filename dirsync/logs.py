"""structlog set-up: console on a TTY, JSON otherwise, always stderr; secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
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


def configure(level: str = "info", fmt: str = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
