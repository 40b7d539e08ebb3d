"""Standard crontab weekdays, as APScheduler 3 must be told them (its 0 is Monday)."""

from __future__ import annotations

import pytest

from dirsync.config.cron import parse_crontab


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sat,sun"),
        ("5-7", "fri,sat,sun"),
        ("sat-sun", "sat,sun"),
        ("*/2", "tue,thu,sat,sun"),  # 0, 2, 4, 6
        ("1/2", "mon,wed,fri"),
        ("0-7", "*"),
        ("*", "*"),
        ("MON,Wed", "mon,wed"),
    ],
)
def test_weekdays_are_read_the_standard_way(field: str, days: str) -> None:
    assert parse_crontab(f"0 8 * * {field}").day_of_week == days


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("8", "'8' is neither 0-7"),
        ("5-1", "runs backwards"),
        ("monday", "'monday' is neither"),
        ("*/0", "step '0' is not a positive number"),
    ],
)
def test_a_bad_weekday_says_what_is_wrong(field: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_crontab(f"0 8 * * {field}")


def test_a_day_and_a_weekday_both_restricted_match_either_as_in_cron() -> None:
    spec = parse_crontab("30 6 1 * 1")
    assert spec.alternatives() == [
        {"minute": "30", "hour": "6", "month": "*", "day": "1", "day_of_week": "*"},
        {"minute": "30", "hour": "6", "month": "*", "day": "*", "day_of_week": "mon"},
    ]
    assert len(parse_crontab("30 6 * * 1").alternatives()) == 1


def test_not_five_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="five fields"):
        parse_crontab("0 8 * *")
