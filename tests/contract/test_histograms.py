"""protos.contract.histograms: the agent fills windows and the control plane checks them alike."""

from __future__ import annotations

import random

import pytest

from protos.contract import ContractError
from protos.contract.histograms import (
    Histogram,
    add_onto,
    bucket_index,
    check_window,
    quantile,
    quantile_of_many,
)

BOUNDS = (1.0, 2.0, 5.0)


def test_a_value_equal_to_a_bound_counts_in_that_bounds_bucket() -> None:
    assert [bucket_index(BOUNDS, v) for v in (0.5, 1.0, 1.5, 5.0, 9.0)] == [0, 0, 1, 2, 3]


def test_quantiles_interpolate_inside_the_bucket_and_end_at_the_maximum() -> None:
    counts = [0, 10, 0, 0]   # ten values in (1, 2]
    assert quantile(BOUNDS, counts, 1.8, 0.5) == pytest.approx(1.4)
    assert quantile(BOUNDS, counts, 1.8, 1.0) == pytest.approx(1.8)
    assert quantile(BOUNDS, [0, 0, 0, 4], 30.0, 0.5) == pytest.approx(17.5)
    assert quantile(BOUNDS, [0, 0, 0, 0], 0.0, 0.95) == 0.0


def test_a_consistent_window_passes() -> None:
    check_window(BOUNDS, [1, 2, 0, 1], count=4, errors=1, nonfinite=4, latency_sum_ms=9.0,
                 latency_max_ms=6.0)


@pytest.mark.parametrize(
    ("bounds", "counts", "count", "errors", "nonfinite", "total", "peak", "says"), [
        ((2.0, 1.0, 5.0), [0, 0, 0, 1], 1, 0, 0, 1.0, 1.0, "strictly increasing"),
        ((1.0, float("nan"), 5.0), [0, 0, 0, 1], 1, 0, 0, 1.0, 1.0, "finite"),
        ((1.0, float("inf")), [0, 0, 1], 1, 0, 0, 1.0, 1.0, "finite"),
        (BOUNDS, [1, 1, 1], 3, 0, 0, 1.0, 1.0, "needs 4 bucket counts"),
        (BOUNDS, [1, 1, 1, 1], 5, 0, 0, 1.0, 1.0, "sum to 4"),
        (BOUNDS, [1, 1, 1, 1], 4, 5, 0, 1.0, 1.0, "5 errors"),
        (BOUNDS, [1, 1, 1, 1], 4, 0, 5, 1.0, 1.0, "5 inferences with non-finite outputs"),
        (BOUNDS, [1, 1, 1, 1], 4, 0, -1, 1.0, 1.0, "must not be negative"),
        (BOUNDS, [1, 1, 1, 1], 4, 0, 0, float("nan"), 1.0, "latency_sum_ms"),
        (BOUNDS, [1, 1, 1, 1], 4, 0, 0, 1.0, -1.0, "latency_max_ms"),
    ])
def test_windows_whose_figures_disagree_are_refused(bounds, counts, count, errors, nonfinite,
                                                    total, peak, says) -> None:
    """Input tried: unsorted, NaN and infinite bounds, too few counts, counts that do not sum to
    the total, more errors than inferences, more non-finite outputs than inferences, a
    negative nonfinite, a NaN sum, a negative maximum."""
    with pytest.raises(ContractError, match=says):
        check_window(bounds, counts, count=count, errors=errors, nonfinite=nonfinite,
                     latency_sum_ms=total, latency_max_ms=peak)


def test_windows_of_the_same_bounds_merge_by_adding_counts() -> None:
    merged = [1, 2, 0, 1]
    add_onto(merged, [0, 3, 4, 0])
    assert merged == [1, 5, 4, 1]


def test_adding_a_histogram_of_other_bounds_is_refused() -> None:
    """Input tried: a histogram of 3 buckets added onto one of 4."""
    merged = [1, 2, 0, 1]
    with pytest.raises(ContractError, match="bounds differ"):
        add_onto(merged, [1, 1, 1])
    assert merged == [1, 2, 0, 1]   # untouched


def test_the_quantile_of_one_histogram_is_the_quantile_of_many_of_it() -> None:
    """Input tried: 200 random histograms (empty buckets, a maximum below the last bound, all
    in the last bucket) at quantiles 0, 0.5, 0.95 and 1."""
    rng = random.Random(7)
    for _ in range(200):
        counts = [rng.choice((0, 0, 1, 5, 40)) for _ in range(len(BOUNDS) + 1)]
        peak = rng.choice((0.5, 1.5, 4.0, 12.0))
        for q in (0.0, 0.5, 0.95, 1.0):
            assert quantile_of_many([Histogram(BOUNDS, counts, peak)], q) == pytest.approx(
                quantile(BOUNDS, counts, peak, q)), (counts, peak, q)


def test_the_quantile_of_histograms_of_other_bounds_spreads_each_bucket_over_its_range() -> None:
    """Input tried: 10 values in (1, 2] by one layout and 10 in (0, 4] by another, read as one
    distribution: 10 values per ms over (1, 2] plus 2.5 per ms over (0, 4]. By hand: up to
    1 ms 2.5 values; up to 2 ms 2.5 + 10 + 2.5 = 15; the median (rank 10) is at 1 + 7.5/12.5
    = 1.6 ms, the p95 (rank 19) in (2, 4] at 2 + 4/2.5 = 3.6 ms."""
    a = Histogram((1.0, 2.0), [0, 10, 0], 2.0)
    b = Histogram((4.0,), [10, 0], 4.0)
    assert quantile_of_many([a, b], 0.5) == pytest.approx(1.6)
    assert quantile_of_many([a, b], 0.95) == pytest.approx(3.6)
    assert quantile_of_many([b, a], 0.5) == pytest.approx(1.6)   # the order does not matter
    assert quantile_of_many([a, Histogram((4.0,), [0, 0], 0.0)], 0.5) == pytest.approx(1.5)
    assert quantile_of_many([], 0.5) == 0.0
