"""Latency histograms as metric windows carry them (``pb.MetricWindow``).

Layout: ``bounds`` are strictly increasing, finite upper bounds in milliseconds; a value equal to
a bound belongs to that bound's bucket; ``counts`` has one entry per bound plus a last one for
everything above the last bound. The agent fills them (``bucket_index``), the control plane
checks them (``check_window``) before storing, and both read quantiles the same way
(``quantile``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

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
    latency_sum_ms: float,
    latency_max_ms: float,
) -> None:
    """Raises ContractError naming the first way the figures of one window disagree."""
    check_bounds(bounds)
    if len(counts) != len(bounds) + 1:
        raise ContractError(f"a window with {len(bounds)} bucket bounds needs {len(bounds) + 1} "
                            f"bucket counts, got {len(counts)}")
    if any(c < 0 for c in counts) or count < 0 or errors < 0:
        raise ContractError("counts must not be negative")
    if sum(counts) != count:
        raise ContractError(f"bucket counts sum to {sum(counts)}, the window says {count}")
    if errors > count:
        raise ContractError(f"{errors} errors in a window of {count} inferences")
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
