"""Maintenance windows: a cron expression saying when a window opens, how long it stays open,
in which time zone. Pure: no I/O, times handed in.

The cron is the standard five fields, ``minute hour day-of-month month day-of-week``, each ``*``,
a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of those; months and weekdays
also by name (``jan``, ``mon``); weekday 0 and 7 are Sunday. When both day fields are restricted
a day matches either (cron's rule). Occurrences are wall-clock times in the zone: ``0 2 * * *``
in Europe/Berlin opens at 02:00 local time whatever the offset; a start in a spring-forward
gap opens as much later as the clocks jumped, one that occurs twice at its first occurrence.

Invariants:
- ``parse`` refuses a bad field (naming it and its range), an unknown zone, a duration outside
  (0, ``MAX_DURATION``], an expression longer than ``max_cron_chars`` and one that never fires
  (30 February) with InvalidArgumentError; a parsed window always has a next opening.
- ``is_open`` and ``next_open`` look back and forward a bounded number of minutes, never loop
  without end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controlplane.errors import InvalidArgumentError
from controlplane.validation import shown

MAX_DURATION = 7 * 24 * 3600
#: How far ahead an opening is looked for: beyond every expression that fires at all (29
#: February on a Monday recurs within 28 years).
_HORIZON_DAYS = 366 * 28
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_NAMES = {
    "month": {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))},
    "day of week": {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri",
                                                "sat"))},
}


@dataclass(frozen=True)
class MaintenanceWindow:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]   # 0 = Sunday
    any_day: bool              # day of month was *
    any_weekday: bool          # day of week was *
    duration: dt.timedelta
    zone: dt.tzinfo

    @classmethod
    def parse(cls, cron: str, duration_seconds: int, time_zone: str = "UTC", *,
              settings: Any = None) -> MaintenanceWindow:
        """Raises InvalidArgumentError naming what is wrong."""
        limit = getattr(settings, "max_cron_chars", 256)
        if len(cron) > limit:
            raise InvalidArgumentError(
                f"the window's cron is {len(cron)} characters; at most {limit} (setting "
                "max_cron_chars)")
        parts = cron.split()
        if len(parts) != 5:
            raise InvalidArgumentError(
                f"window cron {shown(cron)} has {len(parts)} fields: give 5 (minute hour "
                "day-of-month month day-of-week), e.g. '0 2 * * *' for 02:00 every day")
        sets = [_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
        if not 0 < duration_seconds <= MAX_DURATION:
            raise InvalidArgumentError(
                f"window duration {duration_seconds} s is out of range: more than 0 and at most "
                f"{MAX_DURATION // 86400} days")
        try:
            zone = ZoneInfo(time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgumentError(
                f"unknown time zone {shown(time_zone)}: give an IANA name such as "
                "Europe/Berlin or UTC") from None
        window = cls(frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]),
                     frozenset(sets[3]), frozenset(d % 7 for d in sets[4]),
                     parts[2] == "*", parts[4] == "*", dt.timedelta(seconds=duration_seconds),
                     zone)
        if window._first_day(dt.date(2000, 1, 1), _HORIZON_DAYS) is None:
            raise InvalidArgumentError(f"window cron {shown(cron)} never fires (no such day)")
        return window

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def _first_day(self, start: dt.date, days: int) -> dt.date | None:
        for n in range(days):
            day = start + dt.timedelta(days=n)
            if self._day_matches(day):
                return day
        return None

    def _starts(self, day: dt.date) -> list[dt.datetime]:
        """The day's openings as aware UTC times, in order."""
        out = []
        for h in sorted(self.hours):
            for m in sorted(self.minutes):
                # A wall time in a spring-forward gap converts as if the clocks had not moved:
                # it opens as much later as they jumped. One that occurs twice (fall back)
                # opens at its first occurrence (fold 0).
                local = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=self.zone)
                out.append(local.astimezone(dt.UTC))
        return sorted(set(out))

    def is_open(self, now: dt.datetime) -> bool:
        """Whether ``now`` (aware) is within ``[opening, opening + duration)`` of an opening."""
        local_today = now.astimezone(self.zone).date()
        for n in range(self.duration.days + 2):
            day = local_today - dt.timedelta(days=n)
            if self._day_matches(day) and any(
                    s <= now < s + self.duration for s in self._starts(day)):
                return True
        return False

    def next_open(self, now: dt.datetime) -> dt.datetime:
        """``now`` if the window is open, else its next opening."""
        if self.is_open(now):
            return now
        day = now.astimezone(self.zone).date()
        for n in range(_HORIZON_DAYS):
            d = day + dt.timedelta(days=n)
            if self._day_matches(d):
                later = [s for s in self._starts(d) if s > now]
                if later:
                    return later[0]
        raise RuntimeError("parse() accepted a window that never opens")   # refused by parse

    def closes_at(self, now: dt.datetime) -> dt.datetime | None:
        """When the window open at ``now`` closes (None: it is closed)."""
        local_today = now.astimezone(self.zone).date()
        ends = [s + self.duration
                for n in range(self.duration.days + 2)
                for d in [local_today - dt.timedelta(days=n)] if self._day_matches(d)
                for s in self._starts(d) if s <= now < s + self.duration]
        return max(ends) if ends else None


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if step <= 0:
                raise ValueError
            if base == "*":
                lo, hi = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                lo, hi = _value(a, name), _value(b, name)
            else:
                lo = _value(base, name)
                hi = high if step_text else lo
        except ValueError:
            raise InvalidArgumentError(
                f"window cron: bad {name} {shown(item)}: use *, N, A-B, */N or a list, "
                f"with values {low}-{high}") from None
        if not (low <= lo <= high and low <= hi <= high) or lo > hi:
            raise InvalidArgumentError(
                f"window cron: {name} {shown(item)} is out of range {low}-{high}")
        out.update(range(lo, hi + 1, step))
    return out


def _value(text: str, name: str) -> int:
    names = _NAMES.get(name, {})
    if text in names:
        return names[text]
    if not text.isdigit() or len(text) > 2:
        raise ValueError
    return int(text)
