"""A device's windows summed per variant against a real database (SQLite and PostgreSQL): sums,
quantiles of merged histograms checked by hand, windows of other bounds, the window cap, one
query."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from controlplane.config import Settings
from controlplane.db import make_engine, new_id, transaction
from controlplane.fleet.models import Device
from controlplane.telemetry import services as telemetry
from controlplane.telemetry.device_metrics import read_device_metrics
from controlplane.validation import MAX_INT64, WireTime

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SETTINGS = Settings(data_dir=Path("/nonexistent"))
SHA = "a" * 64


def _device(s: Session) -> str:
    device = Device(id=new_id(), name="cam", labels={}, secret_hash="0" * 64, enrolled_at=NOW)
    s.add(device)
    s.flush()
    return device.id


def _window(minute: int, **changes: Any) -> telemetry.Window:
    """A window of one minute ending ``minute`` minutes after NOW."""
    good = telemetry.Window(
        window_id=str(uuid.uuid4()), model="m", version="1.0.0", variant="float32", sha256=SHA,
        start=WireTime.of(NOW + dt.timedelta(minutes=minute - 1)),
        end=WireTime.of(NOW + dt.timedelta(minutes=minute)), count=10, errors=0,
        bucket_bounds_ms=[1.0, 5.0], bucket_counts=[6, 3, 1], latency_sum_ms=20.0,
        latency_max_ms=7.5)
    return dataclasses.replace(good, **changes)


def _store(s: Session, device_id: str, windows: list[telemetry.Window]) -> None:
    outcome = telemetry.record_metrics(s, device_id, windows, settings=SETTINGS, now=NOW)
    assert (outcome.accepted, outcome.rejections) == (len(windows), ())


def test_windows_are_summed_per_variant_with_quantiles_of_the_merged_histograms(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: two float32 windows of the same bounds (1, 5 ms) and one int8 window.

    By hand: float32 merges to counts [8, 4, 2] (14 inferences) ending at the larger maximum,
    9 ms; the median (rank 7) lies in (0, 1] at 7/8 = 0.875 ms, the p95 (rank 13.3) in (5, 9]
    at 5 + 4 x 1.3/2 = 7.6 ms. int8's 10 values lie in (1, 5] cut at its maximum 4 ms: p50
    1 + 3 x 5/10 = 2.5 ms, p95 1 + 3 x 9.5/10 = 3.85 ms.
    """
    with transaction(session_factory) as s:
        device_id = _device(s)
        _store(s, device_id, [
            _window(1, count=10, errors=1, nonfinite=2, bucket_counts=[6, 3, 1],
                    latency_max_ms=7.5),
            _window(2, count=4, errors=2, nonfinite=0, bucket_counts=[2, 1, 1],
                    latency_max_ms=9.0),
            _window(3, variant="int8", count=10, errors=0, nonfinite=10,
                    bucket_counts=[0, 10, 0], latency_max_ms=4.0),
        ])
    with transaction(session_factory) as s:
        got = read_device_metrics(s, device_id, settings=SETTINGS)
    assert (got.windows_considered, got.truncated, got.max_windows) == (3, False, 1000)
    f32, i8 = got.models
    assert (f32.model, f32.version, f32.variant) == ("m", "1.0.0", "float32")
    assert (f32.windows, f32.inferences, f32.errors, f32.nonfinite) == (2, 14, 3, 2)
    assert f32.latency_p50_ms == pytest.approx(0.875)
    assert f32.latency_p95_ms == pytest.approx(7.6)
    assert f32.first_window_start == NOW
    assert f32.last_window_end == NOW + dt.timedelta(minutes=2)
    assert (i8.variant, i8.windows, i8.inferences, i8.nonfinite) == ("int8", 1, 10, 10)
    assert i8.latency_p50_ms == pytest.approx(2.5)
    assert i8.latency_p95_ms == pytest.approx(3.85)
    assert i8.first_window_start == NOW + dt.timedelta(minutes=2)


