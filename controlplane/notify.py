"""The "desired state changed" bus: device X has desired sequence N, told to every server.

Who publishes: ``fleet.services.publish_desired_state`` (the one writer of desired states) calls
``notify_after_commit``; servers, embedded workers and ``edgefleet worker`` processes alike.
Who listens: each server's desired-state cache (invalidate) and its watch streams (wake).

Invariants:
- Nothing is published before the transaction that changed the desired state commits, and
  nothing at all when it rolls back (the same after-commit hook as ``jobs.outbox``).
- Every notification reaches this process's listeners at once (``add_listener``), in the
  committing thread: an embedded server hears its own worker without Redis, and a server
  answers its next Sync from the new state even before Redis echoes it.
- With a Redis URL (``configure``) it is also published on ``channel_for(url)``; ``RedisSubscriber``
  delivers what other processes publish. A publish that fails is logged, never raised into the
  committed code; what it would have told is covered by the cache's age limit
  (``desired_cache_max_age_seconds``) and the agents' polling.
- While the subscription is down, listeners are told ``lost()`` (the cache then serves nothing
  from memory: it cannot hear invalidations) and ``resumed()`` once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from controlplane.config import Settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "edgefleet:desired-state:db"
_PENDING_KEY = "edgefleet_notify_after_commit"


class Listener(Protocol):
    def changed(self, device_id: str, sequence: int) -> None:
        """Called from any thread; must not block."""

    def lost(self) -> None:
        """The Redis subscription is down: other processes' changes are not heard."""

    def resumed(self) -> None:
        """The subscription is back (whatever was published meanwhile was missed)."""


_listeners: list[Listener] = []
_lock = threading.Lock()
_redis: Any = None   # redis.Redis, when this process publishes to Redis
_channel = ""


def channel_for(redis_url: str) -> str:
    """The channel of the fleet on ``redis_url``. Pub/sub ignores Redis' database numbers, so
    the number is in the name: two fleets on one Redis (databases 0 and 1) do not hear each
    other."""
    import redis

    db = redis.connection.parse_url(redis_url).get("db", 0)
    return f"{CHANNEL_PREFIX}{db}"


def configure(settings: Settings) -> None:
    """Publish to Redis when ``settings`` has a Redis URL (scaled out), else only in-process."""
    global _redis, _channel
    if not settings.redis_url:
        _redis = None
        return
    import redis

    _channel = channel_for(settings.redis_url)
    _redis = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.notify_redis_timeout_seconds,
        socket_connect_timeout=settings.notify_redis_timeout_seconds,
    )


def add_listener(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def notify_after_commit(session: Session, device_id: str, sequence: int) -> None:
    """Tell everyone ``device_id`` has desired ``sequence`` once ``session`` commits."""
    session.info.setdefault(_PENDING_KEY, {})[device_id] = sequence


def message(device_id: str, sequence: int) -> str:
    return f"{device_id} {sequence}"


def parse(data: bytes | str) -> tuple[str, int] | None:
    """``(device_id, sequence)`` out of a message, None for anything else."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    device_id, _, seq = text.partition(" ")
    if not device_id or not seq.isdigit():
        return None
    return device_id, int(seq)


def deliver(device_id: str, sequence: int) -> None:
    """Tell this process's listeners (what a subscriber does with a message it received)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener.changed(device_id, sequence)
        except Exception:
            log.exception("a desired-state listener failed on %s %d", device_id, sequence)


def tell_all(what: Callable[[Listener], None]) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            what(listener)
        except Exception:
            log.exception("a desired-state listener failed")


def publish(device_id: str, sequence: int) -> None:
    """This process's listeners at once, then Redis when configured. Never raises."""
    deliver(device_id, sequence)
    client = _redis
    if client is None:
        return
    try:
        client.publish(_channel, message(device_id, sequence))
    except Exception as exc:  # redis' ConnectionError/TimeoutError: the commit stands
        log.warning("could not publish desired state %d of device %s on Redis (%s); other "
                    "servers learn it from their cache's age limit and the device's poll",
                    sequence, device_id, exc)


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a SAVEPOINT is released (the rollout engine
    # publishes inside begin_nested): nothing is committed until the outermost transaction is.
    if session.in_nested_transaction():
        return
    for device_id, sequence in session.info.pop(_PENDING_KEY, {}).items():
        publish(device_id, sequence)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    # A SAVEPOINT rolled back leaves the outer transaction's changes to be told; the one
    # publish_desired_state refuses raises before it asks for a notification.
    if session.in_nested_transaction():
        return
    session.info.pop(_PENDING_KEY, None)


class RedisSubscriber:
    """Delivers what other processes publish on the fleet's channel to this process's listeners,
    in an asyncio task of the server. On a lost connection it tells ``lost()`` and resubscribes
    with jittered exponential backoff (``notify_backoff_min_seconds`` to ``..._max_seconds``).
    Its connection is named ``client_name`` (``CLIENT LIST`` shows who listens)."""

    def __init__(self, settings: Settings, *, client_name: str | None = None) -> None:
        if not settings.redis_url:
            raise ValueError("RedisSubscriber needs a Redis URL")
        self._settings = settings
        self._channel = channel_for(settings.redis_url)
        self.client_name = client_name or f"edgefleet-notify-{os.getpid()}"
        #: Set while subscribed (tests and the benchmark wait for it).
        self.subscribed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        import redis.asyncio as aioredis
        import redis.exceptions

        s = self._settings
        delay = s.notify_backoff_min_seconds
        while not stop.is_set():
            client = aioredis.Redis.from_url(
                s.redis_url or "", socket_connect_timeout=s.notify_redis_timeout_seconds,
                health_check_interval=s.notify_health_check_seconds,
                client_name=self.client_name)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    # Whatever was published before (or while we were away) was not heard.
                    tell_all(lambda listener: listener.resumed())
                    self.subscribed.set()
                    log.info("subscribed to desired-state changes on Redis")
                    delay = s.notify_backoff_min_seconds
                    while not stop.is_set():
                        msg = await pubsub.get_message(
                            timeout=s.notify_health_check_seconds)
                        if msg is None:
                            # Nothing for a while: ping, so a dead connection is noticed
                            # (redis-py checks health only on reads it makes itself).
                            await pubsub.ping()
                            continue
                        parsed = parse(msg.get("data", b""))
                        if parsed is not None:
                            deliver(*parsed)
            except (redis.exceptions.RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    log.warning("lost the desired-state subscription on Redis (%s); serving "
                                "Syncs from the database until it is back", exc)
                self.subscribed.clear()
                tell_all(lambda listener: listener.lost())
                wait = delay * random.uniform(0.5, 1.0)
                delay = min(delay * 2, s.notify_backoff_max_seconds)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self.subscribed.clear()
