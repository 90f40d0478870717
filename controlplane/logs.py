"""Logging for the long-running processes (``edgefleet server`` and ``edgefleet worker``).

One format everywhere, and no line per routine tick: the periodic tasks (every few seconds) log
only when they warn or fail, so a healthy server's log shows what happened, not that time passed.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Tasks beat sends on a timer; their "sent/received/succeeded" lines are noise.
ROUTINE_TASKS = ("rollouts.tick", "rollouts.step", "registry.sweep_pending")

# Libraries whose INFO lines say nothing an operator acts on.
_QUIET = {
    "alembic.runtime.plugins": logging.WARNING,
    "kombu.connection": logging.ERROR,  # "No hostname was supplied" for memory://
}


class RoutineTaskFilter(logging.Filter):
    """Drops INFO-and-below records that mention a routine periodic task."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in ROUTINE_TASKS)


def quiet_routine(handlers: list[logging.Handler] | None = None) -> None:
    """Filter routine-task lines on ``handlers`` (default: the root logger's), quiet libraries.

    Filters go on handlers because a logger's own filters do not see its children's records.
    """
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, RoutineTaskFilter) for f in handler.filters):
            handler.addFilter(RoutineTaskFilter())
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


def configure(level: int = logging.INFO) -> None:
    """Log to stderr in the one format, with routine lines dropped."""
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    quiet_routine()
