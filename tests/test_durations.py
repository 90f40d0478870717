"""Durations as typed on the command line: parse, format, and the inputs refused."""

from __future__ import annotations

import pytest

from controlplane.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("24h", 86400), ("7d", 604800), ("1h30m", 5400),
     ("1d2h3m4s", 93784), ("0s", 0), (" 2H ", 7200), ("90m", 5400)],
)
def test_parse_duration_accepts_units_and_compounds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("", "empty"), ("   ", "empty"), ("10", "no unit"), ("10x", "invalid duration"),
     ("-5m", "invalid duration"), ("1.5h", "invalid duration"), ("m", "invalid duration"),
     ("30m1h", "largest first"), ("1h1h", "largest first"), ("2 h", "invalid duration"),
     ("10m junk", "invalid duration")],
)
def test_parse_duration_refuses_malformed_input(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (600, "10m"), (7200, "2h"), (86400, "1d"), (604800, "7d"),
     (5400, "1h30m"), (93784, "1d2h3m4s")],
)
def test_format_duration_uses_the_largest_exact_units(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_then_parse_gives_back_every_value() -> None:
    for seconds in [*range(0, 7500, 7), 86399, 86400, 86401, 10 * 86400 + 1]:
        assert parse_duration(format_duration(seconds)) == seconds


def test_format_duration_refuses_a_negative_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)
