"""Durations as people type them (``90s``, ``10m``, ``2h``, ``1h30m``, ``7d``) and back.

Invariant: ``parse_duration(format_duration(n)) == n`` for every ``n >= 0``, and
``format_duration`` always produces the shortest exact spelling (largest units first).
A bare number is refused rather than guessed: ``10`` could mean seconds or minutes.
"""

from __future__ import annotations

import re

UNIT_SECONDS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "s": 1}

_PART = re.compile(r"(\d+)([dhms])")


def parse_duration(text: str) -> int:
    """Whole seconds of ``text``, e.g. ``"2h"`` -> 7200, ``"1h30m"`` -> 5400.

    Raises ``ValueError`` with a message naming the input for anything else (empty, bare number,
    unknown unit, negative, a unit given twice or out of order).
    """
    spelled = text.strip().lower()
    if not spelled:
        raise ValueError("empty duration: use a number and a unit, e.g. 10m, 2h, 7d")
    if spelled.isdigit():
        raise ValueError(f"duration {text!r} has no unit: write e.g. {spelled}s or {spelled}m")
    position = 0
    total = 0
    previous_unit_seconds: int | None = None
    for match in _PART.finditer(spelled):
        if match.start() != position:
            break
        amount, unit = int(match.group(1)), match.group(2)
        unit_seconds = UNIT_SECONDS[unit]
        # Largest unit first, each once: "30m1h" or "1h1h" is more likely a typo than intent.
        if previous_unit_seconds is not None and unit_seconds >= previous_unit_seconds:
            raise ValueError(f"duration {text!r}: give units once, largest first (e.g. 1h30m)")
        previous_unit_seconds = unit_seconds
        total += amount * unit_seconds
        position = match.end()
    if position != len(spelled):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d), e.g. 10m, 2h, 7d"
        )
    return total


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of ``seconds``: 7200 -> ``"2h"``, 5400 -> ``"1h30m"``."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    if seconds == 0:
        return "0s"
    parts = []
    remaining = seconds
    for unit, unit_seconds in UNIT_SECONDS.items():
        amount, remaining = divmod(remaining, unit_seconds)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
