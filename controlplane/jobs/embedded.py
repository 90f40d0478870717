"""Celery's worker machinery (with beat) in a thread of the server, on the ``memory://`` broker.

This is the embedded default's background worker: the same tasks and the same Celery code as
``edgefleet worker``, run the way ``celery.contrib.testing.worker`` runs them.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import WorkController

START_TIMEOUT_SECONDS = 30.0


class EmbeddedWorker:
    """Start, then stop, a thread-pool worker and a beat thread for ``celery``."""

    def __init__(self, celery: Celery, *, concurrency: int = 2) -> None:
        self.celery = celery
        self.concurrency = concurrency
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        self._beat: Any = None
        self._started = threading.Event()

    def start(self) -> None:
        """Raises RuntimeError when the worker does not consume within START_TIMEOUT_SECONDS."""
        started = self._started

        class _Controller(WorkController):
            def on_consumer_ready(self, consumer: Any) -> None:
                started.set()

        self.celery.finalize()
        self.celery.set_current()
        self._worker = _Controller(
            app=self.celery,
            concurrency=self.concurrency,
            pool="threads",
            hostname="embedded@edgefleet",
            loglevel="WARNING",
            # The worker's own beat bootstep forks a process, which could not see this process's
            # memory:// broker (and forking beside gRPC threads is unsafe); beat runs as a thread.
            beat=False,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(
            target=self._worker.start, name="edgefleet-celery", daemon=True
        )
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError(
                f"embedded Celery worker did not start within {START_TIMEOUT_SECONDS:.0f} s")
        self._beat = EmbeddedService(self.celery, thread=True)
        self._beat.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._worker is None:
            return
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        # Stops the consumer and the pool, then the thread's start() returns.
        self._worker.stop(in_sighandler=False, exitcode=0)
        if self._thread is not None:
            self._thread.join(timeout)
        self._worker = None
