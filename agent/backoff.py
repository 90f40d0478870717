"""Jittered waits: the sync interval and exponential backoff share one jitter rule.

Jitter spreads thousands of devices over time so they do not hit the server in lockstep after an
outage; every wait returned here is scaled by a factor drawn uniformly from ``1 +- jitter``.
"""

from __future__ import annotations

import random


def jittered(seconds: float, jitter: float, rng: random.Random | None = None) -> float:
    """``seconds`` scaled by a uniform factor in ``[1 - jitter, 1 + jitter]``."""
    r = rng or random
    return max(0.0, seconds * (1.0 + r.uniform(-jitter, jitter)))


class Backoff:
    """Exponential backoff between ``minimum`` and ``maximum`` seconds, jittered.

    Not thread-safe: each retry loop owns its own instance.
    """

    def __init__(
        self, minimum: float, maximum: float, jitter: float, rng: random.Random | None = None
    ) -> None:
        self._min = minimum
        self._max = maximum
        self._jitter = jitter
        self._rng = rng
        self._failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last ``reset()``."""
        return self._failures

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before the next attempt."""
        base = min(self._max, self._min * (2 ** min(self._failures, 32)))
        self._failures += 1
        return min(self._max, jittered(base, self._jitter, self._rng))

    def reset(self) -> None:
        self._failures = 0
