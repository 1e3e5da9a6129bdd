"""AWS cron and rate expressions: what they accept, refuse, and the times they give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook_engine.errors import ScheduleError
from runbook_engine.schedule_expressions import (
    CronSchedule,
    OnceSchedule,
    RateSchedule,
    first_run,
    parse_schedule,
)

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # a Tuesday


def times(expression: str, count: int = 3, start: datetime = NOW) -> list[str]:
    schedule = parse_schedule(expression)
    found: list[str] = []
    moment: datetime | None = start
    for _ in range(count):
        assert moment is not None
        moment = schedule.next_after(moment, moment)
        if moment is None:
            break
        found.append(moment.strftime("%a %Y-%m-%d %H:%M"))
    return found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 2 ? * SUN *)", ["Sun 2026-12-06 02:00", "Sun 2026-12-13 02:00", "Sun 2026-12-20 02:00"]),
        ("cron(0 2 ? * 1 *)", ["Sun 2026-12-06 02:00", "Sun 2026-12-13 02:00", "Sun 2026-12-20 02:00"]),
        ("cron(30 9 ? * 2-6 *)", ["Tue 2026-12-01 09:30", "Wed 2026-12-02 09:30", "Thu 2026-12-03 09:30"]),
        ("cron(0 2 ? * 6L *)", ["Fri 2026-12-25 02:00", "Fri 2027-01-29 02:00", "Fri 2027-02-26 02:00"]),
        ("cron(0 2 ? * 6#3 2027)", ["Fri 2027-01-15 02:00", "Fri 2027-02-19 02:00", "Fri 2027-03-19 02:00"]),
        ("cron(15 10 L * ? *)", ["Thu 2026-12-31 10:15", "Sun 2027-01-31 10:15", "Sun 2027-02-28 10:15"]),
        ("cron(0 8 13W * ? *)", ["Mon 2026-12-14 08:00", "Wed 2027-01-13 08:00", "Fri 2027-02-12 08:00"]),
        ("cron(0/15 * * * ? *)", ["Tue 2026-12-01 00:15", "Tue 2026-12-01 00:30", "Tue 2026-12-01 00:45"]),
        ("cron(0 12 1 JAN-MAR ? *)", ["Fri 2027-01-01 12:00", "Mon 2027-02-01 12:00", "Mon 2027-03-01 12:00"]),
        ("cron(0 0 1 1 ? 2030,2032)", ["Tue 2030-01-01 00:00", "Thu 2032-01-01 00:00"]),
        ("cron(0 0 1 1 ? 2026)", []),  # its only time has passed
        ("rate(5 minutes)", ["Tue 2026-12-01 00:05", "Tue 2026-12-01 00:10", "Tue 2026-12-01 00:15"]),
        ("rate(1 hour)", ["Tue 2026-12-01 01:00", "Tue 2026-12-01 02:00", "Tue 2026-12-01 03:00"]),
        ("rate(7 days)", ["Tue 2026-12-08 00:00", "Tue 2026-12-15 00:00", "Tue 2026-12-22 00:00"]),
    ],
)  # fmt: skip
def test_expressions_give_the_times_aws_documents(expression: str, expected: list[str]) -> None:
    assert times(expression) == expected


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("cron(0 2 * * SUN *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * SUN)", "needs six fields"),
        ("cron(0 2 LW * ? *)", "LW is not supported"),
        ("cron(0 2 ? * 9 *)", "not a valid cron expression"),
        ("cron(61 2 ? * * *)", "not a valid cron expression"),
        ("cron(0 2 ? * * 1969)", "the year must be"),
        ("rate(0 hours)", "at least 1"),
        ("rate(5 seconds)", "minutes, hours or days"),
        ("rate(5 weeks)", "minutes, hours or days"),
        ("every day at two", r"neither cron\(\.\.\.\) nor rate"),
    ],
)
def test_bad_expressions_are_invalid_schedules(expression: str, complaint: str) -> None:
    with pytest.raises(ScheduleError, match=complaint) as refused:
        parse_schedule(expression)
    assert refused.value.code == "InvalidSchedule"


def test_second_rates_only_when_allowed_and_no_expression_means_once() -> None:
    assert parse_schedule("rate(2 seconds)", allow_seconds=True) == RateSchedule(
        timedelta(seconds=2)
    )
    assert isinstance(parse_schedule(None), OnceSchedule)
    assert parse_schedule("").next_after(NOW, NOW) is None


def test_a_rate_keeps_its_cadence_and_skips_what_was_missed() -> None:
    rate = parse_schedule("rate(1 hour)")
    anchor = NOW
    assert rate.next_after(anchor, anchor + timedelta(minutes=10)) == anchor + timedelta(hours=1)
    much_later = anchor + timedelta(hours=5, minutes=30)
    assert rate.next_after(anchor, much_later) == anchor + timedelta(hours=6)


def test_first_runs_are_at_once_unless_only_at_the_cron_interval() -> None:
    cron = parse_schedule("cron(0 2 ? * SUN *)")
    assert isinstance(cron, CronSchedule)
    assert first_run(cron, NOW) == NOW
    assert first_run(cron, NOW, apply_only_at_cron_interval=True) == datetime(
        2026, 12, 6, 2, 0, tzinfo=UTC
    )
    assert first_run(parse_schedule("rate(1 day)"), NOW, apply_only_at_cron_interval=True) == NOW
