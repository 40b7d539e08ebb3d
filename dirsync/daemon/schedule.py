"""When organizations run: triggers, retry backoff, full re-reads, and the daemon's schedule file.

The daemon records each organization's next run in ``<runtime dir>/schedule.json`` (see
``locks.runtime_directory``) together with its pid; ``dirsync status`` shows those times while
that daemon is alive, and otherwise the last run plus the interval (or the next cron time).
A file, not a table: it describes one running process, not the organization, and needs no
schema migration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from dirsync.config.cron import parse_crontab
from dirsync.config.settings import Config, OrganizationSettings
from dirsync.state.files import private_folder, write_private_text

SCHEDULE_FILE = "schedule.json"
MAX_DEFAULT_JITTER = timedelta(seconds=60)


def jitter_of(org: OrganizationSettings) -> timedelta:
    """The configured jitter, else a tenth of the interval and at most a minute."""
    if org.jitter is not None:
        return org.jitter
    return min(org.interval / 10, MAX_DEFAULT_JITTER)


def trigger_for(org: OrganizationSettings) -> BaseTrigger:
    """The organization's APScheduler trigger: its cron expression (standard crontab, in its
    time zone), else its interval."""
    jitter = jitter_of(org).total_seconds() or None
    if org.cron is not None:
        return _cron_trigger(org, jitter=jitter)
    return IntervalTrigger(seconds=org.interval.total_seconds(), timezone=UTC, jitter=jitter)


def _cron_trigger(org: OrganizationSettings, *, jitter: float | None = None) -> BaseTrigger:
    assert org.cron is not None
    zone = ZoneInfo(org.timezone or "UTC")
    alternatives = parse_crontab(org.cron).alternatives()
    if len(alternatives) == 1:
        return CronTrigger(**alternatives[0], timezone=zone, jitter=jitter)
    # either day field may match, as in cron
    return OrTrigger([CronTrigger(**f, timezone=zone) for f in alternatives], jitter=jitter)


def schedule_key(org: OrganizationSettings) -> tuple[object, ...]:
    """What decides the trigger: a reload reschedules an organization when this changes."""
    return (org.interval, org.cron, org.timezone, jitter_of(org))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    """What a SIGHUP changes: the config to adopt and the organizations it touches."""

    config: Config
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    rescheduled: tuple[str, ...] = ()
    #: keys that changed but take effect only after a restart (their old values are kept)
    needs_restart: tuple[str, ...] = ()


def plan_reload(current: Config, new: Config) -> Reload:
    """Compare the running config with a new valid one.

    The store, the metrics and SCIM addresses and the worker counts (``max_parallel``,
    ``max_full_loads``) are fixed at start-up: their old values stay in the adopted config and
    their keys are listed in ``needs_restart``.
    """
    restart = [
        key
        for key, before, after in (
            ("store.url", current.store.url, new.store.url),
            ("daemon.metrics_listen", current.daemon.metrics_listen, new.daemon.metrics_listen),
            ("daemon.max_parallel", current.daemon.max_parallel, new.daemon.max_parallel),
            ("daemon.max_full_loads", current.daemon.max_full_loads, new.daemon.max_full_loads),
            ("daemon.scim_listen", current.daemon.scim_listen, new.daemon.scim_listen),
            ("daemon.scim_cert_file", current.daemon.scim_cert_file, new.daemon.scim_cert_file),
            ("daemon.scim_key_file", current.daemon.scim_key_file, new.daemon.scim_key_file),
        )
        if before != after
    ]
    fixed: dict[str, object] = {
        "metrics_listen": current.daemon.metrics_listen,
        "max_parallel": current.daemon.max_parallel,
        "max_full_loads": current.daemon.max_full_loads,
        # the SCIM endpoint listens from start-up; its organizations and tokens follow the file
        "scim_listen": current.daemon.scim_listen,
        "scim_cert_file": current.daemon.scim_cert_file,
        "scim_key_file": current.daemon.scim_key_file,
    }
    # the store's retention (keep_runs, keep_events) follows the file; its URL does not
    store = new.store.model_copy(update={"url": current.store.url})
    adopted = new.model_copy(update={"store": store, "daemon": new.daemon.model_copy(update=fixed)})
    old = {o.name: o for o in current.organization}
    fresh = {o.name: o for o in new.organization}
    return Reload(
        config=adopted,
        added=tuple(sorted(fresh.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - fresh.keys())),
        rescheduled=tuple(
            sorted(
                name
                for name in fresh.keys() & old.keys()
                if schedule_key(fresh[name]) != schedule_key(old[name])
            )
        ),
        needs_restart=tuple(restart),
    )


def retry_delay(failures: int, *, initial: timedelta, ceiling: timedelta) -> timedelta:
    """Exponential backoff: ``initial``, twice that, four times ... never beyond ``ceiling``."""
    if failures < 1:
        return timedelta(0)
    factor = 2 ** min(failures - 1, 32)  # bounded: beyond 2**32 the ceiling wins anyway
    return min(initial * factor, ceiling)


def needs_full_read(org: OrganizationSettings, last_full: datetime | None, now: datetime) -> bool:
    """With ``full_sync_interval``: a full read first, then whenever the last one is that old."""
    if org.full_sync_interval is None:
        return False
    return last_full is None or now - last_full >= org.full_sync_interval


def next_after(org: OrganizationSettings, last: datetime) -> datetime | None:
    """When the schedule (without jitter) runs next after a run at ``last``."""
    if org.cron is not None:
        # strictly after: a run that finished at its fire time (to the second) is not next
        after = last + timedelta(microseconds=1)
        fire: datetime | None = _cron_trigger(org).get_next_fire_time(None, after)
        return None if fire is None else fire.astimezone(UTC)
    return last + org.interval


def overdue_problem(
    org: OrganizationSettings, last_success: datetime | None, now: datetime, intervals: int
) -> str | None:
    """``status --check``: why ``org`` is overdue, or None when it succeeded recently enough."""
    allowed = org.interval * intervals
    if last_success is None:
        return f"{org.name} has never synced successfully"
    if last_success.tzinfo is None:
        last_success = last_success.replace(tzinfo=UTC)
    if now - last_success > allowed:
        since = last_success.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return (
            f"{org.name} has not synced successfully since {since} "
            f"({intervals} intervals of {org.interval} allowed)"
        )
    return None


def write_schedule(directory: Path, next_runs: Mapping[str, datetime | None]) -> None:
    """Replace the schedule file atomically (write, then rename)."""
    private_folder(directory)
    data = {
        "pid": os.getpid(),
        "next_run": {
            name: None if when is None else when.astimezone(UTC).isoformat()
            for name, when in sorted(next_runs.items())
        },
    }
    write_private_text(directory / SCHEDULE_FILE, json.dumps(data, indent=1) + "\n")


def remove_schedule(directory: Path) -> None:
    (directory / SCHEDULE_FILE).unlink(missing_ok=True)


def read_schedule(directory: Path) -> dict[str, datetime | None] | None:
    """The live daemon's next runs; None without a file or when its daemon is gone."""
    try:
        data = json.loads((directory / SCHEDULE_FILE).read_text(encoding="utf-8"))
        pid = int(data["pid"])
        runs = data["next_run"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid) or not isinstance(runs, dict):
        return None
    return {
        str(name): None if value is None else datetime.fromisoformat(value)
        for name, value in runs.items()
    }


def daemon_pid(directory: Path) -> int | None:
    """The pid of the live daemon that wrote the schedule file, if any."""
    try:
        pid = int(json.loads((directory / SCHEDULE_FILE).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's (e.g. the service's DynamicUser)
        return True
    return True
