"""``edgefleet server``: the grpc.aio control plane, plus the embedded worker when no Redis.

Start-up order: schema (embedded: migrate; external: wait for ``edgefleet init``), signing key,
first admin token (``startup``), Celery wiring, gRPC services (+ health, reflection), then serve
until SIGTERM/SIGINT.
Shutdown: health goes NOT_SERVING, in-flight calls get ``shutdown_grace_seconds``, buffered
last-seen times are flushed, the Redis subscription ends, the embedded worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from controlplane import logs, notify
from controlplane.api.admin import AdminServicer
from controlplane.api.device import DeviceServicer, LastSeenBuffer
from controlplane.app import ControlPlane
from controlplane.auth.interceptor import AuthInterceptor
from controlplane.config import Settings, redact_url
from controlplane.db import check_schema
from controlplane.errors import ConfigurationError
from controlplane.events import announce
from controlplane.fleet.watchers import WatchHub
from controlplane.jobs import outbox
from controlplane.jobs.app import configure
from controlplane.jobs.embedded import EmbeddedWorker
from controlplane.observability import serve_metrics
from controlplane.startup import init_fleet, wait_until
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

log = logging.getLogger("edgefleet.server")

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["DeviceService"].full_name,
    pb.DESCRIPTOR.services_by_name["AdminService"].full_name,
)


def prepare(settings: Settings, *, output: str = "table") -> ControlPlane:
    """Schema, key, first admin token; returns the wired plane.

    Embedded default (no ``--db``): this server initialises the fleet itself (``init_fleet``).
    Scaled out: it waits (``Settings.start_wait_seconds``) for the database and a schema at head
    (``edgefleet init`` or ``db upgrade``), then makes the fleet's first start if nobody has: the
    signing key and the first admin token, which later starts and other replicas find.

    Raises DependencyUnreachableError, SchemaError, SigningKeyError (see ``startup``).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        wait_until(lambda: check_schema(settings.db_url), what="the database schema",
                   settings=settings)
        plane, result = wait_until(lambda: init_fleet(settings, migrate=False),
                                   what="the fleet's signing key", settings=settings)
    else:
        plane, result = init_fleet(settings)
    if result.admin_token:
        announce(output, f"admin token (also in {result.admin_token_path}, mode 0600):\n"
                 f"{result.admin_token}", "admin_token", token=result.admin_token,
                 path=str(result.admin_token_path))
    return plane


def _listen(server: grpc.aio.Server, settings: Settings) -> int:
    """Bind ``settings.listen``: TLS when a certificate and key are given, else plaintext."""
    try:
        if settings.tls_cert is None or settings.tls_key is None:
            port = server.add_insecure_port(settings.listen)
        else:
            try:
                pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read the TLS certificate or key: {exc}") from exc
            port = server.add_secure_port(settings.listen, grpc.ssl_server_credentials([pair]))
    except RuntimeError:  # grpc raises "Failed to bind" (older versions returned 0)
        port = 0
    if port == 0:
        raise ConfigurationError(
            f"cannot listen on {settings.listen}: the port is taken (another server?) or the host "
            f"is not this machine's; choose another with --listen"
        )
    return port


async def serve_async(
    settings: Settings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    output: str = "table",
) -> int:
    if problems := settings.problems():  # the CLI checked already; other callers get it here
        raise ConfigurationError("; ".join(problems))
    plane = prepare(settings, output=output)
    celery = configure(settings, plane)

    opts = [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(interceptors=[AuthInterceptor(plane)], options=opts)
    last_seen = LastSeenBuffer()
    watchers = WatchHub(settings.watch_max_streams)
    pb_grpc.add_DeviceServiceServicer_to_server(DeviceServicer(plane, last_seen, watchers),
                                                server)
    pb_grpc.add_AdminServiceServicer_to_server(AdminServicer(plane), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    host = settings.listen.rsplit(":", 1)[0]
    # Bind everything before starting any thread: a port in use ends the start cleanly.
    try:
        port = _listen(server, settings)
        if settings.metrics_port is not None:
            serve_metrics(settings.metrics_port, host=host)
    except BaseException:
        plane.close()
        raise
    worker = None
    if settings.embedded:
        worker = EmbeddedWorker(celery)
        worker.start()
    await server.start()
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    database = (
        "SQLite in the data dir" if not settings.database_url else redact_url(settings.db_url)
    )
    jobs = (
        "in-process Celery worker"
        if settings.embedded
        else "Celery on Redis (run `edgefleet worker`)"
    )
    tls = "TLS" if settings.tls_cert else "plaintext (no --tls-cert; keep it on a trusted network)"
    announce(
        output,
        f"edgefleet server listening on {host}:{port} ({tls}); database: {database}; jobs: {jobs}; "
        f"data in {settings.data_dir}",
        "listening", address=f"{host}:{port}", tls=settings.tls_cert is not None,
        database=database, jobs=jobs, data_dir=str(settings.data_dir.resolve()),
    )

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Signal handlers exist only in the main thread; tests run the server in another.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    flusher = asyncio.create_task(last_seen.run(plane, settings.last_seen_flush_seconds, stop))
    # Desired-state changes reach this server's Sync cache and watch streams: at once from this
    # process's commits (and the embedded worker's), over Redis from the other processes'.
    for listener in (plane.desired_cache, watchers):
        notify.add_listener(listener)
    subscriber = None
    if settings.redis_url:
        subscriber = asyncio.create_task(notify.RedisSubscriber(settings).run(stop))
    resender = asyncio.create_task(_resend_unsent(settings.task_resend_seconds, stop))
    if ready is not None:
        ready.set()
    await stop.wait()

    log.info("shutting down: draining calls for %.1f s", settings.shutdown_grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_seconds)
    await flusher
    await resender
    if subscriber is not None:
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
    for listener in (plane.desired_cache, watchers):
        notify.remove_listener(listener)
    await last_seen.flush(plane)
    if worker is not None:
        worker.stop()
    plane.close()
    announce(output, "edgefleet server stopped", "stopped")
    return 0


async def _resend_unsent(interval: float, stop: asyncio.Event) -> None:
    """Every ``interval``, send the tasks a broker outage held back (a model pushed while Redis
    was down is measured seconds after it returns, not at the next sweep)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if outbox.unsent_count():
            sent = await asyncio.to_thread(outbox.resend_unsent)
            if sent:
                log.info("the broker answers again: sent %d held-back task(s)", sent)


def serve(settings: Settings, *, output: str = "table") -> int:
    logs.configure()
    return asyncio.run(serve_async(settings, output=output))
