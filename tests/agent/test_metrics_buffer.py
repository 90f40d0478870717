"""The metrics buffer: bounded in bytes, trimmed least telling first, on disk at every change,
restored from disk (an earlier version's file migrated once), unreadable files survived."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent.metrics import MetricWindowRecord
from agent.metrics_buffer import Dropped, MetricsBuffer
from agent.refs import ModelRef
from agent.settings import MIN_METRICS_BUFFER_BYTES, AgentSettings
from agent.store import AgentStore
from protos import edgefleet_pb2 as pb

REF = ModelRef("face", "1.0.0", "float32", "a" * 64)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT = MIN_METRICS_BUFFER_BYTES
#: What the file holds besides its items (format, keys, the dropped counts): a few dozen bytes.
FRAMING = 128


@pytest.fixture
def store(data_dir):
    s = AgentStore(data_dir)
    s.ensure()
    return s


def buffer_on(store: AgentStore, limit: int = LIMIT) -> MetricsBuffer:
    return MetricsBuffer(store, AgentSettings(max_metrics_buffer_bytes=limit))


def window(n: int, *, errors: int = 0, nonfinite: int = 0, count: int = 5) -> MetricWindowRecord:
    """The ``n``-th window (its start says which); all of the same size in the file."""
    return MetricWindowRecord(
        window_id=str(uuid.uuid4()), ref=REF, start=T0 + timedelta(seconds=10 * n),
        end=T0 + timedelta(seconds=10 * n + 10), count=count, errors=errors,
        nonfinite=nonfinite, bucket_bounds_ms=(1.0, 5.0), bucket_counts=(count, 0, 0),
        latency_sum_ms=2.5, latency_max_ms=0.5)


def event(n: int, state: str = "active") -> pb.InstallEvent:
    e = pb.InstallEvent(ref=REF.to_proto(), state=state, message=f"event {n:04d}")
    e.at.FromDatetime(T0 + timedelta(seconds=n))
    return e


def item_size(doc: dict) -> int:
    return len(json.dumps(doc, separators=(",", ":"))) + 1


def test_the_buffer_and_its_file_stay_within_the_byte_bound(store):
    """Input tried: five times as many routine windows as the bound holds."""
    buf = buffer_on(store)
    per_window = item_size(window(0).to_dict())
    fits = LIMIT // per_window
    added = [window(n) for n in range(5 * fits)]
    for w in added:
        buf.add_windows([w])
        assert buf.size_bytes <= LIMIT
        assert store.metrics_buffer_path.stat().st_size <= LIMIT + FRAMING
    kept = buf.windows(limit=10**6)
    assert [w.window_id for w in kept] == [w.window_id for w in added[-fits:]]   # newest kept
    assert buf.dropped == Dropped(windows=5 * fits - fits, events=0)


def test_trimming_drops_routine_windows_then_failing_windows_then_events_oldest_first(store):
    """Input tried: a full buffer of events, routine windows and windows with errors or NaN
    outputs, interleaved, then more of each kind added until every kind must give way."""
    buf = buffer_on(store)
    per_window = item_size(window(0).to_dict())
    routine = [window(n) for n in range(10)]
    failing = [window(100 + n, errors=1 if n % 2 else 0, nonfinite=0 if n % 2 else 2)
               for n in range(10)]
    events = [event(n) for n in range(10)]
    for r, f, e in zip(routine, failing, events, strict=True):
        buf.add_windows([r, f])
        buf.add_event(e)
    assert buf.dropped == Dropped()
    # Room for all but three routine windows' worth: the three oldest routine windows go.
    filler = LIMIT - buf.size_bytes
    assert filler > 0
    big = [window(1000 + n, errors=1) for n in range(filler // per_window + 3)]
    buf.add_windows(big)
    kept = {w.window_id for w in buf.windows(limit=10**6)}
    assert buf.dropped.windows == 3 and buf.dropped.events == 0
    assert not {w.window_id for w in routine[:3]} & kept
    assert {w.window_id for w in routine[3:] + failing} <= kept
    # Twice the whole buffer in windows with failures: every older window goes, failing ones
    # too, and not one event.
    flood = [window(5000 + n, nonfinite=1) for n in range(2 * LIMIT // per_window)]
    buf.add_windows(flood)
    remaining = buf.windows(limit=10**6)
    assert remaining == flood[-len(remaining):]
    assert [e.message for e in buf.events(limit=100)] == events and buf.dropped.events == 0
    # Events past the bound: every window goes before the first event does, then the oldest.
    per_event = buf.events(limit=1)[0].size
    more = [event(100 + n) for n in range(LIMIT // per_event + 5)]
    for e in more:
        buf.add_event(e)
    assert buf.windows(limit=10) == []
    kept = [e.message for e in buf.events(limit=10**6)]
    assert kept == (events + more)[-len(kept):] and kept[-1] == more[-1]
    assert buf.dropped.events == len(events) + len(more) - len(kept) > 0
    assert buf.size_bytes <= LIMIT


def test_events_come_before_windows_each_oldest_first_and_leave_only_when_removed(store):
    buf = buffer_on(store)
    w1, w2 = window(1), window(2)
    buf.add_windows([w1])
    buf.add_event(event(1))
    buf.add_windows([w2])
    buf.add_event(event(2, "failed"))
    batch = buf.events(limit=1)
    assert [e.message.message for e in batch] == ["event 0001"]
    buf.remove_events(e.key for e in batch)
    assert [e.message.state for e in buf.events(limit=5)] == ["failed"]
    assert [w.window_id for w in buf.windows(limit=5)] == [w1.window_id, w2.window_id]
    buf.remove_windows([w1.window_id, "not-held"])
    assert [w.window_id for w in buf.windows(limit=5)] == [w2.window_id]
    again = buffer_on(store)
    again.restore()
    assert [w.window_id for w in again.windows(limit=5)] == [w2.window_id]   # on disk too
    assert [e.message.state for e in again.events(limit=5)] == ["failed"]


def test_a_restarted_buffer_restores_events_windows_and_dropped_counts_from_disk(store):
    """Input tried: a buffer written by one instance, read by a new one on the same data dir
    (what a restart after a SIGKILL sees: every change was written when it happened)."""
    first = buffer_on(store)
    first.add_event(event(1))
    first.add_windows([window(1), window(2, errors=3, nonfinite=1)])
    ev = pb.InstallEvent(ref=REF.to_proto(), state="rolled_back", message="probation")
    ev.finding.reason, ev.finding.observed = "probation_nonfinite", 1.7976931348623157e308
    ev.at.FromDatetime(T0)
    first.add_event(ev)
    first.dropped = Dropped(windows=4, events=1)   # as a trim would have left them
    first.add_windows([])                          # any change writes the file
    second = buffer_on(store)
    second.restore()
    assert [e.message for e in second.events(limit=10)] == [event(1), ev]
    assert second.windows(limit=10) == first.windows(limit=10)
    assert second.dropped == Dropped(windows=4, events=1)
    assert second.size_bytes == first.size_bytes


def test_a_second_window_under_a_held_id_is_held_once_keeping_the_fuller_one(store):
    """Input tried: a window's checkpoint (3 inferences) given after the record it closed into
    (5), and the other way round; a kill between the two writes leaves both on disk."""
    buf = buffer_on(store)
    closed = window(1, count=5)
    partial = MetricWindowRecord(**{**closed.__dict__, "count": 3,
                                    "bucket_counts": (3, 0, 0)})
    later = window(2)
    buf.add_windows([closed, later, partial])
    assert buf.windows(limit=10) == [closed, later]
    other = buffer_on(AgentStore(store.data_dir / "other"))
    other.add_windows([partial, later, closed])
    assert other.windows(limit=10) == [closed, later]     # in the place of the first
    assert other.size_bytes == buf.size_bytes


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": 99, "windows": []}',
                                     b'{"format": 1, "events": "x", "windows": {}}'])
def test_an_unreadable_buffer_file_is_logged_and_ignored_not_a_crash(store, content, caplog):
    """Input tried: broken JSON, a list, a format this version does not know, lists of the wrong
    type; then the buffer must still take and keep new items."""
    store.metrics_buffer_path.write_bytes(content)
    buf = buffer_on(store)
    with caplog.at_level(logging.WARNING):
        buf.restore()
    assert buf.windows(limit=10) == [] and buf.events(limit=10) == []
    if content.startswith((b"{not", b"[", b'{"format": 99')):
        assert str(store.metrics_buffer_path) in caplog.text
    w = window(1)
    buf.add_windows([w])
    stored = json.loads(store.metrics_buffer_path.read_text())["windows"]
    assert [MetricWindowRecord.from_dict(d) for d in stored] == [w]


def test_unreadable_items_are_skipped_and_the_rest_restored(store, caplog):
    """Input tried: a window missing its count, a window whose start is not a time, an event
    naming a field InstallEvent does not have, and a string where an item should be."""
    good = window(1)
    bad_count = {k: v for k, v in window(2).to_dict().items() if k != "count"}
    bad_time = {**window(3).to_dict(), "start": "yesterday"}
    store.metrics_buffer_path.write_text(json.dumps({
        "format": 1, "windows": [bad_count, good.to_dict(), bad_time, "window"],
        "events": [{"no_such_field": 1}, {"state": "active", "message": "kept"}]}))
    buf = buffer_on(store)
    with caplog.at_level(logging.WARNING):
        buf.restore()
    assert buf.windows(limit=10) == [good]
    assert [e.message.message for e in buf.events(limit=10)] == ["kept"]
    assert caplog.text.count("skipping an unreadable stored") == 3


def test_an_earlier_versions_pending_windows_are_migrated_once_and_the_file_removed(store):
    """Input tried: metrics-pending.json as an earlier version wrote it (no nonfinite), beside
    a buffer file already holding one of its windows (a kill during the migration)."""
    old = [window(1), window(2)]
    docs = [{k: v for k, v in w.to_dict().items() if k != "nonfinite"} for w in old]
    store.legacy_pending_windows_path.write_text(json.dumps({"windows": docs}, indent=2))
    newer = window(3)
    store.metrics_buffer_path.write_text(json.dumps(
        {"format": 1, "windows": [old[1].to_dict(), newer.to_dict()], "events": []}))
    buf = buffer_on(store)
    buf.restore()
    assert buf.windows(limit=10) == [*old, newer]
    assert not store.legacy_pending_windows_path.exists()
    again = buffer_on(store)
    again.restore()
    assert again.windows(limit=10) == [*old, newer]


def test_a_write_that_fails_costs_the_disk_copy_not_the_buffer(store, caplog):
    """Input tried: the buffer's file cannot be replaced (a directory stands in its place, which
    os.replace refuses even for root: a real OSError, as a full disk gives) for three changes,
    then can again."""
    store.metrics_buffer_path.mkdir()
    (store.metrics_buffer_path / "blocker").write_text("x")
    buf = buffer_on(store)
    with caplog.at_level(logging.INFO):
        assert buf.add_windows([window(1)]) is False
        buf.add_event(event(1))
        assert buf.add_windows([window(2)]) is False
    assert caplog.text.count("could not write the metrics buffer") == 1   # said once
    assert len(buf.windows(limit=10)) == 2 and len(buf.events(limit=10)) == 1
    (store.metrics_buffer_path / "blocker").unlink()
    store.metrics_buffer_path.rmdir()
    with caplog.at_level(logging.INFO):
        assert buf.add_windows([window(3)]) is True
    assert "written again" in caplog.text
    doc = json.loads(store.metrics_buffer_path.read_text())
    assert len(doc["windows"]) == 3 and len(doc["events"]) == 1
