"""A task that hits a transient database error is retried, and the retry really runs, in the
embedded worker on ``memory://`` (audit finding M4: retries asked for and never run left
versions pending until the 5-minute sweep)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from controlplane.app import ControlPlane
from controlplane.config import Settings
from controlplane.jobs.app import app, configure
from controlplane.jobs.base import PlaneTask
from controlplane.jobs.embedded import EmbeddedWorker

_attempts: list[float] = []
_done = threading.Event()


@app.task(base=PlaneTask, bind=True, name="tests.locked_once", retry_backoff=0.2)
def locked_once(self: PlaneTask) -> None:
    _attempts.append(time.monotonic())
    if len(_attempts) == 1:
        raise sa.exc.OperationalError("UPDATE variants", {}, Exception("database is locked"))
    _done.set()


def test_a_task_that_lost_to_a_lock_is_retried_and_the_retry_runs(tmp_path: Path) -> None:
    """Input tried: a task raising SQLite's "database is locked" on its first attempt."""
    settings = Settings(data_dir=tmp_path)
    plane = ControlPlane.from_settings(settings)
    worker = EmbeddedWorker(configure(settings, plane))
    worker.start()
    try:
        locked_once.delay()
        assert _done.wait(30), f"attempts: {len(_attempts)}"
    finally:
        worker.stop()
        plane.close()
    assert len(_attempts) == 2
