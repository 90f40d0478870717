"""Each device's current desired state in this server's memory, so a nothing-changed Sync is
answered without the database.

Invariants:
- An entry is what the database held at some moment after the last change this server heard
  of for the device: ``changed`` (from ``controlplane.notify``) replaces the entry with a floor
  at the new sequence, and a fill older than the floor, or begun before a ``clear``, is dropped.
- Nothing is served while the bus cannot hear changes (``lost``, and from the start when the
  server subscribes to Redis, until ``resumed``); ``lost`` and ``resumed`` also clear the map.
- An entry is served for at most ``max_age`` seconds (a change whose publish failed is heard
  that late at the latest), never for a ``known_sequence`` above it (the device heard of a newer
  one elsewhere: the database decides), and never once its document is within ``refresh`` of
  expiry (``fleet.desired_for_sync`` re-signs it).
- At most ``size`` devices are held; the least recently used go first.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedState:
    """A device's stored desired state; ``sequence`` 0 and no document when it has none."""

    sequence: int
    expires_at: dt.datetime | None = None
    payload: bytes = b""
    signature: bytes = b""
    key_id: str = ""

    @property
    def has_document(self) -> bool:
        return self.sequence > 0 and self.expires_at is not None


@dataclass(frozen=True)
class _Entry:
    state: CachedState | None      # None: a floor, not yet filled
    floor: int                     # the highest sequence this server heard of
    at: float                      # monotonic time it was filled


class DesiredStateCache:
    """Thread-safe: filled from the database pool's threads, read on the event loop, told of
    changes from whichever thread committed them."""

    def __init__(self, *, size: int, max_age: float, refresh: float, serving: bool) -> None:
        self.size, self.max_age = size, max_age
        self.refresh = dt.timedelta(seconds=refresh)
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0
        self._serving = serving and size > 0
        self._enabled = size > 0
        self.hits = self.misses = 0

    def lookup(self, device_id: str, known_sequence: int, now: dt.datetime) -> CachedState | None:
        """The device's desired state when memory can answer for ``known_sequence`` at ``now``;
        None when the database must be asked."""
        with self._lock:
            entry = self._data.get(device_id) if self._serving else None
            state = entry.state if entry is not None else None
            if (entry is None or state is None or known_sequence > state.sequence
                    or time.monotonic() - entry.at > self.max_age
                    or (state.expires_at is not None and state.expires_at - now < self.refresh)):
                self.misses += 1
                return None
            self._data.move_to_end(device_id)
            self.hits += 1
            return state

    def fill_token(self) -> int:
        """Take before reading the database; hand to ``put`` with what was read."""
        with self._lock:
            return self._epoch

    def put(self, device_id: str, state: CachedState, token: int) -> None:
        """Remember ``state`` as read from the database since ``fill_token`` gave ``token``;
        dropped if a change newer than it was heard, or the map was cleared, meanwhile."""
        with self._lock:
            if not self._serving or token != self._epoch:
                return
            old = self._data.get(device_id)
            floor = old.floor if old is not None else 0
            if state.sequence < floor:
                return
            self._store(device_id, _Entry(state, max(floor, state.sequence), time.monotonic()))

    def changed(self, device_id: str, sequence: int) -> None:
        with self._lock:
            if not self._enabled:
                return
            old = self._data.get(device_id)
            if old is not None and old.state is not None and old.state.sequence >= sequence:
                return   # heard already (our own commit, then Redis' echo of it)
            floor = max(sequence, old.floor if old is not None else 0)
            self._store(device_id, _Entry(None, floor, time.monotonic()))

    def lost(self) -> None:
        with self._lock:
            self._serving = False
            self._clear()

    def resumed(self) -> None:
        with self._lock:
            self._serving = self._enabled
            self._clear()

    def __len__(self) -> int:
        return len(self._data)

    def _clear(self) -> None:
        self._epoch += 1
        self._data.clear()

    def _store(self, device_id: str, entry: _Entry) -> None:
        self._data[device_id] = entry
        self._data.move_to_end(device_id)
        while len(self._data) > self.size:
            self._data.popitem(last=False)
