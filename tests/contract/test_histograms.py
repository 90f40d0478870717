"""protos.contract.histograms: the agent fills windows and the control plane checks them alike."""

from __future__ import annotations

import pytest

from protos.contract import ContractError
from protos.contract.histograms import bucket_index, check_window, quantile

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
    check_window(BOUNDS, [1, 2, 0, 1], count=4, errors=1, latency_sum_ms=9.0, latency_max_ms=6.0)


@pytest.mark.parametrize(("bounds", "counts", "count", "errors", "total", "peak", "says"), [
    ((2.0, 1.0, 5.0), [0, 0, 0, 1], 1, 0, 1.0, 1.0, "strictly increasing"),
    ((1.0, float("nan"), 5.0), [0, 0, 0, 1], 1, 0, 1.0, 1.0, "finite"),
    ((1.0, float("inf")), [0, 0, 1], 1, 0, 1.0, 1.0, "finite"),
    (BOUNDS, [1, 1, 1], 3, 0, 1.0, 1.0, "needs 4 bucket counts"),
    (BOUNDS, [1, 1, 1, 1], 5, 0, 1.0, 1.0, "sum to 4"),
    (BOUNDS, [1, 1, 1, 1], 4, 5, 1.0, 1.0, "5 errors"),
    (BOUNDS, [1, 1, 1, 1], 4, 0, float("nan"), 1.0, "latency_sum_ms"),
    (BOUNDS, [1, 1, 1, 1], 4, 0, 1.0, -1.0, "latency_max_ms"),
])
def test_windows_whose_figures_disagree_are_refused(bounds, counts, count, errors, total, peak,
                                                    says) -> None:
    """Input tried: unsorted, NaN and infinite bounds, too few counts, counts that do not sum to
    the total, more errors than inferences, a NaN sum, a negative maximum."""
    with pytest.raises(ContractError, match=says):
        check_window(bounds, counts, count=count, errors=errors, latency_sum_ms=total,
                     latency_max_ms=peak)
