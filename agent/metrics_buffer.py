"""What the control plane has not acknowledged yet: closed metric windows and install events,
held in memory and in the data dir (``metrics-buffer.json``) so that neither a restart nor a
SIGKILL loses them.

Invariants:
- Every change (an item added, items acknowledged, items dropped) is written to the file before
  the call returns (best effort: a write that fails, a full disk, is logged and the buffer goes
  on in memory), so an item is on disk before it is handed out to be sent, and leaves the file
  only once the server acknowledged it.
- The buffer is bounded in bytes, ``max_metrics_buffer_bytes``, each item measured as its JSON
  form in the file. Past the bound, items are dropped (and counted, in memory and in the file)
  in this order: routine windows (no failed inference, no NaN/Inf output), oldest first; then
  windows with failures, oldest first; install events last, oldest first, since they carry the
  rollout's state and the findings.
- A window is held once per id. Given a second window under an id it holds (a checkpoint of a
  window restored beside the record that window closed into) it keeps the one that counted
  more, in the place of the first.
- Items are handed out oldest first, events before windows: the order they happened in, and an
  install's news before the metrics of what it installed.
- Used by the sync thread only (and by start-up and stop, when it is not running): no lock.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from agent.metrics import MetricWindowRecord
from agent.settings import AgentSettings
from agent.store import AgentStore, BestEffortWrites, compact_json
from protos import edgefleet_pb2 as pb

log = logging.getLogger(__name__)

#: The file's layout; a file of another version is read as empty (and logged).
FORMAT = 1


@dataclass(frozen=True)
class BufferedEvent:
    """An install event waiting to be sent; ``key`` names it in ``remove_events``."""

    key: int
    message: pb.InstallEvent
    size: int


@dataclass(frozen=True)
class _BufferedWindow:
    record: MetricWindowRecord
    size: int


@dataclass(frozen=True)
class Dropped:
    """What the bound cost so far (this data dir, every run)."""

    windows: int = 0
    events: int = 0


class MetricsBuffer:
    """Closed windows and install events not yet acknowledged; see the module invariants."""

    def __init__(self, store: AgentStore, settings: AgentSettings) -> None:
        self._store = store
        self._limit = settings.max_metrics_buffer_bytes
        self._events: OrderedDict[int, BufferedEvent] = OrderedDict()
        self._windows: OrderedDict[str, _BufferedWindow] = OrderedDict()
        self._keys = itertools.count()
        self._bytes = 0
        self.dropped = Dropped()
        self._writes = BestEffortWrites(f"the metrics buffer ({store.metrics_buffer_path})")

    @property
    def size_bytes(self) -> int:
        """What the items take in the file (its few bytes of framing aside)."""
        return self._bytes

    # -- start-up ------------------------------------------------------------------------------

    def restore(self) -> None:
        """Take in what the file holds and, once, the windows an earlier version kept in
        ``metrics-pending.json`` (removed when the buffer's file holds them). An unreadable file
        or item is logged and left out: metrics are not worth refusing to start for."""
        legacy = self._store.read_legacy_pending_windows()
        doc = self._store.read_metrics_buffer()
        if doc and doc.get("format") != FORMAT:
            log.warning("%s has format %r, not %d: what it held is lost",
                        self._store.metrics_buffer_path, doc.get("format"), FORMAT)
            doc = {}
        dropped = doc.get("dropped", {})
        if isinstance(dropped, dict):
            self.dropped = Dropped(_count(dropped.get("windows")), _count(dropped.get("events")))
        for item in _items(doc, "events"):
            try:
                self._add_event(json_format.ParseDict(item, pb.InstallEvent()))
            except (json_format.ParseError, TypeError, ValueError) as exc:
                log.warning("skipping an unreadable stored install event: %s", exc)
        # The legacy windows are older than anything the buffer's file can hold.
        for item in [*legacy, *_items(doc, "windows")]:
            try:
                self._add_window(MetricWindowRecord.from_dict(item))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping an unreadable stored metric window: %s", exc)
        self._trim()
        if self._save() and legacy:
            try:
                self._store.remove_legacy_pending_windows()
            except OSError as exc:   # read again next start: the ids keep it from counting twice
                log.warning("could not remove %s: %s", self._store.legacy_pending_windows_path,
                            exc)
            log.info("moved %d metric windows from %s into %s", len(legacy),
                     self._store.legacy_pending_windows_path.name,
                     self._store.metrics_buffer_path.name)

    # -- adding --------------------------------------------------------------------------------

    def add_event(self, event: pb.InstallEvent) -> None:
        self._add_event(event)
        self._trim()
        self._save()

    def add_windows(self, records: Iterable[MetricWindowRecord]) -> bool:
        """Hold ``records`` (after those held); True when the file holds them."""
        for record in records:
            self._add_window(record)
        self._trim()
        return self._save()

    # -- sending -------------------------------------------------------------------------------

    def events(self, limit: int) -> list[BufferedEvent]:
        """The oldest ``limit`` events."""
        return list(itertools.islice(self._events.values(), limit))

    def windows(self, limit: int) -> list[MetricWindowRecord]:
        """The oldest ``limit`` windows."""
        return [w.record for w in itertools.islice(self._windows.values(), limit)]

    def remove_events(self, keys: Iterable[int]) -> None:
        """Forget events the server acknowledged."""
        for key in keys:
            if (event := self._events.pop(key, None)) is not None:
                self._bytes -= event.size
        self._save()

    def remove_windows(self, window_ids: Iterable[str]) -> None:
        """Forget windows the server acknowledged (accepted, already had, or refused)."""
        for window_id in window_ids:
            if (window := self._windows.pop(window_id, None)) is not None:
                self._bytes -= window.size
        self._save()

    # -- inside --------------------------------------------------------------------------------

    def _add_event(self, event: pb.InstallEvent) -> None:
        key = next(self._keys)
        size = _size(_event_doc(event))
        self._events[key] = BufferedEvent(key, event, size)
        self._bytes += size

    def _add_window(self, record: MetricWindowRecord) -> None:
        held = self._windows.get(record.window_id)
        if held is not None and held.record.count >= record.count:
            return
        window = _BufferedWindow(record, _size(record.to_dict()))
        self._bytes += window.size - (held.size if held is not None else 0)
        self._windows[record.window_id] = window   # an id held keeps its place

    def _trim(self) -> None:
        """Drop items, least telling first, until the buffer is within its bound."""
        excess = self._bytes - self._limit
        if excess <= 0:
            return
        windows = list(self._windows.values())
        order = ([w for w in windows if w.record.routine]
                 + [w for w in windows if not w.record.routine])
        dropped_windows = dropped_events = 0
        for window in order:
            if excess <= 0:
                break
            del self._windows[window.record.window_id]
            excess -= window.size
            dropped_windows += 1
        for event in list(self._events.values()):
            if excess <= 0:
                break
            del self._events[event.key]
            excess -= event.size
            dropped_events += 1
        self._bytes = self._limit + excess
        self.dropped = Dropped(self.dropped.windows + dropped_windows,
                               self.dropped.events + dropped_events)
        log.warning("metrics buffer full (max_metrics_buffer_bytes=%d): dropped %d metric "
                    "windows and %d install events the server had not heard (%d and %d in all)",
                    self._limit, dropped_windows, dropped_events, self.dropped.windows,
                    self.dropped.events)

    def _save(self) -> bool:
        doc = {
            "format": FORMAT,
            "events": [_event_doc(e.message) for e in self._events.values()],
            "windows": [w.record.to_dict() for w in self._windows.values()],
            "dropped": {"windows": self.dropped.windows, "events": self.dropped.events},
        }
        return self._writes.attempt(lambda: self._store.write_metrics_buffer(doc))


def _event_doc(event: pb.InstallEvent) -> dict[str, Any]:
    return json_format.MessageToDict(event, preserving_proto_field_name=True)


def _size(doc: dict[str, Any]) -> int:
    """Bytes ``doc`` takes in the file, with the comma that separates it from the next."""
    return len(compact_json(doc)) + 1


def _items(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = doc.get(name, [])
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
