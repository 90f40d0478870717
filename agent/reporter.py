"""The reporter: what the control plane hears from this device, install events and metric
windows (``ReportStatus``, ``ReportMetrics``).

Invariants:
- Everything unsent waits in ``agent.metrics_buffer.MetricsBuffer``, on disk before it is sent
  and removed only once a call carrying it succeeded: install events first, oldest first, at
  most ``max_events_per_report`` a call; then metric windows, oldest first, at most
  ``max_windows_per_report`` a call. A window the server refused as malformed is acknowledged
  too (and logged): the same bytes would be refused again.
- A closed window goes to the buffer, then the checkpoint of the open window is written again
  (``agent.checkpoint``): at every moment a window is in one of the two files or, between the
  two writes, in both under its one id (held once at the next start), never in neither.
- Reporting is best effort right after an event or a closed window (a failure leaves it
  buffered for the next sync) and strict in ``flush`` (a failure raises, so the sync loop backs
  off).
- Used by the sync thread only (and by start-up and stop, when that thread is not running).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from agent.checkpoint import MetricsCheckpoint
from agent.errors import AgentTransportError
from agent.findings import Finding
from agent.link import ServerLink
from agent.metrics import MetricsRecorder, MetricWindowRecord
from agent.metrics_buffer import MetricsBuffer
from agent.refs import ModelRef
from agent.runtime import interpreter_factory
from agent.settings import AgentSettings
from agent.status import StatusBoard
from protos import edgefleet_pb2 as pb

log = logging.getLogger(__name__)


class Reporter:
    """Buffers install events and closed metric windows, and sends them."""

    def __init__(self, link: ServerLink, metrics: MetricsRecorder, buffer: MetricsBuffer,
                 checkpoint: MetricsCheckpoint, board: StatusBoard,
                 settings: AgentSettings) -> None:
        self._link = link
        self._metrics = metrics
        self._buffer = buffer
        self._checkpoint = checkpoint
        self._board = board
        self._settings = settings

    # -- install events ----------------------------------------------------------------------

    def progress(self, ref: ModelRef, state: str, message: str) -> None:
        """An install step: shown in ``status`` and told to the server (buffered if need be)."""
        self._board.set_install(ref, state, message)
        self.event(ref, state, message)

    def event(self, ref: ModelRef | None, state: str, message: str,
              finding: Finding | None = None) -> None:
        """Tell the server (buffered if it cannot hear it now); ``ref`` None: no model;
        ``finding``: why this device refused or rolled back the variant."""
        event = pb.InstallEvent(ref=ref.to_proto() if ref else pb.ModelRef(), state=state,
                                message=message)
        if finding is not None:
            _, info = interpreter_factory(self._settings.interpreter_choice)
            event.finding.CopyFrom(finding.to_proto(info.name, info.version))
        event.at.FromDatetime(datetime.now(UTC))
        self._buffer.add_event(event)
        if self._link.ready:
            self._quietly(self.flush_events)

    def flush_events(self) -> None:
        """Send every buffered event. Raises AgentTransportError (what was not sent stays)."""
        while batch := self._buffer.events(self._settings.max_events_per_report):
            active = [m.ref.to_proto() for m in self._board.snapshot().live.values()]
            self._link.call("status report", "ReportStatus",
                            pb.StatusReport(events=[e.message for e in batch], active=active))
            self._buffer.remove_events(e.key for e in batch)

    # -- metric windows ----------------------------------------------------------------------

    def tick(self) -> None:
        """Close the metric window if it is due: buffered (on disk) first, then sent if
        possible."""
        if closed := self._metrics.close_due_window():
            self._buffer_closed(closed)
            if self._link.ready:
                self._quietly(self.flush_metrics)

    def flush_metrics(self) -> None:
        """Send every buffered window. Raises AgentTransportError (what was not acknowledged
        stays buffered)."""
        while batch := self._buffer.windows(self._settings.max_windows_per_report):
            ack = self._link.call("metrics report", "ReportMetrics",
                                  pb.MetricsReport(windows=[w.to_proto() for w in batch]))
            # Refused windows are acknowledged with the rest: the same bytes would be refused
            # again, and holding them would block every later window.
            for rejection in ack.rejections:
                log.warning("the server refused metric window %s (%s); it is not sent again",
                            rejection.id, rejection.reason)
            self._buffer.remove_windows(w.window_id for w in batch)

    def keep_unsent(self) -> None:
        """At stop, once nothing is served any more: close the open window into the buffer,
        for the next run to send."""
        self._buffer_closed(self._metrics.close_window())

    # -- both --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send buffered events, then buffered windows. Raises AgentTransportError."""
        self.flush_events()
        self.flush_metrics()

    def _buffer_closed(self, closed: list[MetricWindowRecord]) -> None:
        """``closed`` into the buffer, then the checkpoint rewritten without them: in that
        order, a kill in between leaves the window in both files (held once at the next start)
        rather than in neither."""
        if closed:
            self._buffer.add_windows(closed)
        self._checkpoint.write()

    def _quietly(self, report: Callable[[], None]) -> None:
        """Best effort now; what fails stays buffered for the next successful sync."""
        try:
            report()
        except AgentTransportError as exc:
            log.debug("report deferred: %s", exc)
