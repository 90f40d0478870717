"""Metric windows: histogram contents, ids fixed when a window opens, the open window as a
checkpoint sees it, the stored form."""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent.metrics import MetricsRecorder, MetricWindowRecord
from agent.refs import ModelRef
from agent.settings import AgentSettings

REF_A = ModelRef("face", "1.0.0", "float32", "a" * 64)
REF_B = ModelRef("face", "1.1.0", "full_int8", "b" * 64)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def recorder(**settings: Any) -> tuple[MetricsRecorder, FakeClock]:
    clock = FakeClock()
    base = {"metrics_window_seconds": 10.0, "latency_buckets_ms": (1.0, 5.0, 10.0)}
    return MetricsRecorder(AgentSettings(**{**base, **settings}), clock=clock), clock


def test_window_holds_histogram_errors_sum_and_max_per_model():
    metrics, clock = recorder()
    for latency in (0.5, 1.0, 3.0, 7.0, 50.0):
        metrics.record(REF_A, latency)
    metrics.record(REF_A, 2.0, ok=False)
    metrics.record(REF_B, 4.0, finite=False)
    clock.now += 10
    windows = {w.ref: w for w in metrics.close_due_window()}
    assert len(windows) == 2
    a = windows[REF_A]
    # Upper bounds are inclusive: 1.0 falls in the first bucket.
    assert a.bucket_counts == (2, 2, 1, 1)
    assert (a.count, a.errors, a.latency_sum_ms, a.latency_max_ms) == (6, 1, 63.5, 50.0)
    assert (a.end - a.start).total_seconds() == 10
    uuid.UUID(a.window_id)
    assert windows[REF_B].count == 1 and windows[REF_A].window_id != windows[REF_B].window_id
    assert (a.nonfinite, windows[REF_B].nonfinite) == (0, 1)
    assert not a.routine and not windows[REF_B].routine   # an error; a NaN answer
    assert windows[REF_B].to_proto().nonfinite == 1
    proto = a.to_proto()
    assert list(proto.bucket_counts) == [2, 2, 1, 1] and list(proto.bucket_bounds_ms) == [1, 5, 10]
    assert proto.ref.sha256 == REF_A.sha256
    assert proto.end.ToSeconds() - proto.start.ToSeconds() == 10


def test_window_is_not_closed_early_and_empty_windows_produce_nothing():
    metrics, clock = recorder()
    metrics.record(REF_A, 1.0)
    clock.now += 9.9
    assert metrics.close_due_window() == []
    clock.now += 0.1
    assert len(metrics.close_due_window()) == 1
    clock.now += 10
    assert metrics.close_due_window() == []


def test_a_window_id_is_fixed_at_its_first_inference_and_the_next_window_gets_a_new_one():
    """Input tried: the open window read (as the checkpoint reads it) after one inference and
    again after three more, then closed: every view carries the id it opened with."""
    metrics, clock = recorder()
    _, empty = metrics.open_windows()
    assert empty == []
    metrics.record(REF_A, 1.0)
    _, (first,) = metrics.open_windows()
    uuid.UUID(first.window_id)
    for _ in range(3):
        clock.now += 1
        metrics.record(REF_A, 2.0, ok=False)
    _, (later,) = metrics.open_windows()
    assert later.window_id == first.window_id
    assert (first.count, later.count, later.errors) == (1, 4, 3)
    assert later.end > first.end and later.start == first.start
    clock.now += 10
    (closed,) = metrics.close_due_window()
    assert closed.window_id == first.window_id and closed.count == 4
    metrics.record(REF_A, 1.0)
    _, (next_window,) = metrics.open_windows()
    assert next_window.window_id != first.window_id
    assert next_window.start == closed.end


def test_the_generation_moves_only_when_the_open_window_changes():
    """Input tried: reads with nothing recorded, an empty close, a record, and a close; only the
    last two may make a checkpoint write again."""
    metrics, clock = recorder()
    g0, _ = metrics.open_windows()
    clock.now += 11
    assert metrics.close_due_window() == []
    assert metrics.open_windows()[0] == g0          # an empty close changes nothing
    metrics.record(REF_A, 1.0)
    g1, _ = metrics.open_windows()
    assert g1 != g0 and metrics.open_windows()[0] == g1
    metrics.close_window()
    g2, records = metrics.open_windows()
    assert g2 != g1 and records == []


def test_a_wall_clock_set_back_never_ends_a_window_before_it_starts():
    """Input tried: the clock moved back 30 s between the first inference and the close (the
    server refuses a window that ends before it starts)."""
    metrics, clock = recorder()
    metrics.record(REF_A, 1.0)
    clock.now -= 30
    (closed,) = metrics.close_window()
    assert closed.end == closed.start


def test_stats_accumulate_across_windows_and_estimate_quantiles():
    metrics, clock = recorder(latency_buckets_ms=(1.0, 2.0, 4.0, 8.0))
    for _ in range(90):
        metrics.record(REF_A, 1.5)
    for _ in range(10):
        metrics.record(REF_A, 7.0)
    clock.now += 10
    metrics.close_due_window()
    metrics.record(REF_A, 1.5, ok=False)
    stats = metrics.stats(REF_A)
    assert (stats.inferences, stats.errors) == (101, 1)
    assert 1.0 <= stats.latency_p50_ms <= 2.0
    assert 4.0 <= stats.latency_p95_ms <= 7.0
    assert metrics.stats(REF_B).inferences == 0


def test_a_window_round_trips_through_its_stored_form():
    rec, clock = recorder()
    rec.record(REF_A, 1.5)
    rec.record(REF_A, 40.0, ok=False)
    rec.record(REF_A, 3.0, finite=False)
    clock.now += 11
    (window,) = rec.close_window()
    assert window.nonfinite == 1
    assert MetricWindowRecord.from_dict(json.loads(json.dumps(window.to_dict()))) == window


def test_a_window_stored_by_an_earlier_version_reads_with_no_nonfinite():
    """Input tried: a stored window without the ``nonfinite`` key (metrics-pending.json as an
    earlier version wrote it)."""
    rec, _ = recorder()
    rec.record(REF_A, 1.5)
    (window,) = rec.close_window()
    doc = window.to_dict()
    del doc["nonfinite"]
    assert MetricWindowRecord.from_dict(doc).nonfinite == 0
