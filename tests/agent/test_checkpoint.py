"""The metrics checkpoint: the open window written only when it changed, restored at start under
the ids it opened with, held once beside the record it closed into, and a thread that ends at
stop and survives a write that fails."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from agent.checkpoint import MetricsCheckpoint
from agent.metrics import MetricsRecorder
from agent.metrics_buffer import MetricsBuffer
from agent.refs import ModelRef
from agent.settings import AgentSettings
from agent.store import AgentStore
from tests.agent.support import wait_until

REF_A = ModelRef("face", "1.0.0", "float32", "a" * 64)
REF_B = ModelRef("plate", "2.0.0", "int8", "b" * 64)
SETTINGS = AgentSettings(metrics_checkpoint_seconds=0.1, metrics_window_seconds=60.0)


@pytest.fixture
def store(data_dir):
    s = AgentStore(data_dir)
    s.ensure()
    return s


def parts(store: AgentStore) -> tuple[MetricsRecorder, MetricsCheckpoint, threading.Event]:
    """A recorder and its checkpoint on ``store``, as one run of the agent has them."""
    metrics, stop = MetricsRecorder(SETTINGS), threading.Event()
    return metrics, MetricsCheckpoint(metrics, store, SETTINGS, stop), stop


def test_the_open_window_is_written_only_when_it_changed(store):
    """Input tried: writes asked for with nothing new, after inferences, and after a close."""
    metrics, checkpoint, _ = parts(store)
    assert checkpoint.write() is True            # the first write clears what a run left
    assert not store.open_windows_path.exists()  # nothing open: no file
    assert checkpoint.write() is False
    metrics.record(REF_A, 1.0)
    metrics.record(REF_B, 2.0, ok=False)
    assert checkpoint.write() is True
    inode = store.open_windows_path.stat().st_ino
    assert checkpoint.write() is False and checkpoint.write() is False
    assert store.open_windows_path.stat().st_ino == inode   # not rewritten
    _, open_now = metrics.open_windows()
    assert {d["window_id"] for d in store.read_open_windows()} == \
        {r.window_id for r in open_now}
    metrics.record(REF_A, 1.0)
    assert checkpoint.write() is True
    assert store.open_windows_path.stat().st_ino != inode
    metrics.close_window()
    assert checkpoint.write() is True and not store.open_windows_path.exists()


def test_a_checkpointed_window_is_queued_at_start_under_the_ids_it_opened_with(store):
    """Input tried: the agent killed after a checkpoint (no stop ran): a new run on the same
    data dir queues what the checkpoint held, and its own first window has new ids."""
    metrics, checkpoint, _ = parts(store)
    for _ in range(3):
        metrics.record(REF_A, 1.0)
    metrics.record(REF_B, 4.0, finite=False)
    checkpoint.write()
    _, before = metrics.open_windows()

    metrics2, checkpoint2, _ = parts(store)   # the next run
    buffer = MetricsBuffer(store, SETTINGS)
    buffer.restore()
    checkpoint2.restore_into(buffer)
    queued = buffer.windows(limit=10)
    assert {(w.window_id, w.ref, w.count, w.nonfinite) for w in queued} == \
        {(w.window_id, w.ref, w.count, w.nonfinite) for w in before}
    assert not store.open_windows_path.exists()
    metrics2.record(REF_A, 1.0)
    _, (fresh,) = metrics2.open_windows()
    assert fresh.window_id not in {w.window_id for w in queued}
    # And a third run finds nothing left to queue: nothing is counted twice.
    buffer3 = MetricsBuffer(store, SETTINGS)
    buffer3.restore()
    parts(store)[1].restore_into(buffer3)
    assert [w.window_id for w in buffer3.windows(limit=10)] == [w.window_id for w in queued]


def test_a_kill_between_closing_into_the_buffer_and_the_next_checkpoint_holds_it_once(store):
    """Input tried: a checkpoint of 2 inferences, then the window closed with 5 into the buffer,
    and the process gone before the checkpoint was written again."""
    metrics, checkpoint, _ = parts(store)
    buffer = MetricsBuffer(store, SETTINGS)
    metrics.record(REF_A, 1.0)
    metrics.record(REF_A, 1.0)
    checkpoint.write()
    for _ in range(3):
        metrics.record(REF_A, 1.0)
    buffer.add_windows(metrics.close_window())   # killed here: no checkpoint.write()

    after = MetricsBuffer(store, SETTINGS)
    after.restore()
    parts(store)[1].restore_into(after)
    (held,) = after.windows(limit=10)
    assert held.count == 5


def test_an_unreadable_checkpoint_is_logged_and_queues_nothing(store, caplog):
    """Input tried: a torn file (half a JSON document) and a record missing its ref."""
    buffer = MetricsBuffer(store, SETTINGS)
    store.open_windows_path.write_text('{"windows": [{"window_id": "x", "cou')
    with caplog.at_level(logging.WARNING):
        parts(store)[1].restore_into(buffer)
    assert buffer.windows(limit=10) == [] and "is unreadable" in caplog.text
    store.open_windows_path.write_text('{"windows": [{"window_id": "x", "count": 1}]}')
    with caplog.at_level(logging.WARNING):
        parts(store)[1].restore_into(buffer)
    assert buffer.windows(limit=10) == [] and "checkpointed metric window" in caplog.text


def test_the_thread_checkpoints_changes_and_ends_at_stop(store):
    metrics, checkpoint, stop = parts(store)
    checkpoint.start()
    try:
        assert "agent-metrics" in [t.name for t in threading.enumerate()]
        metrics.record(REF_A, 1.0)
        wait_until(lambda: store.open_windows_path.exists(), timeout=5, what="a checkpoint")
        inode = store.open_windows_path.stat().st_ino
        time.sleep(5 * SETTINGS.metrics_checkpoint_seconds)
        assert store.open_windows_path.stat().st_ino == inode   # nothing new: not rewritten
        metrics.record(REF_A, 1.0)
        wait_until(lambda: store.read_open_windows()[0]["count"] == 2, timeout=5,
                   what="the change checkpointed")
    finally:
        stop.set()
    assert checkpoint.join(timeout=2)


def test_a_checkpoint_that_cannot_be_written_is_logged_once_and_the_thread_goes_on(
        store, caplog):
    """Input tried: the checkpoint's path held by a non-empty directory (os.replace onto it
    fails with OSError, even for root, as a full disk would), then freed."""
    store.open_windows_path.mkdir()
    (store.open_windows_path / "blocker").write_text("x")
    metrics, checkpoint, stop = parts(store)
    with caplog.at_level(logging.WARNING):
        checkpoint.start()
        try:
            metrics.record(REF_A, 1.0)
            time.sleep(3 * SETTINGS.metrics_checkpoint_seconds)
            metrics.record(REF_A, 1.0)
            time.sleep(3 * SETTINGS.metrics_checkpoint_seconds)
            assert caplog.text.count("could not write the open metric window") == 1
            (store.open_windows_path / "blocker").unlink()
            store.open_windows_path.rmdir()
            wait_until(lambda: store.open_windows_path.is_file(), timeout=5,
                       what="the checkpoint written once the path is free")
        finally:
            stop.set()
    assert checkpoint.join(timeout=2)
    assert store.read_open_windows()[0]["count"] == 2
