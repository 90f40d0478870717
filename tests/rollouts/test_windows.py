"""Maintenance windows: cron forms, time zones across DST, windows over midnight, and refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.errors import InvalidArgumentError
from controlplane.rollouts.windows import MaintenanceWindow

UTC = dt.UTC
H = 3600


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_daily_window_is_open_for_its_duration_only() -> None:
    w = MaintenanceWindow.parse("0 2 * * *", 2 * H, "UTC")
    assert not w.is_open(at(2026, 12, 2, 1, 59))
    assert w.is_open(at(2026, 12, 2, 2, 0)) and w.is_open(at(2026, 12, 2, 3, 59, 59))
    assert not w.is_open(at(2026, 12, 2, 4, 0))
    assert w.next_open(at(2026, 12, 2, 5, 0)) == at(2026, 12, 3, 2, 0)
    assert w.next_open(at(2026, 12, 2, 3, 0)) == at(2026, 12, 2, 3, 0)   # open: now
    assert w.closes_at(at(2026, 12, 2, 3, 0)) == at(2026, 12, 2, 4, 0)
    assert w.closes_at(at(2026, 12, 2, 5, 0)) is None


def test_a_window_over_midnight_is_open_on_both_days() -> None:
    w = MaintenanceWindow.parse("30 23 * * fri", 3 * H, "UTC")   # Friday 23:30 to 02:30
    assert w.is_open(at(2026, 12, 4, 23, 45))   # Friday
    assert w.is_open(at(2026, 12, 5, 2, 0))     # Saturday morning, same window
    assert not w.is_open(at(2026, 12, 5, 23, 45))
    assert w.next_open(at(2026, 12, 5, 3, 0)) == at(2026, 12, 11, 23, 30)


@pytest.mark.parametrize(("cron", "inside", "outside"), [
    ("*/15 * * * *", at(2026, 1, 1, 10, 30), at(2026, 1, 1, 10, 31)),
    ("0,30 9-17 * * mon-fri", at(2026, 12, 2, 9, 30), at(2026, 12, 5, 9, 30)),  # Wed / Sat
    ("0 0 1 jan,jul *", at(2026, 7, 1, 0, 0), at(2026, 8, 1, 0, 0)),
    ("0 12 * * 0", at(2026, 12, 6, 12, 0), at(2026, 12, 7, 12, 0)),    # Sunday as 0
    ("0 12 * * 7", at(2026, 12, 6, 12, 0), at(2026, 12, 7, 12, 0)),    # and as 7
    ("0 3 13 * fri", at(2026, 12, 4, 3, 0), at(2026, 12, 3, 3, 0)),    # 13th OR a Friday
    ("10-50/20 4 * * *", at(2026, 12, 2, 4, 30), at(2026, 12, 2, 4, 40)),
])
def test_cron_forms(cron: str, inside: dt.datetime, outside: dt.datetime) -> None:
    w = MaintenanceWindow.parse(cron, 60, "UTC")   # one minute: open at the opening only
    assert w.is_open(inside) and not w.is_open(outside)


def test_openings_are_wall_clock_times_in_the_zone_across_dst() -> None:
    berlin = MaintenanceWindow.parse("0 2 * * *", H, "Europe/Berlin")
    assert berlin.is_open(at(2026, 1, 15, 1, 0))        # 02:00 CET = 01:00 UTC
    assert berlin.is_open(at(2026, 7, 15, 0, 0))        # 02:00 CEST = 00:00 UTC
    assert not berlin.is_open(at(2026, 7, 15, 1, 30))
    # 29 March 2026: 02:00 does not exist in Berlin; the window opens an hour later by the
    # clocks, 03:00 CEST = 01:00 UTC
    assert berlin.next_open(at(2026, 3, 28, 23, 0)) == at(2026, 3, 29, 1, 0)
    ny = MaintenanceWindow.parse("30 1 * * *", 30 * 60, "America/New_York")
    # 1 November 2026: 01:30 happens twice in New York; the window opens at the first (EDT)
    assert ny.next_open(at(2026, 11, 1, 4, 0)) == at(2026, 11, 1, 5, 30)
    assert ny.is_open(at(2026, 11, 2, 6, 45))           # 01:45 EST the next day


@pytest.mark.parametrize(("cron", "duration", "zone", "message"), [
    ("0 2 * *", H, "UTC", "has 4 fields"),
    ("60 2 * * *", H, "UTC", "minute '60' is out of range 0-59"),
    ("0 24 * * *", H, "UTC", "hour"),
    ("0 2 0 * *", H, "UTC", "day of month"),
    ("0 2 * 13 *", H, "UTC", "month"),
    ("0 2 * * 8", H, "UTC", "day of week"),
    ("0 2 * * funday", H, "UTC", "bad day of week"),
    ("*/0 2 * * *", H, "UTC", "bad minute"),
    ("5-1 2 * * *", H, "UTC", "out of range"),
    ("0 2 30 feb *", H, "UTC", "never fires"),
    ("0 2 * * *", 0, "UTC", "duration 0 s is out of range"),
    ("0 2 * * *", 8 * 24 * H, "UTC", "at most 7 days"),
    ("0 2 * * *", H, "Mars/Olympus", "unknown time zone"),
    ("0 2 * * *", H, "../../etc/passwd", "unknown time zone"),
    ("0 " * 200, H, "UTC", "max_cron_chars"),
])
def test_a_bad_window_is_refused_naming_what_is_wrong(cron: str, duration: int, zone: str,
                                                      message: str) -> None:
    """Input tried: each window in the parameters."""
    with pytest.raises(InvalidArgumentError, match=message):
        MaintenanceWindow.parse(cron, duration, zone)
