"""The devices holding a Watch stream on this server, woken when their desired state changes.

Invariants:
- At most ``limit`` streams are open at once; one more is refused with ResourceExhaustedError
  (the device polls instead and tries again later).
- ``changed`` may be called from any thread (a committing database thread, the embedded
  worker, the Redis subscriber); it only hands the news to the event loop, never blocks.
- A stream hears only of its own device: wakes are keyed by the authenticated device id.
- A change heard while the stream's owner was not waiting is kept (the highest sequence), so
  nothing between two waits is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from controlplane.errors import ResourceExhaustedError


class Watch:
    """One open stream: ``next`` returns the newest sequence heard, or None on timeout."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._heard = 0
        self._event = asyncio.Event()

    def _tell(self, sequence: int) -> None:
        self._heard = max(self._heard, sequence)
        self._event.set()

    async def next(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=timeout)
        if not self._event.is_set():
            return None
        self._event.clear()
        heard, self._heard = self._heard, 0
        return heard


class WatchHub:
    """Created on the server's event loop; ``changed`` is the bus listener's entry point."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._loop = asyncio.get_running_loop()
        self._watches: dict[str, set[Watch]] = {}
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def open(self, device_id: str) -> Iterator[Watch]:
        """Register a stream for ``device_id`` (on the event loop). Raises
        ResourceExhaustedError past ``limit``."""
        if self._count >= self.limit:
            raise ResourceExhaustedError(
                f"this server holds {self.limit} watch streams already (setting "
                f"watch_max_streams); poll with Sync and watch again later")
        watch = Watch(device_id)
        self._watches.setdefault(device_id, set()).add(watch)
        self._count += 1
        try:
            yield watch
        finally:
            self._count -= 1
            watches = self._watches.get(device_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[device_id]

    def changed(self, device_id: str, sequence: int) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):   # the loop closed between the check and here
            self._loop.call_soon_threadsafe(self._wake, device_id, sequence)

    def lost(self) -> None:
        """Nothing to do: streams stay open, devices poll meanwhile."""

    def resumed(self) -> None:
        """Nothing to do: a change missed meanwhile reaches devices by their poll."""

    def _wake(self, device_id: str, sequence: int) -> None:
        for watch in self._watches.get(device_id, ()):
            watch._tell(sequence)
