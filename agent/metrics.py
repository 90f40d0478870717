"""Per-model inference measurements, aggregated into windows the agent reports.

Invariants:
- Every inference is counted exactly once, in the window open when it finished; a window that
  saw no inference for a model produces no record.
- A closed window gets a fresh UUID ``window_id`` and keeps it until the server acknowledged it:
  a report that failed is sent again with the same ids, so the server can de-duplicate.
- The queue of unacknowledged windows is bounded (``max_buffered_windows``): when full, the
  oldest window is dropped and counted in ``dropped``.
- Thread-safe: request threads record while the sync thread closes and drains windows.
- Unacknowledged windows outlive a restart: the daemon keeps them in the data dir
  (``AgentStore.write_pending_windows``) and ``restore``s them, ids unchanged.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
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


@dataclass(frozen=True)
class MetricWindowRecord:
    """One closed window for one model variant; shaped like ``pb.MetricWindow``."""

    window_id: str
    ref: ModelRef
    start: datetime
    end: datetime
    count: int
    errors: int
    bucket_bounds_ms: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    latency_sum_ms: float
    latency_max_ms: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for the agent's data dir (see ``from_dict``)."""
        doc = dataclasses.asdict(self)
        doc["start"], doc["end"] = self.start.isoformat(), self.end.isoformat()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MetricWindowRecord:
        """Inverse of ``to_dict``; raises KeyError, TypeError or ValueError on a malformed doc."""
        return cls(
            window_id=str(doc["window_id"]),
            ref=ModelRef(**doc["ref"]),
            start=datetime.fromisoformat(doc["start"]),
            end=datetime.fromisoformat(doc["end"]),
            count=int(doc["count"]),
            errors=int(doc["errors"]),
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
    """Records inferences, closes windows on a timer the caller drives, buffers them."""

    def __init__(
        self, settings: AgentSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._current: dict[ModelRef, _Histogram] = {}
        self._totals: dict[ModelRef, _Histogram] = {}
        self._queue: OrderedDict[str, MetricWindowRecord] = OrderedDict()
        self.dropped = 0

    def record(self, ref: ModelRef, latency_ms: float, *, ok: bool = True,
               finite: bool = True) -> None:
        """One inference: ``ok`` False when it failed, ``finite`` False when it answered with
        NaN or Inf in an output."""
        bounds = self._settings.latency_buckets_ms
        with self._lock:
            for table in (self._current, self._totals):
                table.setdefault(ref, _Histogram(bounds)).add(latency_ms, ok, finite)

    def close_due_window(self) -> int:
        """Close the open window if ``metrics_window_seconds`` passed; returns records queued."""
        if self._clock() - self._window_start < self._settings.metrics_window_seconds:
            return 0
        return self.close_window()

    def close_window(self) -> int:
        """Close the open window now and queue one record per model that ran; returns how many."""
        now = self._clock()
        with self._lock:
            start, self._window_start = self._window_start, now
            current, self._current = self._current, {}
            for ref, h in current.items():
                record = MetricWindowRecord(
                    window_id=str(uuid.uuid4()),
                    ref=ref,
                    start=_utc(start),
                    end=_utc(now),
                    count=h.count,
                    errors=h.errors,
                    bucket_bounds_ms=h.bounds,
                    bucket_counts=tuple(h.counts),
                    latency_sum_ms=h.latency_sum_ms,
                    latency_max_ms=h.latency_max_ms,
                )
                self._queue[record.window_id] = record
            while len(self._queue) > self._settings.max_buffered_windows:
                self._queue.popitem(last=False)
                self.dropped += 1
            return len(current)

    def restore(self, records: Iterable[MetricWindowRecord]) -> None:
        """Queue windows an earlier run closed but never got acknowledged (ahead of new ones,
        with their ids, so the server counts each once)."""
        with self._lock:
            newer = list(self._queue.items())
            self._queue = OrderedDict((r.window_id, r) for r in records)
            self._queue.update(newer)
            while len(self._queue) > self._settings.max_buffered_windows:
                self._queue.popitem(last=False)
                self.dropped += 1

    def pending(self, limit: int | None = None) -> list[MetricWindowRecord]:
        """Unacknowledged windows, oldest first."""
        with self._lock:
            records = list(self._queue.values())
        return records if limit is None else records[:limit]

    def acknowledge(self, window_ids: Iterable[str]) -> None:
        """Forget windows the server accepted (or already had)."""
        with self._lock:
            for window_id in window_ids:
                self._queue.pop(window_id, None)

    def stats(self, ref: ModelRef) -> ModelStats:
        with self._lock:
            h = self._totals.get(ref)
            if h is None:
                return ModelStats(0, 0, 0, 0.0, 0.0)
            return ModelStats(h.count, h.errors, h.nonfinite, h.quantile(0.5), h.quantile(0.95))


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)
