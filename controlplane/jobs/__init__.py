"""Background work: one Celery code path for both runtime shapes.

- ``app``       the Celery app, its configuration and beat schedule (``configure``)
- ``base``      ``PlaneTask``, the task base that owns the plane, its sessions and its retries
- ``outbox``    tasks sent only after the commit that asked for them, and held while the
                broker is down
- ``embedded``  Celery's own worker (and beat) in a thread of the server, on ``memory://``

``edgefleet worker`` (scaled out, on Redis) is ``controlplane.worker``. Domains keep their tasks
in their own ``tasks`` module and import ``app``/``PlaneTask``/``enqueue_after_commit`` from here.
"""
