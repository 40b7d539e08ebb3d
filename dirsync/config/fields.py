"""The config's field types and its base model: durations, secrets, the cron check, limits.

Every settings model, the connectors' source settings included, is built from these; importing
them costs pydantic and nothing else (no directory or store library).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
)

from dirsync.config.cron import parse_crontab
from dirsync.config.file_safety import safety_problem
from dirsync.config.secrets import Secret, defer_file, defer_inline
from dirsync.rules import RemovalLimit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    """``"15m"``, ``"30s"``, ``"1h"``, ``"1d"``, ``"500ms"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError('must be a duration such as "30s", "15m" or "1h"')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f'{value!r} is not a duration; use e.g. "30s", "15m" or "1h"')
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return timedelta(seconds=seconds)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{d.total_seconds():g}s", return_type=str),
]


def _parse_duration_or_zero(value: object) -> timedelta:
    """Like ``parse_duration``, and ``0`` / ``"0"`` / ``"0s"`` mean none (e.g. no jitter)."""
    if value in (0, "0") or (isinstance(value, str) and value.strip() in {"0s", "0m", "0ms"}):
        return timedelta(0)
    return parse_duration(value)


#: a duration that may be zero
OptionalDuration = Annotated[
    timedelta,
    BeforeValidator(_parse_duration_or_zero),
    PlainSerializer(lambda d: f"{d.total_seconds():g}s", return_type=str),
]


def check_cron(value: object) -> object:
    """A five-field standard crontab expression (day of week 0 and 7 are Sunday; see
    ``config.cron``), checked by building the APScheduler triggers the daemon will use."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f'{value!r} is not a crontab expression; use e.g. "*/15 * * * *"')
    spec = parse_crontab(value)
    from apscheduler.triggers.cron import CronTrigger  # the daemon's library; imported on use

    try:
        for fields in spec.alternatives():
            CronTrigger(**fields, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid crontab expression: {exc}") from None
    return " ".join(value.split())


def check_timezone(value: object) -> object:
    """An IANA time zone name ("Europe/Berlin", "UTC")."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value.strip()
    raise ValueError(f'{value!r} is not a time zone; use an IANA name such as "Europe/Berlin"')


def _inline_secret(value: object) -> Secret | None:
    """An inline secret; a ``"${NAME}"`` reference is read when the secret is resolved
    (``config.settings.resolve_secrets``), for the organizations a command acts on."""
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return defer_inline(value)


InlineSecret = Annotated[Secret | None, BeforeValidator(_inline_secret)]


def _file_secret(value: object, info: ValidationInfo) -> Secret | None:
    """A ``*_file`` secret: noted here, read when resolved (see ``_inline_secret``)."""
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a file path")
    return defer_file(value, base_dir=(info.context or {}).get("base_dir"))


FileSecret = Annotated[Secret | None, BeforeValidator(_file_secret)]


def parse_max_removals(value: object) -> RemovalLimit:
    """``max_removals``: a count (``10``, ``"10"``) or a percentage (``"10%"``)."""
    if isinstance(value, RemovalLimit):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RemovalLimit(count=value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                percent = -1.0
            if 0 <= percent <= 100:
                return RemovalLimit(percent=percent)
        elif text.isdigit():
            return RemovalLimit(count=int(text))
    raise ValueError(f'{value!r} is neither a count (10) nor a percentage ("10%")')


def existing_file(value: Path | None, info: ValidationInfo) -> Path | None:
    """A file the config names, relative to the config's folder; it must exist, and only its
    owner (this user or root) may change it (``config.file_safety``)."""
    if value is None:
        return None
    base_dir = (info.context or {}).get("base_dir") or Path.cwd()
    path = value if value.is_absolute() else base_dir / value
    if not path.is_file():
        raise ValueError(f"file {value} does not exist")
    if (problem := safety_problem(path)) is not None:  # a CA or a key decides whom we trust
        raise ValueError(problem)
    return path


class Settings(BaseModel):
    """The base of every settings model: frozen, and an unknown key is an error."""

    # defer_build: each model's validator is built when first used rather than as the class
    # is defined; validating a Config builds the whole tree once, and the nested models' own
    # validators (never used on their own by a sync) are not built at every process start
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )


class SourceSettings(Settings):
    """What every ``[organization.source]`` has: its ``type``. Each source type's own class
    extends this one (see ``dirsync.config.sources``), and code that takes the settings of any
    source, whatever its type, takes a ``SourceSettings``."""

    #: the source type: the name of its ``dirsync.sources`` and ``dirsync.connectors`` entry points
    type: str
    #: whether the source pushes its changes (SCIM) instead of being read (``SyncRules.pushed``)
    pushed: ClassVar[bool] = False
