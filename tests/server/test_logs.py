"""The server's and worker's log: routine periodic-task lines dropped, everything else kept."""

from __future__ import annotations

import io
import logging

from controlplane import logs


def test_routine_tick_lines_are_dropped_and_warnings_about_them_kept() -> None:
    """Input tried: beat's and the worker's INFO lines for rollouts.tick, a WARNING about the
    same task, and an INFO line about another task."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logs.celery")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logs.quiet_routine([handler])
        logger.info("Scheduler: Sending due task rollouts-tick (rollouts.tick)")
        logger.info("Task %s[%s] succeeded in %ss: None", "registry.sweep_pending", "abc", 0.01)
        logger.warning("Task rollouts.tick[abc] raised: database is down")
        logger.info("Task registry.measure_version[abc] succeeded")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "Task rollouts.tick[abc] raised: database is down",
        "Task registry.measure_version[abc] succeeded",
    ]
