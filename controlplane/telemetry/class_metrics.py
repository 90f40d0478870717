"""What devices of each hardware class reported for one model version, per variant: the
figures ``model show --by-class`` shows and selection's per-class latency (``class_latencies``).

Invariants:
- A window counts for the class its device had when the window arrived (``MetricWindow.
  hardware_class``, stamped at ingest): a device whose profile changed adds to its new class
  from then on. Windows of no class (stored before classes existed) are left out.
- Bounded: at most ``class_metrics_max_windows`` of the version's windows are read, its most
  recent; ``ClassMetrics.truncated`` says when older ones exist. One query, indexed by
  (model, version, class).
- Counts saturate at ``MAX_INT64``; quantiles as ``telemetry.window_sum`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.fleet.models import HardwareProfile
from controlplane.fleet.selection import ClassLatency
from controlplane.registry.models import ModelVersion
from controlplane.telemetry.models import MetricWindow
from controlplane.telemetry.window_sum import WINDOW_COLUMNS, WindowSum
from controlplane.validation import MAX_INT64


@dataclass(frozen=True)
class ClassVariantMetrics:
    hardware_class: str
    class_name: str
    variant: str
    devices: int
    windows: int
    inferences: int
    errors: int
    nonfinite: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class ClassMetrics:
    rows: tuple[ClassVariantMetrics, ...]
    windows_considered: int
    truncated: bool
    max_windows: int


def read_class_metrics(session: Session, model: str, version: str, *, settings: Settings,
                       hardware_class: str = "") -> ClassMetrics:
    """The version's most recent windows summed per (class, variant), by class name then
    variant; only ``hardware_class``'s when it is given."""
    cap = settings.class_metrics_max_windows
    query = (sa.select(MetricWindow.hardware_class, MetricWindow.variant,
                       MetricWindow.device_id, *WINDOW_COLUMNS)
             .where(MetricWindow.model_name == model, MetricWindow.version == version,
                    MetricWindow.hardware_class != ""))
    if hardware_class:
        query = query.where(MetricWindow.hardware_class == hardware_class)
    rows = session.execute(query.order_by(MetricWindow.end.desc(),
                                          MetricWindow.window_id.desc()).limit(cap + 1)).all()
    sums: dict[tuple[str, str], WindowSum] = {}
    devices: dict[tuple[str, str], set[str]] = {}
    for w in rows[:cap]:
        key = (w.hardware_class, w.variant)
        sums.setdefault(key, WindowSum()).add(w)
        devices.setdefault(key, set()).add(w.device_id)
    names = _class_names(session, {c for c, _ in sums})
    out = tuple(sorted(
        (ClassVariantMetrics(
            hardware_class=c, class_name=names.get(c, ""), variant=v,
            devices=len(devices[(c, v)]), windows=s.windows,
            inferences=min(s.inferences, MAX_INT64), errors=min(s.errors, MAX_INT64),
            nonfinite=min(s.nonfinite, MAX_INT64),
            latency_p50_ms=s.quantile(0.5), latency_p95_ms=s.quantile(0.95))
         for (c, v), s in sums.items()),
        key=lambda m: (m.class_name or m.hardware_class, m.variant)))
    return ClassMetrics(out, windows_considered=min(len(rows), cap), truncated=len(rows) > cap,
                        max_windows=cap)


def class_latencies(session: Session, mv: ModelVersion, hardware_class: str, *,
                    settings: Settings) -> dict[str, ClassLatency]:
    """Variant id -> the p50 devices of ``hardware_class`` reported for it (selection input)."""
    if not hardware_class:
        return {}
    by_kind = {v.kind: v.id for v in mv.variants}
    figures = read_class_metrics(session, mv.model.name, mv.version, settings=settings,
                                 hardware_class=hardware_class)
    return {by_kind[m.variant]: ClassLatency(m.latency_p50_ms, m.inferences)
            for m in figures.rows if m.variant in by_kind and m.latency_p50_ms is not None}


def _class_names(session: Session, keys: set[str]) -> dict[str, str]:
    if not keys:
        return {}
    return dict(session.execute(
        sa.select(HardwareProfile.hardware_class, sa.func.max(HardwareProfile.class_name))
        .where(HardwareProfile.hardware_class.in_(keys))
        .group_by(HardwareProfile.hardware_class)).all())
