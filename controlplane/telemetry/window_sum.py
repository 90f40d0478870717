"""Metric windows summed: counts added, histograms merged, quantiles read from the merge.

Used wherever windows are summed (``device_metrics`` per device, ``class_metrics`` per hardware
class), so both read quantiles the same way: windows of the same bucket bounds merged by adding
counts (``histograms.add_onto``), windows of other bounds read with them as one distribution
(``histograms.quantile_of_many``), so no window is left out of a quantile and no bucket is read
against another's bounds. A quantile is None when the windows held no inference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controlplane.telemetry.models import MetricWindow
from protos.contract.histograms import Histogram, add_onto, quantile_of_many

# The columns ``WindowSum.add`` reads, for a query's select list.
WINDOW_COLUMNS = (MetricWindow.start, MetricWindow.end, MetricWindow.count.label("inferences"),
                  MetricWindow.errors, MetricWindow.nonfinite, MetricWindow.bucket_bounds_ms,
                  MetricWindow.bucket_counts, MetricWindow.latency_max_ms)


@dataclass
class WindowSum:
    windows: int = 0
    inferences: int = 0
    errors: int = 0
    nonfinite: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    # bucket bounds -> (merged counts, the largest maximum of the windows merged)
    histograms: dict[tuple[float, ...], tuple[list[int], float]] = field(default_factory=dict)

    def add(self, w: Any) -> None:
        """Count in one window row (the columns ``WINDOW_COLUMNS`` names, ``count`` as
        ``inferences``)."""
        self.windows += 1
        self.inferences += w.inferences
        self.errors += w.errors
        self.nonfinite += w.nonfinite
        self.first = w.start if self.first is None else min(self.first, w.start)
        self.last = w.end if self.last is None else max(self.last, w.end)
        bounds = tuple(w.bucket_bounds_ms)
        merged = self.histograms.get(bounds)
        if merged is None:
            self.histograms[bounds] = (list(w.bucket_counts), w.latency_max_ms)
        else:
            add_onto(merged[0], w.bucket_counts)
            self.histograms[bounds] = (merged[0], max(merged[1], w.latency_max_ms))

    def quantile(self, q: float) -> float | None:
        if self.inferences == 0:
            return None
        return quantile_of_many([Histogram(bounds, counts, peak) for bounds, (counts, peak)
                                 in self.histograms.items()], q)
