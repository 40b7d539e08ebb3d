"""Standard crontab expressions, as APScheduler 3 must be told them (pure, no APScheduler here).

A crontab's day of week counts from Sunday: 0 and 7 are Sunday, ``1-5`` is Monday to Friday.
APScheduler 3's ``day_of_week`` counts from Monday (0 is Monday), so ``"0 8 * * 1-5"`` passed
as is runs Tuesday to Saturday. ``parse_crontab`` reads the day-of-week field the standard way
(numbers, names, ranges, steps, lists) and hands APScheduler the days by name, which it reads
unambiguously.

When both the day of month and the day of week are restricted, cron runs on a day that matches
*either* (``"0 8 1 * mon"``: the 1st and every Monday); APScheduler requires both. The
expression is then two triggers, one per day field (``CronSpec.alternatives``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: crontab's weekday numbers are the index here; 7 is Sunday again
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True, kw_only=True)
class CronSpec:
    minute: str
    hour: str
    day: str
    month: str
    #: the days by name for APScheduler ("mon,tue,wed,thu,fri"), or "*"
    day_of_week: str

    def alternatives(self) -> list[dict[str, str]]:
        """APScheduler ``CronTrigger`` fields: one set, or two when either day may match."""
        common = {"minute": self.minute, "hour": self.hour, "month": self.month}
        if self.day != "*" and self.day_of_week != "*":
            return [
                {**common, "day": self.day, "day_of_week": "*"},
                {**common, "day": "*", "day_of_week": self.day_of_week},
            ]
        return [{**common, "day": self.day, "day_of_week": self.day_of_week}]


def parse_crontab(expression: str) -> CronSpec:
    """Five fields; ValueError says what is wrong with the day of week (APScheduler checks
    the other fields when it builds the trigger)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f'{expression!r} is not a crontab expression; use five fields, e.g. "*/15 * * * *"'
        )
    minute, hour, day, month, day_of_week = fields
    return CronSpec(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(day_of_week)
    )


def _weekdays(field: str) -> str:
    days: set[int] = set()
    for item in field.lower().split(","):
        days |= _weekday_item(item, field)
    if days == set(range(7)):
        return "*"
    return ",".join(_DAYS[d] for d in sorted(days, key=lambda d: (d + 6) % 7))  # from Monday


def _weekday_item(item: str, field: str) -> set[int]:
    span, _, step_text = item.partition("/")
    if step_text and not (step_text.isdigit() and int(step_text) > 0):
        raise ValueError(f"day of week {field!r}: step {step_text!r} is not a positive number")
    step = int(step_text) if step_text else 1
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        start, _, end = span.partition("-")
        first, last = _weekday(start, field), _weekday(end, field)
        if last == 0 and end.strip() in {"7", "sun"}:
            last = 7  # "5-7", "fri-sun": up to Sunday
        if first > last:
            raise ValueError(f"day of week {field!r}: the range {span!r} runs backwards")
    else:
        first = last = _weekday(span, field)
        if step_text:
            last = 6  # "1/2": from Monday, every other day
    return {day % 7 for day in range(first, last + 1, step)}


def _weekday(text: str, field: str) -> int:
    text = text.strip()
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    if text in _DAYS:
        return _DAYS.index(text)
    raise ValueError(
        f"day of week {field!r}: {text!r} is neither 0-7 (0 and 7 are Sunday) nor a day name"
    )
