"""Schedule expressions as AWS writes them (State Manager associations, maintenance
windows, EventBridge): ``cron(...)`` with six fields and ``rate(...)``.

``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, in UTC:

- exactly one of Day-of-month and Day-of-week is ``?`` (AWS refuses both or neither);
- Day-of-week counts 1-7 from Sunday (``SUN``-``SAT`` too), so ``cron(0 2 ? * 1 *)`` is
  Sunday 02:00; ``6#3`` is the third Friday, ``6L`` the last Friday of the month;
- Day-of-month takes ``L`` (last day) and ``15W`` (the weekday nearest the 15th);
  ``LW`` is refused (the library underneath has no such field);
- Year is ``*``, a year, a range, a list or a step (``2026/2``), 1970-2199.

The first five fields are handed to croniter, with Day-of-week renumbered from 0 and
``?`` read as ``*``; the year is checked here. ``rate(N minute|minutes|hour|hours|day|
days)`` fires every N units from an anchor (the creation time); ``seconds`` only when
the caller allows them (tests and benchmarks: ``allow_second_rates`` in the daemon's
configuration).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from runbook_engine.errors import ScheduleError

MIN_YEAR, MAX_YEAR = 1970, 2199
_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "second": timedelta(seconds=1),
}
_DOW_NUMBER = re.compile(r"(?<![#\d])([1-7])(?![\d])")
_LOOKAHEAD = 100  # jumps between allowed years before giving up


@dataclass(frozen=True)
class RateSchedule:
    interval: timedelta

    def next_after(self, previous: datetime, now: datetime) -> datetime:
        """The first of ``previous + k * interval`` (k >= 1) after ``now``."""
        if previous >= now:
            return previous + self.interval
        steps = (now - previous) // self.interval + 1
        return previous + steps * self.interval


@dataclass(frozen=True)
class CronSchedule:
    fields: str  # five croniter fields
    years: frozenset[int] | None  # None: every year

    def next_after(self, previous: datetime, now: datetime) -> datetime | None:
        """The first time of the expression after both ``previous`` and ``now``."""
        start = max(previous, now)
        for _ in range(_LOOKAHEAD):
            moment: datetime = croniter(self.fields, start).get_next(datetime)
            if self.years is None or moment.year in self.years:
                return moment
            later = [year for year in self.years if year > moment.year]
            if not later:
                return None
            # Jump to the next allowed year instead of walking through the ones between.
            start = moment.replace(
                year=min(later), month=1, day=1, hour=0, minute=0, second=0, microsecond=0
            ) - timedelta(microseconds=1)
        return None


@dataclass(frozen=True)
class OnceSchedule:
    """No expression: the association runs once, when created (as State Manager does)."""

    def next_after(self, previous: datetime, now: datetime) -> datetime | None:
        return None


Schedule = RateSchedule | CronSchedule | OnceSchedule


def parse_schedule(text: str | None, *, allow_seconds: bool = False) -> Schedule:
    """``ScheduleError`` (InvalidSchedule) says what is wrong with an expression."""
    if text is None or not text.strip():
        return OnceSchedule()
    text = text.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        return _rate(int(rate.group(1)), rate.group(2), text, allow_seconds)
    cron = _CRON.fullmatch(text)
    if cron:
        return _cron(cron.group(1).split(), text)
    raise ScheduleError(
        f"Schedule expression {text!r} is neither cron(...) nor rate(...), for example"
        " cron(0 2 ? * SUN *) or rate(1 hour)"
    )


def first_run(
    schedule: Schedule, created: datetime, apply_only_at_cron_interval: bool = False
) -> datetime | None:
    """When a new schedule fires first: at once (AWS's default for associations), or at
    the first cron time with ``ApplyOnlyAtCronInterval`` (which rates ignore)."""
    if isinstance(schedule, CronSchedule) and apply_only_at_cron_interval:
        return schedule.next_after(created, created)
    return created


def _rate(value: int, unit: str, text: str, allow_seconds: bool) -> RateSchedule:
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _UNITS or (base == "second" and not allow_seconds):
        units = "minutes, hours or days"
        raise ScheduleError(f"Schedule expression {text!r}: the unit must be {units}")
    if value < 1:
        raise ScheduleError(f"Schedule expression {text!r}: the rate must be at least 1")
    return RateSchedule(value * _UNITS[base])


def _cron(fields: list[str], text: str) -> CronSchedule:
    if len(fields) != 6:
        raise ScheduleError(
            f"Schedule expression {text!r} needs six fields: minutes hours day-of-month"
            " month day-of-week year, for example cron(0 2 ? * SUN *)"
        )
    minutes, hours, day, month, weekday, year = fields
    if (day == "?") == (weekday == "?"):
        raise ScheduleError(
            f"Schedule expression {text!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    if "LW" in day.upper():
        raise ScheduleError(f"Schedule expression {text!r}: LW is not supported")
    translated = " ".join(
        (minutes, hours, "*" if day == "?" else day, month, _weekday(weekday, text))
    )
    if not croniter.is_valid(translated):
        raise ScheduleError(f"Schedule expression {text!r} is not a valid cron expression")
    return CronSchedule(translated, _years(year, text))


def _weekday(field: str, text: str) -> str:
    """AWS's day-of-week (1 = Sunday, ``6L`` = last Friday) in croniter's (0 = Sunday)."""
    if field in ("?", "*"):
        return "*"
    upper = field.upper()
    if upper == "L":
        return "6"  # the last day of the week: Saturday
    last = re.fullmatch(r"([1-7]|[A-Z]{3})L", upper)
    if last:
        day = last.group(1)
        return f"L{int(day) - 1}" if day.isdigit() else f"L{day}"
    if "L" in upper:  # no day name has an L: any other use is unknown
        raise ScheduleError(f"Schedule expression {text!r}: day-of-week {field} is not supported")
    # Renumber day numbers (not the n of #n, nor a /step).
    parts = []
    for part in upper.split(","):
        base, slash, step = part.partition("/")
        number, hash_, nth = base.partition("#")
        number = _DOW_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), number)
        parts.append(number + hash_ + nth + slash + step)
    return ",".join(parts)


def _years(field: str, text: str) -> frozenset[int] | None:
    if field == "*":
        return None
    years: set[int] = set()
    try:
        for part in field.split(","):
            base, _, step_text = part.partition("/")
            step = int(step_text) if step_text else 1
            if base == "*":
                low, high = MIN_YEAR, MAX_YEAR
            elif "-" in base:
                low_text, high_text = base.split("-", 1)
                low, high = int(low_text), int(high_text)
            else:
                low = int(base)
                high = MAX_YEAR if step_text else low
            if not MIN_YEAR <= low <= high <= MAX_YEAR or step < 1:
                raise ValueError(part)
            years.update(range(low, high + 1, step))
    except ValueError:
        raise ScheduleError(
            f"Schedule expression {text!r}: the year must be *, or years from {MIN_YEAR} to"
            f" {MAX_YEAR} (2026, 2026-2028, 2026,2028 or 2026/2)"
        ) from None
    return frozenset(years)
