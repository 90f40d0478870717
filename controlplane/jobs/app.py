"""The Celery app and its configuration, shared by the embedded worker and ``edgefleet worker``.

Invariants: tasks are JSON-serialised, ``acks_late`` and idempotent (a redelivery is harmless);
the broker is Redis when ``Settings.redis_url`` is set and ``memory://`` (in this process)
otherwise; the beat schedule is the same in both shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celery import Celery

from controlplane import notify
from controlplane.config import Settings
from controlplane.jobs.base import bind_plane

if TYPE_CHECKING:  # the plane imports the domains, whose tasks import this
    from controlplane.app import ControlPlane

app = Celery("edgefleet", include=[
    "controlplane.registry.tasks", "controlplane.optimize.tasks", "controlplane.rollouts.tasks",
])
app.conf.update(
    # Until ``configure`` says otherwise, sends stay in this process (never a default AMQP
    # broker on localhost that happens to answer).
    broker_url="memory://",
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)


def configure(settings: Settings, plane: ControlPlane) -> Celery:
    """Point the Celery app at the broker for ``settings`` and the plane its tasks run against.

    It also becomes the process's default app: a task's class binds lazily to the *current*
    app of the thread that first asks (Celery's ``Task._get_app``), and in a worker's pool
    thread that was Celery's own default app, on its default broker, so every retry was sent
    where no worker listens (or to whatever AMQP broker answered on localhost).
    """
    bind_plane(plane)
    # Desired-state changes made here are told to the servers: over Redis when scaled out.
    notify.configure(settings)
    app.set_default()
    app.set_current()
    app.conf.update(
        broker_url=settings.redis_url or "memory://",
        beat_schedule={
            "rollouts-tick": {
                "task": "rollouts.tick",
                "schedule": settings.rollout_tick_seconds,
            },
            "registry-sweep": {
                "task": "registry.sweep_pending",
                "schedule": settings.measure_sweep_seconds,
            },
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        broker_transport_options={"polling_interval": 0.2} if settings.embedded else {},
    )
    return app
