"""The reporter: what the control plane hears from this device, install events and metric
windows (``ReportStatus``, ``ReportMetrics``).

Invariants:
- Install events wait in a bounded queue (``max_buffered_events``; when it is full the oldest
  is dropped) until a ``ReportStatus`` carrying them succeeded; they go oldest first, at most
  ``max_events_per_report`` a call, and leave the queue only once sent.
- Metric windows leave ``MetricsRecorder``'s queue only when the server acknowledged them (a
  window it refused as malformed is acknowledged too, and logged), and
  the unacknowledged ones are kept in the data dir (``AgentStore.write_pending_windows``): a
  closed window is on disk before it is sent, and whatever is still pending is written again
  after a send and at stop, so a crash or a restart loses no window and sends none twice under
  another id.
- Reporting is best effort right after an event or a closed window (a failure leaves it queued
  for the next sync) and strict in ``flush`` (a failure raises, so the sync loop backs off).
- Used by the sync thread only (and by start-up and stop, when that thread is not running).
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agent.errors import AgentTransportError
from agent.findings import Finding
from agent.link import ServerLink
from agent.metrics import MetricsRecorder, MetricWindowRecord
from agent.refs import ModelRef
from agent.runtime import interpreter_factory
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import AgentStore
from protos import edgefleet_pb2 as pb

log = logging.getLogger(__name__)


class Reporter:
    """Queues install events, closes and sends metric windows, keeps what is unsent on disk."""

    def __init__(self, link: ServerLink, metrics: MetricsRecorder, board: StatusBoard,
                 store: AgentStore, settings: AgentSettings) -> None:
        self._link = link
        self._metrics = metrics
        self._board = board
        self._store = store
        self._settings = settings
        self._events: collections.deque[pb.InstallEvent] = collections.deque(
            maxlen=settings.max_buffered_events
        )

    # -- install events ----------------------------------------------------------------------

    def progress(self, ref: ModelRef, state: str, message: str) -> None:
        """An install step: shown in ``status`` and told to the server (queued if need be)."""
        self._board.set_install(ref, state, message)
        self.event(ref, state, message)

    def event(self, ref: ModelRef | None, state: str, message: str,
              finding: Finding | None = None) -> None:
        """Tell the server (queued if it cannot hear it now); ``ref`` None: no model;
        ``finding``: why this device refused or rolled back the variant."""
        event = pb.InstallEvent(ref=ref.to_proto() if ref else pb.ModelRef(), state=state,
                                message=message)
        if finding is not None:
            _, info = interpreter_factory(self._settings.interpreter_choice)
            event.finding.CopyFrom(finding.to_proto(info.name, info.version))
        event.at.FromDatetime(datetime.now(UTC))
        self._events.append(event)
        if self._link.ready:
            self._quietly(self.flush_events)

    def flush_events(self) -> None:
        """Send every queued event. Raises AgentTransportError (what was not sent stays)."""
        while self._events:
            batch = list(itertools.islice(self._events, self._settings.max_events_per_report))
            active = [m.ref.to_proto() for m in self._board.snapshot().live.values()]
            self._link.call("status report", "ReportStatus",
                            pb.StatusReport(events=batch, active=active))
            for _ in batch:
                self._events.popleft()

    # -- metric windows ----------------------------------------------------------------------

    def restore_windows(self) -> None:
        """Queue again the windows an earlier run kept on disk (start-up)."""
        records = []
        for doc in self._store.read_pending_windows():
            try:
                records.append(MetricWindowRecord.from_dict(doc))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping an unreadable stored metric window: %s", exc)
        self._metrics.restore(records)

    def tick(self) -> None:
        """Close the metric window if it is due: kept on disk first, then sent if possible."""
        if self._metrics.close_due_window():
            self._keep_windows()   # on disk before the send: a crash loses no window
            if self._link.ready:
                self._quietly(self.flush_metrics)

    def flush_metrics(self) -> None:
        """Send every pending window. Raises AgentTransportError (what was not acknowledged
        stays pending, on disk too)."""
        sent = False
        try:
            while batch := self._metrics.pending(self._settings.max_windows_per_report):
                ack = self._link.call("metrics report", "ReportMetrics",
                                      pb.MetricsReport(windows=[w.to_proto() for w in batch]))
                # Refused windows are acknowledged with the rest: the same bytes would be
                # refused again, and holding them would block every later window.
                for rejection in ack.rejections:
                    log.warning("the server refused metric window %s (%s); it is not sent again",
                                rejection.id, rejection.reason)
                self._metrics.acknowledge(w.window_id for w in batch)
                sent = True
        finally:
            if sent:
                self._keep_windows()

    def keep_unsent(self) -> None:
        """At stop: close the open window and keep every unacknowledged one for the next run."""
        if self._metrics.close_window() or self._metrics.pending(1):
            self._keep_windows()

    # -- both --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send queued events, then pending windows. Raises AgentTransportError."""
        self.flush_events()
        self.flush_metrics()

    def _keep_windows(self) -> None:
        """Write the unacknowledged windows to the data dir (best effort: a full disk costs
        metrics, never serving)."""
        try:
            self._store.write_pending_windows([w.to_dict() for w in self._metrics.pending()])
        except OSError as exc:
            log.warning("could not keep metric windows on disk: %s", exc)

    def _quietly(self, report: Callable[[], None]) -> None:
        """Best effort now; what fails stays queued for the next successful sync."""
        try:
            report()
        except AgentTransportError as exc:
            log.debug("report deferred: %s", exc)
