"""``PlaneTask``: the base of every EdgeFleet task.

A task reaches the control plane's dependencies (sessions, store, signer, clock, settings) through
``self.plane``, bound once per process by ``jobs.app.configure``. Only errors known to be
transient are retried, with backoff: a database that does not answer, a transaction that lost to
a concurrent one (SQLite's "database is locked", PostgreSQL's serialization failures), and what a
task names in its own ``autoretry_for``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Task
from sqlalchemy.exc import OperationalError

from controlplane.errors import DependencyUnreachableError

if TYPE_CHECKING:  # the plane imports the domains, whose tasks import this
    from controlplane.app import ControlPlane

#: Errors any task may retry: the database is away or busy for a moment.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, DependencyUnreachableError)

_plane: ControlPlane | None = None


def bind_plane(plane: ControlPlane) -> None:
    """Make ``plane`` the one this process's tasks run against."""
    global _plane
    _plane = plane


def current_plane() -> ControlPlane:
    """The bound plane. Raises RuntimeError when ``jobs.app.configure`` was not called."""
    if _plane is None:
        raise RuntimeError("jobs.app.configure() was not called in this process")
    return _plane


class PlaneTask(Task):
    """Base for EdgeFleet tasks: owns the plane, retries transient database errors."""

    abstract = True
    acks_late = True
    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_backoff_max = 60
    max_retries = 5

    @property
    def plane(self) -> ControlPlane:
        return current_plane()
