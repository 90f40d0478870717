"""Latency histograms as metric windows carry them (``pb.MetricWindow``).

Layout: ``bounds`` are strictly increasing, finite upper bounds in milliseconds; a value equal to
a bound belongs to that bound's bucket; ``counts`` has one entry per bound plus a last one for
everything above the last bound. The agent fills them (``bucket_index``), the control plane
checks them (``check_window``) before storing, and both read quantiles the same way
(``quantile``).

Reading many windows at once (the control plane's per-device figures): windows with the same
bounds merge exactly by adding their counts (``add_onto``; the merged last bucket ends at the
largest maximum). Windows with other bounds cannot be re-bucketed without guessing, so
``quantile_of_many`` reads them as one distribution instead: each bucket's count spread evenly
over its range, exactly as ``quantile`` reads one histogram, and the quantile taken of the sum.
For one histogram the two agree.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from protos.contract.errors import ContractError


def bucket_index(bounds: Sequence[float], value_ms: float) -> int:
    """The bucket ``value_ms`` is counted in."""
    return bisect.bisect_left(bounds, value_ms)


def check_bounds(bounds: Sequence[float]) -> None:
    """Raises ContractError unless ``bounds`` are finite, non-negative and strictly increasing."""
    if not all(isinstance(b, int | float) and math.isfinite(b) and b >= 0 for b in bounds):
        raise ContractError("bucket bounds must be finite, non-negative numbers")
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ContractError("bucket bounds must be strictly increasing")


def check_window(
    bounds: Sequence[float],
    counts: Sequence[int],
    *,
    count: int,
    errors: int,
    nonfinite: int,
    latency_sum_ms: float,
    latency_max_ms: float,
) -> None:
    """Raises ContractError naming the first way the figures of one window disagree.

    ``nonfinite`` (inferences whose outputs held NaN or Inf) and ``errors`` are each a part of
    ``count``: an inference may be both (they are counted apart, not summed)."""
    check_bounds(bounds)
    if len(counts) != len(bounds) + 1:
        raise ContractError(f"a window with {len(bounds)} bucket bounds needs {len(bounds) + 1} "
                            f"bucket counts, got {len(counts)}")
    if any(c < 0 for c in counts) or count < 0 or errors < 0 or nonfinite < 0:
        raise ContractError("counts must not be negative")
    if sum(counts) != count:
        raise ContractError(f"bucket counts sum to {sum(counts)}, the window says {count}")
    if errors > count:
        raise ContractError(f"{errors} errors in a window of {count} inferences")
    if nonfinite > count:
        raise ContractError(f"{nonfinite} inferences with non-finite outputs (nonfinite) in a "
                            f"window of {count} inferences")
    for name, value in (("latency_sum_ms", latency_sum_ms), ("latency_max_ms", latency_max_ms)):
        if not math.isfinite(value) or value < 0:
            raise ContractError(f"{name} must be a finite, non-negative number, got {value}")


def quantile(bounds: Sequence[float], counts: Sequence[int], max_ms: float, q: float) -> float:
    """Latency at quantile ``q`` (0..1), interpolated inside the bucket that holds it; the last
    bucket ends at ``max_ms``. 0.0 for an empty histogram."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = bounds[i - 1] if i > 0 else 0.0
            upper = bounds[i] if i < len(bounds) else max_ms
            upper = min(upper, max_ms)
            lower = min(lower, upper)
            return lower + (upper - lower) * max(0.0, rank - seen) / n
        seen += n
    return max_ms


def add_onto(into: list[int], counts: Sequence[int]) -> None:
    """Add ``counts`` bucket by bucket onto ``into``: merging two histograms of the same bounds.
    Raises ContractError when the two have different numbers of buckets (other bounds)."""
    if len(into) != len(counts):
        raise ContractError(f"cannot add a histogram of {len(counts)} buckets onto one of "
                            f"{len(into)}: their bounds differ")
    for i, n in enumerate(counts):
        into[i] += n


class Histogram(NamedTuple):
    """One histogram as ``quantile`` reads it: bounds, counts, and where its last bucket ends."""

    bounds: Sequence[float]
    counts: Sequence[int]
    max_ms: float


def quantile_of_many(histograms: Sequence[Histogram], q: float) -> float:
    """Latency at quantile ``q`` (0..1) of several histograms, whatever their bounds, read as
    one distribution: each bucket's count spread evenly over the range ``quantile`` gives it
    (a bucket narrowed to nothing by its maximum is a point). Equal to ``quantile`` for one
    histogram; 0.0 when they are all empty. O(b log b) in the b buckets given."""
    density_change: defaultdict[float, float] = defaultdict(float)
    point_mass: defaultdict[float, int] = defaultdict(int)
    total = 0
    for h in histograms:
        for i, n in enumerate(h.counts):
            if not n:
                continue
            upper = min(h.bounds[i] if i < len(h.bounds) else h.max_ms, h.max_ms)
            lower = min(h.bounds[i - 1] if i > 0 else 0.0, upper)
            total += n
            if upper > lower:
                density_change[lower] += n / (upper - lower)
                density_change[upper] -= n / (upper - lower)
            else:
                point_mass[lower] += n
    if total == 0:
        return 0.0
    rank = q * total
    seen, density, previous = 0.0, 0.0, None
    points = sorted(density_change.keys() | point_mass.keys())
    for x in points:
        if previous is not None and density > 0:
            reached = seen + density * (x - previous)
            if reached >= rank:
                return min(x, previous + max(0.0, rank - seen) / density)
            seen = reached
        if point_mass[x] and seen + point_mass[x] >= rank:
            return x
        seen += point_mass[x]
        density += density_change[x]
        previous = x
    return points[-1]   # rounding left the rank a hair above the total: the largest value
