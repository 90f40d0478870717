"""The desired-state bus on a real Redis: after commit only, across processes' connections, and
a lost subscription clears the Sync cache until it is back."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from controlplane import notify
from controlplane.config import Settings
from controlplane.db import make_engine, make_session_factory, transaction
from controlplane.fleet.desired_cache import CachedState, DesiredStateCache

LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class Heard:
    def __init__(self) -> None:
        self.changes: list[tuple[str, int]] = []
        self.losses = self.resumes = 0
        self.event = threading.Event()

    def changed(self, device_id: str, sequence: int) -> None:
        self.changes.append((device_id, sequence))
        self.event.set()

    def lost(self) -> None:
        self.losses += 1

    def resumed(self) -> None:
        self.resumes += 1


@pytest.fixture
def heard() -> Iterator[Heard]:
    h = Heard()
    notify.add_listener(h)
    try:
        yield h
    finally:
        notify.remove_listener(h)


def test_nothing_is_told_before_the_commit_nor_after_a_rollback(heard: Heard,
                                                                tmp_path: Path) -> None:
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with transaction(sessions) as s:
        notify.notify_after_commit(s, "d", 3)
        assert heard.changes == []
    assert heard.changes == [("d", 3)]
    # A released SAVEPOINT is not a commit (SQLAlchemy fires after_commit for it): the rollout
    # engine publishes inside one, and a server told then would read the old state.
    with transaction(sessions) as s:
        with s.begin_nested():
            notify.notify_after_commit(s, "n", 5)
        with pytest.raises(KeyError), s.begin_nested():
            raise KeyError("a savepoint rolled back keeps the outer notifications")
        assert heard.changes == [("d", 3)]
    assert heard.changes == [("d", 3), ("n", 5)]
    with pytest.raises(RuntimeError), transaction(sessions) as s:
        notify.notify_after_commit(s, "e", 4)
        raise RuntimeError("rolled back")
    assert heard.changes == [("d", 3), ("n", 5)]


def test_the_channel_carries_the_database_number() -> None:
    assert notify.channel_for("redis://h:6379/3") != notify.channel_for("redis://h:6379/4")


def _run_subscriber(settings: Settings) -> tuple[notify.RedisSubscriber, asyncio.AbstractEventLoop,
                                                 asyncio.Event, threading.Thread]:
    loop = asyncio.new_event_loop()
    holder: dict[str, object] = {}
    ready = threading.Event()

    async def main() -> None:
        stop = asyncio.Event()
        sub = notify.RedisSubscriber(settings, client_name=f"edgefleet-test-{id(settings)}")
        holder.update(sub=sub, stop=stop)
        ready.set()
        await sub.run(stop)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    return holder["sub"], loop, holder["stop"], thread  # type: ignore[return-value]


def _wait(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_change_published_elsewhere_is_heard_and_a_lost_subscription_clears_the_cache(
    redis_db_url: str, heard: Heard, tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_db_url,
                        notify_backoff_min_seconds=0.05, notify_backoff_max_seconds=0.2,
                        notify_health_check_seconds=0.5)
    cache = DesiredStateCache(size=10, max_age=60, refresh=60, serving=False)
    notify.add_listener(cache)
    sub, loop, stop, thread = _run_subscriber(settings)
    try:
        _wait(sub.subscribed.is_set, "the subscription")
        cache.put("d", CachedState(1, LATER), cache.fill_token())
        assert cache.lookup("d", 1, dt.datetime.now(dt.UTC)) is not None
        # Another process (a worker) publishes: a plain Redis client on the same channel.
        other = redis.Redis.from_url(redis_db_url)
        other.publish(notify.channel_for(redis_db_url), notify.message("d", 2))
        _wait(lambda: ("d", 2) in heard.changes, "the published change")
        assert cache.lookup("d", 1, dt.datetime.now(dt.UTC)) is None
        cache.put("d", CachedState(2, LATER), cache.fill_token())
        assert cache.lookup("d", 2, dt.datetime.now(dt.UTC)) is not None
        # The subscription's connection is killed (as a Redis restart or a network cut would).
        losses = heard.losses
        for client in other.client_list(_type="pubsub"):
            if client["name"] == sub.client_name:
                other.client_kill_filter(_id=client["id"])
        _wait(lambda: heard.losses > losses, "the loss to be noticed")
        assert len(cache) == 0 and cache.lookup("d", 2, dt.datetime.now(dt.UTC)) is None
        _wait(sub.subscribed.is_set, "the subscription again")
        cache.put("d", CachedState(2, LATER), cache.fill_token())
        assert cache.lookup("d", 2, dt.datetime.now(dt.UTC)) is not None
        other.publish(notify.channel_for(redis_db_url), notify.message("d", 3))
        _wait(lambda: ("d", 3) in heard.changes, "a change after the resubscription")
    finally:
        notify.remove_listener(cache)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
