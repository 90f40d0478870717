"""Sending tasks only after the commit that asked for them, and holding them while Redis is down.

Invariants:
- ``enqueue_after_commit`` sends nothing before its session's transaction commits and nothing
  at all if it rolls back.
- A send the broker refused waits in a bounded, in-memory outbox (``OUTBOX_MAX``) and goes out,
  oldest first, when ``resend_unsent`` finds the broker answering; anything lost beyond that (a
  crash, a full outbox) is found by the periodic sweep and tick, since tasks are idempotent.
- Sending never raises into the code that committed: the commit stands.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import kombu.exceptions
from sqlalchemy import event
from sqlalchemy.orm import Session

from controlplane.jobs.app import app

log = logging.getLogger(__name__)

_PENDING_KEY = "edgefleet_after_commit"
OUTBOX_MAX = 10_000
_outbox: deque[tuple[Any, tuple[Any, ...]]] = deque(maxlen=OUTBOX_MAX)
_outbox_lock = threading.Lock()


def enqueue_after_commit(session: Session, task: str | Any, *args: Any) -> None:
    """Send ``task(*args)`` once ``session``'s transaction commits; never if it rolls back.

    ``task`` is a task's registered name (what domain services pass: a service says which task
    follows it without importing its tasks module) or a Celery task.
    """
    session.info.setdefault(_PENDING_KEY, []).append((task, args))


def _send(task: str | Any, args: tuple[Any, ...]) -> None:
    # By name through the app: a server that only sends need not import the tasks' modules.
    if isinstance(task, str):
        app.send_task(task, args=args)
    else:
        task.apply_async(args=args)


def _name(task: str | Any) -> str:
    return task if isinstance(task, str) else str(task.name)


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    # Released SAVEPOINTs fire after_commit too (controlplane.notify saw it): only the outermost
    # commit makes a task's reason durable.
    if session.in_nested_transaction():
        return
    for task, args in session.info.pop(_PENDING_KEY, []):
        try:
            _send(task, args)
        except kombu.exceptions.OperationalError as exc:  # the broker is down: expected, brief
            with _outbox_lock:
                _outbox.append((task, args))
            log.error("could not send task %s%r (%s); it is sent again when the broker answers",
                      _name(task), args, exc)
        except Exception:
            log.exception(
                "could not send task %s%r; the periodic tick will retry it", _name(task), args
            )


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def unsent_count() -> int:
    """How many task sends wait for the broker to come back."""
    return len(_outbox)


def resend_unsent() -> int:
    """Send what a broker outage held back, oldest first, stopping at the first send the broker
    still refuses; returns how many went out. Blocking: call it off the event loop."""
    sent = 0
    while True:
        with _outbox_lock:
            if not _outbox:
                return sent
            task, args = _outbox[0]
        try:
            _send(task, args)
        except kombu.exceptions.OperationalError:
            return sent
        except Exception:
            log.exception("dropping unsendable task %s%r; the periodic tick covers it",
                          _name(task), args)
        with _outbox_lock:
            if _outbox and _outbox[0] == (task, args):
                _outbox.popleft()
        sent += 1
