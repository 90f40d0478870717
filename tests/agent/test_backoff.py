"""The agent's waits: jittered sync intervals and exponential backoff while the server is away."""

from __future__ import annotations

import random

import pytest

from agent.backoff import Backoff, jittered


def test_jittered_stays_within_the_band_and_actually_spreads() -> None:
    rng = random.Random(7)
    waits = [jittered(30.0, 0.2, rng) for _ in range(2000)]
    assert min(waits) >= 24.0 and max(waits) <= 36.0
    # Spread, not a constant: devices that start together drift apart.
    assert max(waits) - min(waits) > 10.0
    assert len({round(w, 6) for w in waits}) > 1900


def test_jittered_never_returns_a_negative_wait() -> None:
    """Input: a jitter wider than the interval itself (1.5): the wait clamps at zero."""
    rng = random.Random(1)
    assert all(jittered(10.0, 1.5, rng) >= 0.0 for _ in range(500))


def test_backoff_doubles_up_to_the_cap_then_resets() -> None:
    b = Backoff(1.0, 60.0, 0.0)
    assert [b.next_delay() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert b.failures == 8
    b.reset()
    assert b.failures == 0
    assert b.next_delay() == 1.0


def test_backoff_jitter_stays_below_the_cap_after_a_long_outage() -> None:
    """Input: ten thousand consecutive failures: no overflow, every wait within [cap*(1-j), cap]."""
    b = Backoff(0.5, 300.0, 0.25, random.Random(3))
    delays = [b.next_delay() for _ in range(10_000)]
    assert all(d <= 300.0 for d in delays)
    assert all(d >= 225.0 for d in delays[20:])
    assert len({round(d, 6) for d in delays[20:]}) > 100  # still jittered at the cap


@pytest.mark.parametrize("failures", [0, 1, 5])
def test_backoff_jitter_band_per_step(failures: int) -> None:
    rng = random.Random(failures)
    for _ in range(200):
        b = Backoff(2.0, 1000.0, 0.1, rng)
        for _ in range(failures):
            b.next_delay()
        base = 2.0 * 2**failures
        assert base * 0.9 <= b.next_delay() <= base * 1.1
