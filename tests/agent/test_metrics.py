"""Metric windows: histogram contents, window ids, bounded queue, re-sending until acknowledged."""

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
    metrics.record(REF_B, 4.0)
    clock.now += 10
    assert metrics.close_due_window() == 2
    windows = {w.ref: w for w in metrics.pending()}
    a = windows[REF_A]
    # Upper bounds are inclusive: 1.0 falls in the first bucket.
    assert a.bucket_counts == (2, 2, 1, 1)
    assert (a.count, a.errors, a.latency_sum_ms, a.latency_max_ms) == (6, 1, 63.5, 50.0)
    assert (a.end - a.start).total_seconds() == 10
    uuid.UUID(a.window_id)
    assert windows[REF_B].count == 1 and windows[REF_A].window_id != windows[REF_B].window_id
    proto = a.to_proto()
    assert list(proto.bucket_counts) == [2, 2, 1, 1] and list(proto.bucket_bounds_ms) == [1, 5, 10]
    assert proto.ref.sha256 == REF_A.sha256
    assert proto.end.ToSeconds() - proto.start.ToSeconds() == 10


def test_window_is_not_closed_early_and_empty_windows_produce_nothing():
    metrics, clock = recorder()
    metrics.record(REF_A, 1.0)
    clock.now += 9.9
    assert metrics.close_due_window() == 0
    clock.now += 0.1
    assert metrics.close_due_window() == 1
    clock.now += 10
    assert metrics.close_due_window() == 0
    assert len(metrics.pending()) == 1


def test_unacknowledged_windows_are_resent_with_the_same_ids():
    metrics, clock = recorder()
    metrics.record(REF_A, 1.0)
    clock.now += 10
    metrics.close_due_window()
    first = [w.window_id for w in metrics.pending()]
    # A failed report acknowledges nothing: the next attempt carries the same ids.
    metrics.record(REF_A, 1.0)
    clock.now += 10
    metrics.close_due_window()
    second = [w.window_id for w in metrics.pending()]
    assert second[0] == first[0] and len(second) == 2
    metrics.acknowledge(first)
    assert [w.window_id for w in metrics.pending()] == second[1:]


def test_queue_is_bounded_and_drops_the_oldest():
    metrics, clock = recorder(max_buffered_windows=3)
    ids = []
    for _ in range(5):
        metrics.record(REF_A, 1.0)
        clock.now += 10
        metrics.close_due_window()
        ids.append(metrics.pending()[-1].window_id)
    assert [w.window_id for w in metrics.pending()] == ids[2:]
    assert metrics.dropped == 2
    assert [w.window_id for w in metrics.pending(limit=2)] == ids[2:4]


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
    clock.now += 11
    rec.close_window()
    (window,) = rec.pending()
    assert MetricWindowRecord.from_dict(json.loads(json.dumps(window.to_dict()))) == window


def test_restored_windows_go_first_keep_their_ids_and_respect_the_bound():
    """Input tried: more stored windows than max_buffered_windows allows beside new ones."""
    old, clock = recorder()
    for _ in range(3):
        old.record(REF_A, 1.0)
        clock.now += 11
        old.close_window()
    stored = old.pending()
    rec, clock = recorder(max_buffered_windows=3)
    rec.record(REF_B, 2.0)
    clock.now += 11
    rec.close_window()
    rec.restore(stored)
    ids = [w.window_id for w in rec.pending()]
    assert ids == [stored[1].window_id, stored[2].window_id, ids[-1]]
    assert rec.pending()[-1].ref == REF_B and rec.dropped == 1
