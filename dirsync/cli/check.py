"""``dirsync status --check``: a Nagios/Icinga/Checkmk plugin (pure: documents in, a line out).

One line, ``OK|WARNING|CRITICAL|UNKNOWN: <text> | <perfdata>``, and the plugin exit codes
0, 1, 2, 3 (the Monitoring Plugins Development Guidelines):

- CRITICAL: an organization that never completed a run (``applied`` or ``unchanged``), or
  whose last completed run is older than ``--intervals`` of its schedule;
- WARNING: otherwise, an organization whose latest run was ``refused`` or ``failed``;
- UNKNOWN: the config or the store cannot be read (the caller prints ``unknown``'s line).

Perfdata, per organization: ``<name>_age``, the seconds since its last completed run (``U``
when there is none; critical beyond the allowed age), and ``<name>_seats``, its seats used
(the maximum is its seat limit, when it has one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dirsync.config.settings import OrganizationSettings
from dirsync.daemon.schedule import overdue_problem
from dirsync.plan import Outcome
from dirsync.state.records import RunRecord

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
_WORDS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
#: the latest outcomes that need a person (refused) or are being retried (failed)
_NEEDS_ATTENTION = {Outcome.REFUSED: "was refused", Outcome.FAILED: "failed"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    code: int
    line: str


def check(
    organizations: Sequence[OrganizationSettings],
    *,
    latest: Mapping[str, RunRecord],
    successes: Mapping[str, datetime],
    seats_used: Mapping[str, int],
    now: datetime,
    intervals: int,
) -> CheckResult:
    """The plugin's verdict on ``organizations``."""
    critical = [
        problem
        for org in organizations
        if (problem := overdue_problem(org, successes.get(org.name), now, intervals))
    ]
    warning = [
        f"{org.name}'s latest run {_NEEDS_ATTENTION[run.outcome]}"
        + (f": {run.error}" if run.error else "")
        for org in organizations
        if (run := latest.get(org.name)) is not None and run.outcome in _NEEDS_ATTENTION
    ]
    if critical:
        code, text = CRITICAL, "; ".join(critical + warning)
    elif warning:
        code, text = WARNING, "; ".join(warning)
    else:
        code = OK
        text = f"{len(organizations)} organization(s) synced within {intervals} intervals"
    perfdata = " ".join(
        _perfdata(org, successes.get(org.name), seats_used.get(org.name, 0), now, intervals)
        for org in organizations
    )
    return CheckResult(code=code, line=_line(code, text, perfdata))


def unknown(reason: str) -> CheckResult:
    return CheckResult(code=UNKNOWN, line=_line(UNKNOWN, reason, ""))


def _line(code: int, text: str, perfdata: str) -> str:
    # a "|" in the text would start the perfdata early; a newline would end the line
    text = " ".join(text.replace("|", "/").split())
    return f"{_WORDS[code]}: {text}" + (f" | {perfdata}" if perfdata else "")


def _perfdata(
    org: OrganizationSettings,
    last_success: datetime | None,
    used: int,
    now: datetime,
    intervals: int,
) -> str:
    allowed = int((org.interval * intervals).total_seconds())
    if last_success is None:
        age = "U"
    else:
        when = last_success if last_success.tzinfo else last_success.replace(tzinfo=UTC)
        age = f"{max(0, int((now - when).total_seconds()))}s"
    limit = str(org.seats) if org.seats else ""
    return f"'{org.name}_age'={age};;{allowed};0; '{org.name}_seats'={used};;;0;{limit}"
