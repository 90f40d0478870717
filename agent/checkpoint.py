"""The metrics checkpoint: the ``agent-metrics`` thread that keeps the open metric window in the
data dir (``metrics-open.json``), so that a SIGKILL costs at most the inferences of the last
``metrics_checkpoint_seconds``, not the whole window.

Invariants:
- The file is written (atomically: temp file, fsync, rename, directory fsync) every
  ``metrics_checkpoint_seconds`` only when the open window changed since the last write (the
  recorder's ``generation``), and again whenever a caller closed the window (``write``): once
  closed windows are in the metrics buffer, the file no longer holds them.
- It holds each model ref's record with the id its window opened with. At start-up
  (``restore_into``) those records are queued in the buffer under the same ids before a new
  inference is counted, and the file is cleared, so a window is counted once by the server
  even when it also reached the buffer (a kill between the two writes) or the server itself.
- Writes are serialised: one lock covers reading the recorder and writing the file, so a write
  made after a window closed is never overtaken by an older snapshot.
- A write that fails (a full disk) is logged and tried again at the next interval; it costs
  metrics, never serving. Request threads never wait for it: they take only the recorder's lock,
  held here just to copy the open window.
- The thread waits on the agent's stop event, the interval as its timeout: it ends at stop.
"""

from __future__ import annotations

import logging
import threading

from agent.metrics import MetricsRecorder, MetricWindowRecord
from agent.metrics_buffer import MetricsBuffer
from agent.settings import AgentSettings
from agent.store import AgentStore, BestEffortWrites

log = logging.getLogger(__name__)


class MetricsCheckpoint:
    """Writes the open window to the data dir on its own thread; see the module invariants."""

    def __init__(self, metrics: MetricsRecorder, store: AgentStore, settings: AgentSettings,
                 stop: threading.Event) -> None:
        self._metrics = metrics
        self._store = store
        self._interval = settings.metrics_checkpoint_seconds
        self._stop = stop
        self._lock = threading.Lock()
        self._written: int | None = None   # the generation on disk; None: not known yet
        self._writes = BestEffortWrites(f"the open metric window ({store.open_windows_path})")
        self._thread = threading.Thread(target=self._run, name="agent-metrics", daemon=True)

    def restore_into(self, buffer: MetricsBuffer) -> None:
        """Queue the window the last run had open when it ended (start-up, before anything is
        counted), ids unchanged; then clear the file once the buffer's holds them."""
        records = []
        for doc in self._store.read_open_windows():
            try:
                records.append(MetricWindowRecord.from_dict(doc))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping an unreadable checkpointed metric window: %s", exc)
        if not records:
            return
        if buffer.add_windows(records):
            log.info("queued the metric window open at the last stop (%d inferences)",
                     sum(r.count for r in records))
            self.write()

    def write(self) -> bool:
        """Write the open window if it changed since the last write; True if written."""
        with self._lock:
            generation, records = self._metrics.open_windows()
            if generation == self._written:
                return False
            docs = [r.to_dict() for r in records]
            if not self._writes.attempt(lambda: self._store.write_open_windows(docs)):
                return False
            self._written = generation
            return True

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) for the thread to end after stop; True if it did."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write()
            except Exception:   # a bug costs a checkpoint, never the thread or the serving
                log.exception("unexpected error writing the metrics checkpoint")
