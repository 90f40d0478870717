"""What arrived from one device: its metric windows summed per (model, version, variant) it
reported, for ``GetDevice``.

Invariants:
- Bounded: at most ``device_metrics_max_windows`` of the device's windows are read, its most
  recent by end (then by id, so the cut is the same on every read); ``DeviceMetrics.truncated``
  says when it has older ones, which are in none of the figures.
- One query, whatever the number of variants (served by ``ix_metric_windows_device_id_end``).
- Counts are sums over the windows read, saturating at ``MAX_INT64`` (each window's count is
  at most that, a thousand of them are not: a device must not break its own GetDevice).
- Latency quantiles come from the windows' histograms: windows of the same bounds merged by
  adding counts (``histograms.add_onto``), windows of other bounds (an agent whose buckets
  changed) read with them as one distribution (``histograms.quantile_of_many``), so no window
  is left out of a quantile and no bucket is read against another's bounds. None when the
  windows held no inference.
- Variants in the order model, version, variant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.telemetry.models import MetricWindow
from controlplane.validation import MAX_INT64
from protos.contract.histograms import Histogram, add_onto, quantile_of_many


@dataclass(frozen=True)
class ModelMetrics:
    """The windows of one (model, version, variant) summed."""

    model: str
    version: str
    variant: str
    windows: int
    inferences: int
    errors: int
    nonfinite: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    first_window_start: dt.datetime
    last_window_end: dt.datetime


@dataclass(frozen=True)
class DeviceMetrics:
    """A device's figures, and how many windows they are from: ``windows_considered`` of at most
    ``max_windows``; ``truncated`` when the device has more, older ones."""

    models: tuple[ModelMetrics, ...]
    windows_considered: int
    truncated: bool
    max_windows: int


@dataclass
class _Sum:
    windows: int = 0
    inferences: int = 0
    errors: int = 0
    nonfinite: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    # bucket bounds -> (merged counts, the largest maximum of the windows merged)
    histograms: dict[tuple[float, ...], tuple[list[int], float]] = field(default_factory=dict)

    def add(self, w: Any) -> None:
        """Count in one row of ``read_device_metrics``'s query."""
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


def read_device_metrics(session: Session, device_id: str, *, settings: Settings) -> DeviceMetrics:
    """The device's most recent windows (at most ``device_metrics_max_windows``) summed per
    (model, version, variant); no variants when it reported none."""
    cap = settings.device_metrics_max_windows
    rows = session.execute(
        sa.select(MetricWindow.model_name, MetricWindow.version, MetricWindow.variant,
                  MetricWindow.start, MetricWindow.end,
                  MetricWindow.count.label("inferences"), MetricWindow.errors,
                  MetricWindow.nonfinite, MetricWindow.bucket_bounds_ms,
                  MetricWindow.bucket_counts, MetricWindow.latency_max_ms)
        .where(MetricWindow.device_id == device_id)
        .order_by(MetricWindow.end.desc(), MetricWindow.window_id.desc())
        .limit(cap + 1)     # one more than is summed: whether older windows exist
    ).all()
    sums: dict[tuple[str, str, str], _Sum] = {}
    for w in rows[:cap]:
        sums.setdefault((w.model_name, w.version, w.variant), _Sum()).add(w)
    models = tuple(
        ModelMetrics(model=model, version=version, variant=variant, windows=s.windows,
                     inferences=min(s.inferences, MAX_INT64), errors=min(s.errors, MAX_INT64),
                     nonfinite=min(s.nonfinite, MAX_INT64),
                     latency_p50_ms=s.quantile(0.5), latency_p95_ms=s.quantile(0.95),
                     first_window_start=s.first, last_window_end=s.last)
        for (model, version, variant), s in sorted(sums.items())
        if s.first is not None and s.last is not None
    )
    return DeviceMetrics(models=models, windows_considered=min(len(rows), cap),
                         truncated=len(rows) > cap, max_windows=cap)
