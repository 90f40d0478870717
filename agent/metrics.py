"""Per-model inference measurements, aggregated into windows the agent reports.

Invariants:
- Every inference is counted exactly once, in the window open when it finished; a window that
  saw no inference for a model produces no record.
- A window's ``window_id`` (a fresh UUID) is fixed when it opens, at the first inference for its
  model ref in that window, and never changes: a checkpoint of the open window
  (``agent.checkpoint``), the record it closes into and every re-send of that record carry the
  same id, so the server, which keeps a window once per (device, window id), never counts an
  inference twice.
- The recorder holds only the open windows: closing hands the records to the caller (the
  reporter puts them in ``agent.metrics_buffer``). ``generation`` changes whenever the open
  windows do, so a checkpoint is written only when there is something new to write.
- Thread-safe: request threads record while the sync thread closes windows and the checkpoint
  thread reads them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.refs import ModelRef
from agent.settings import AgentSettings
from protos import edgefleet_pb2 as pb
from protos.contract.histograms import bucket_index, quantile


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    count: int = 0
    errors: int = 0
    nonfinite: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def add(self, latency_ms: float, ok: bool, finite: bool) -> None:
        self.counts[bucket_index(self.bounds, latency_ms)] += 1
        self.count += 1
        self.errors += 0 if ok else 1
        self.nonfinite += 0 if finite else 1
        self.latency_sum_ms += latency_ms
        self.latency_max_ms = max(self.latency_max_ms, latency_ms)

    def quantile(self, q: float) -> float:
        """Latency at quantile ``q``, read the way the control plane reads it."""
        return quantile(self.bounds, self.counts, self.latency_max_ms, q)


@dataclass
class _OpenWindow(_Histogram):
    """One model ref's histogram in the open window, with the id it was given when it opened."""

    window_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_record(self, ref: ModelRef, start: float, end: float) -> MetricWindowRecord:
        """What this window holds so far, as a record from ``start`` to ``end``."""
        return MetricWindowRecord(
            window_id=self.window_id,
            ref=ref,
            start=_utc(start),
            end=_utc(max(start, end)),   # a wall clock set back must not end it before it began
            count=self.count,
            errors=self.errors,
            nonfinite=self.nonfinite,
            bucket_bounds_ms=self.bounds,
            bucket_counts=tuple(self.counts),
            latency_sum_ms=self.latency_sum_ms,
            latency_max_ms=self.latency_max_ms,
        )


@dataclass(frozen=True)
class MetricWindowRecord:
    """One window for one model variant; shaped like ``pb.MetricWindow``."""

    window_id: str
    ref: ModelRef
    start: datetime
    end: datetime
    count: int
    errors: int
    nonfinite: int
    bucket_bounds_ms: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    latency_sum_ms: float
    latency_max_ms: float

    @property
    def routine(self) -> bool:
        """No failed inference and no NaN/Inf output: the first to go when space runs out."""
        return self.errors == 0 and self.nonfinite == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for the agent's data dir (see ``from_dict``)."""
        doc = dataclasses.asdict(self)
        doc["start"], doc["end"] = self.start.isoformat(), self.end.isoformat()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MetricWindowRecord:
        """Inverse of ``to_dict``; raises KeyError, TypeError or ValueError on a malformed doc.

        A doc written before windows counted NaN/Inf outputs has no ``nonfinite``: read as 0.
        """
        return cls(
            window_id=str(doc["window_id"]),
            ref=ModelRef(**doc["ref"]),
            start=datetime.fromisoformat(doc["start"]),
            end=datetime.fromisoformat(doc["end"]),
            count=int(doc["count"]),
            errors=int(doc["errors"]),
            nonfinite=int(doc.get("nonfinite", 0)),
            bucket_bounds_ms=tuple(float(b) for b in doc["bucket_bounds_ms"]),
            bucket_counts=tuple(int(c) for c in doc["bucket_counts"]),
            latency_sum_ms=float(doc["latency_sum_ms"]),
            latency_max_ms=float(doc["latency_max_ms"]),
        )

    def to_proto(self) -> pb.MetricWindow:
        window = pb.MetricWindow(
            window_id=self.window_id,
            ref=self.ref.to_proto(),
            count=self.count,
            errors=self.errors,
            nonfinite=self.nonfinite,
            bucket_bounds_ms=list(self.bucket_bounds_ms),
            bucket_counts=list(self.bucket_counts),
            latency_sum_ms=self.latency_sum_ms,
            latency_max_ms=self.latency_max_ms,
        )
        window.start.FromDatetime(self.start)
        window.end.FromDatetime(self.end)
        return window


@dataclass(frozen=True)
class ModelStats:
    """Totals since the agent started, for the local status document."""

    inferences: int
    errors: int
    nonfinite: int
    latency_p50_ms: float
    latency_p95_ms: float


class MetricsRecorder:
    """Records inferences into the open window; closes it on a timer the caller drives."""

    def __init__(
        self, settings: AgentSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._current: dict[ModelRef, _OpenWindow] = {}
        self._totals: dict[ModelRef, _Histogram] = {}
        self._generation = 0

    def record(self, ref: ModelRef, latency_ms: float, *, ok: bool = True,
               finite: bool = True) -> None:
        """One inference: ``ok`` False when it failed, ``finite`` False when it answered with
        NaN or Inf in an output."""
        bounds = self._settings.latency_buckets_ms
        with self._lock:
            # Looked up before made: the window's id is drawn once, at its first inference.
            if (window := self._current.get(ref)) is None:
                window = self._current[ref] = _OpenWindow(bounds)
            if (total := self._totals.get(ref)) is None:
                total = self._totals[ref] = _Histogram(bounds)
            window.add(latency_ms, ok, finite)
            total.add(latency_ms, ok, finite)
            self._generation += 1

    def close_due_window(self) -> list[MetricWindowRecord]:
        """Close the open window if ``metrics_window_seconds`` passed; returns its records."""
        if self._clock() - self._window_start < self._settings.metrics_window_seconds:
            return []
        return self.close_window()

    def close_window(self) -> list[MetricWindowRecord]:
        """Close the open window now; returns one record per model that ran in it, with the ids
        it opened with. The caller owns them from here: the recorder forgets them."""
        now = self._clock()
        with self._lock:
            start, self._window_start = self._window_start, now
            current, self._current = self._current, {}
            if current:
                self._generation += 1
            return [w.as_record(ref, start, now) for ref, w in current.items()]

    def open_windows(self) -> tuple[int, list[MetricWindowRecord]]:
        """The open window as it would close now (ids included) and the ``generation`` it is
        at: the same generation means the same content."""
        now = self._clock()
        with self._lock:
            return self._generation, [w.as_record(ref, self._window_start, now)
                                      for ref, w in self._current.items()]

    def stats(self, ref: ModelRef) -> ModelStats:
        with self._lock:
            h = self._totals.get(ref)
            if h is None:
                return ModelStats(0, 0, 0, 0.0, 0.0)
            return ModelStats(h.count, h.errors, h.nonfinite, h.quantile(0.5), h.quantile(0.95))


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)