def test_windows_of_other_bounds_are_read_as_one_distribution(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: one variant's windows in two layouts (the agent's buckets changed): 4
    values in (0, 2] by bounds [2], and 4 in (1, 5] by bounds [1, 5]. By hand, 2 values per ms
    over (0, 2] plus 1 per ms over (1, 5]: 2 by 1 ms, 5 by 2 ms; the median (rank 4) is at
    1 + 2/3 ms, the p95 (rank 7.6) at 2 + 2.6 = 4.6 ms. Every window counts."""
    with transaction(session_factory) as s:
        device_id = _device(s)
        _store(s, device_id, [
            _window(1, count=4, bucket_bounds_ms=[2.0], bucket_counts=[4, 0],
                    latency_max_ms=2.0),
            _window(2, count=4, bucket_bounds_ms=[1.0, 5.0], bucket_counts=[0, 4, 0],
                    latency_max_ms=5.0),
        ])
    with transaction(session_factory) as s:
        (m,) = read_device_metrics(s, device_id, settings=SETTINGS).models
    assert (m.windows, m.inferences) == (2, 8)
    assert m.latency_p50_ms == pytest.approx(1 + 2 / 3)
    assert m.latency_p95_ms == pytest.approx(4.6)


def test_only_the_most_recent_windows_up_to_the_setting_are_summed_and_it_says_so(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: device_metrics_max_windows 3 and a device with 5 windows of 10 inferences
    (stored out of order), another device's window beside them; then exactly 3 windows."""
    capped = SETTINGS.replace(device_metrics_max_windows=3)
    with transaction(session_factory) as s:
        device_id, other = _device(s), _device(s)
        _store(s, device_id, [_window(minute) for minute in (4, 1, 5, 2, 3)])
        _store(s, other, [_window(9, count=1000, bucket_counts=[1000, 0, 0])])
    with transaction(session_factory) as s:
        got = read_device_metrics(s, device_id, settings=capped)
        (m,) = got.models
        assert (got.windows_considered, got.truncated, got.max_windows) == (3, True, 3)
        assert (m.windows, m.inferences) == (3, 30)
        assert m.first_window_start == NOW + dt.timedelta(minutes=2)   # minutes 3, 4, 5 only
        assert m.last_window_end == NOW + dt.timedelta(minutes=5)
        just = read_device_metrics(s, device_id, settings=capped.replace(
            device_metrics_max_windows=5))
        assert (just.windows_considered, just.truncated) == (5, False)


def test_a_device_that_reported_nothing_has_no_figures(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a device with no windows; one whose only window held no inference."""
    with transaction(session_factory) as s:
        quiet, idle = _device(s), _device(s)
        _store(s, idle, [_window(1, count=0, bucket_counts=[0, 0, 0], latency_sum_ms=0.0,
                                 latency_max_ms=0.0)])
    with transaction(session_factory) as s:
        nothing = read_device_metrics(s, quiet, settings=SETTINGS)
        assert (nothing.models, nothing.windows_considered, nothing.truncated) == ((), 0, False)
        (m,) = read_device_metrics(s, idle, settings=SETTINGS).models
    assert (m.windows, m.inferences, m.latency_p50_ms, m.latency_p95_ms) == (1, 0, None, None)


def test_the_figures_take_one_query_whatever_the_number_of_variants(db_url: str) -> None:
    """Input tried: 5 variants of 3 models, 4 windows each: one SELECT reads them all."""
    engine = make_engine(db_url)
    statements: list[str] = []
    try:
        with Session(engine) as s, s.begin():
            device_id = _device(s)
            _store(s, device_id, [_window(i * 4 + j, model=model, variant=variant)
                                  for i, (model, variant) in enumerate(
                                      [("a", "float32"), ("a", "int8"), ("b", "float32"),
                                       ("b", "float16"), ("c", "float32")])
                                  for j in range(4)])
            sa.event.listen(engine, "before_cursor_execute",
                            lambda *args: statements.append(args[2]))
            got = read_device_metrics(s, device_id, settings=SETTINGS)
    finally:
        engine.dispose()
    assert [(m.model, m.variant, m.windows) for m in got.models] == [
        ("a", "float32", 4), ("a", "int8", 4), ("b", "float16", 4), ("b", "float32", 4),
        ("c", "float32", 4)]
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")


def test_the_read_is_served_by_the_device_end_index_on_postgres(pg_clean_url: str) -> None:
    """Input tried: the query's plan on PostgreSQL with sequential scans disfavoured (a table
    this small would be scanned anyway): it walks ix_metric_windows_device_id_end."""
    engine = make_engine(pg_clean_url)
    try:
        with Session(engine) as s, s.begin():
            device_id = _device(s)
            _store(s, device_id, [_window(minute) for minute in range(1, 6)])
            s.execute(sa.text("SET LOCAL enable_seqscan = off"))
            statements: list[tuple[str, Any]] = []

            def record(*args: Any) -> None:
                statements.append((args[2], args[3]))

            sa.event.listen(engine, "before_cursor_execute", record)
            read_device_metrics(s, device_id, settings=SETTINGS)
            sa.event.remove(engine, "before_cursor_execute", record)
            ((sql, params),) = statements
            plan = "\n".join(row[0] for row in s.connection().exec_driver_sql(
                "EXPLAIN " + sql, params))
    finally:
        engine.dispose()
    assert "ix_metric_windows_device_id_end" in plan, plan


def test_sums_past_what_a_64_bit_count_holds_saturate(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: three windows each claiming 2^63 - 1 inferences (the most one may), all
    with non-finite outputs: each sum stays at 2^63 - 1 rather than break the device's
    GetDevice (2^63 - 1 is what BIGINT and the proto's uint64 both hold)."""
    most = MAX_INT64
    with transaction(session_factory) as s:
        device_id = _device(s)
        _store(s, device_id, [_window(minute, count=most, nonfinite=most,
                                      bucket_counts=[most, 0, 0]) for minute in (1, 2, 3)])
    with transaction(session_factory) as s:
        (m,) = read_device_metrics(s, device_id, settings=SETTINGS).models
    assert (m.windows, m.inferences, m.nonfinite, m.errors) == (3, most, most, 0)
    assert m.latency_p50_ms == pytest.approx(0.5)
