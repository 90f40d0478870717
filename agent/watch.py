"""The ``agent-watch`` thread: holds a Watch stream to the control plane and wakes the sync loop
the moment the server announces a desired state newer than the one held.

Invariants:
- It only signals (``wake``); the sync thread stays the only writer of install state, and it
  fetches and verifies the document by Sync as after a poll, so a forged or stale event costs
  one Sync at most.
- A stream that fails is opened again after a jittered exponential backoff
  (``watch_backoff_min_seconds`` to ``watch_backoff_max_seconds``); one the server ended (its
  lifetime, for load balancers) after ``watch_reconnect_seconds``, jittered. Polling goes on
  regardless, so a server without Watch or past its stream limit only costs the push.
- It waits in the stream (an event, a keepalive, or the end), never in a loop of its own: an
  idle agent wakes once per server keepalive.
"""

from __future__ import annotations

import logging
import threading

from agent.backoff import Backoff, jittered
from agent.errors import AgentTransportError
from agent.link import ServerLink
from agent.settings import AgentSettings
from agent.trust_state import TrustState

log = logging.getLogger(__name__)


class WatchThread:
    """Runs until ``stop`` is set (the link's closing ends a stream in flight)."""

    def __init__(self, *, settings: AgentSettings, link: ServerLink, trust: TrustState,
                 wake: threading.Event, stop: threading.Event) -> None:
        self._settings = settings
        self._link = link
        self._trust = trust
        self._wake = wake
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="agent-watch", daemon=True)
        #: How many announcements woke the sync loop (what ``status`` and tests can tell).
        self.pushes = 0

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        s = self._settings
        backoff = Backoff(s.watch_backoff_min_seconds, s.watch_backoff_max_seconds, s.sync_jitter)
        while not self._stop.is_set():
            if not self._link.ready:   # not enrolled yet: the sync thread is at it
                self._stop.wait(jittered(s.watch_backoff_min_seconds, s.sync_jitter))
                continue
            try:
                for event in self._link.watch(self._trust.sequence):
                    backoff.reset()
                    if event.desired_sequence > self._trust.sequence:
                        self.pushes += 1
                        log.info("watch: the server announced desired state %d; syncing now",
                                 event.desired_sequence)
                        self._wake.set()
                delay = jittered(s.watch_reconnect_seconds, s.sync_jitter)
            except AgentTransportError as exc:
                if self._stop.is_set():
                    break
                delay = backoff.next_delay()
                log.info("watch: %s; polling meanwhile, watching again in %.1fs", exc, delay)
            self._stop.wait(delay)
