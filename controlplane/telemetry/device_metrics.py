"""What arrived from one device: its metric windows summed per (model, version, variant) it
reported, for ``GetDevice``.

Invariants:
- Bounded: at most ``device_metrics_max_windows`` of the device's windows are read, its most
  recent by end (then by id, so the cut is the same on every read); ``DeviceMetrics.truncated``
  says when it has older ones, which are in none of the figures.
- One query, whatever the number of variants (served by ``ix_metric_windows_device_id_end``).
- Counts are sums over the windows read, saturating at ``MAX_INT64`` (each window's count is
  at most that, a thousand of them are not: a device must not break its own GetDevice).
- Latency quantiles come from the windows' merged histograms (``telemetry.window_sum``); None
  when the windows held no inference.
- Variants in the order model, version, variant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.telemetry.models import MetricWindow
from controlplane.telemetry.window_sum import WINDOW_COLUMNS, WindowSum
from controlplane.validation import MAX_INT64


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


def read_device_metrics(session: Session, device_id: str, *, settings: Settings) -> DeviceMetrics:
    """The device's most recent windows (at most ``device_metrics_max_windows``) summed per
    (model, version, variant); no variants when it reported none."""
    cap = settings.device_metrics_max_windows
    rows = session.execute(
        sa.select(MetricWindow.model_name, MetricWindow.version, MetricWindow.variant,
                  *WINDOW_COLUMNS)
        .where(MetricWindow.device_id == device_id)
        .order_by(MetricWindow.end.desc(), MetricWindow.window_id.desc())
        .limit(cap + 1)     # one more than is summed: whether older windows exist
    ).all()
    sums: dict[tuple[str, str, str], WindowSum] = {}
    for w in rows[:cap]:
        sums.setdefault((w.model_name, w.version, w.variant), WindowSum()).add(w)
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
