"""The per-server Sync cache: fills, invalidation by notifications, races, clearing, bounds."""

from __future__ import annotations

import datetime as dt

from controlplane.fleet.desired_cache import CachedState, DesiredStateCache

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=7)


def _cache(**kw: object) -> DesiredStateCache:
    args: dict[str, object] = {"size": 10, "max_age": 60.0, "refresh": 3600.0, "serving": True}
    args.update(kw)
    return DesiredStateCache(**args)  # type: ignore[arg-type]


def _state(seq: int, expires: dt.datetime = LATER) -> CachedState:
    return CachedState(sequence=seq, expires_at=expires, payload=b"p%d" % seq, signature=b"s")


def test_a_fill_is_served_until_a_change_is_heard() -> None:
    c = _cache()
    assert c.lookup("d", 0, NOW) is None
    c.put("d", _state(5), c.fill_token())
    assert c.lookup("d", 5, NOW) == _state(5)
    assert c.lookup("d", 0, NOW) == _state(5)     # the device is behind: served the document
    c.changed("d", 6)
    assert c.lookup("d", 5, NOW) is None          # the database is asked again
    c.put("d", _state(6), c.fill_token())
    assert c.lookup("d", 6, NOW) == _state(6)


def test_a_fill_older_than_a_change_heard_meanwhile_is_dropped() -> None:
    c = _cache()
    token = c.fill_token()           # a Sync starts reading sequence 5 ...
    c.changed("d", 6)                # ... while 6 commits and is told
    c.put("d", _state(5), token)
    assert c.lookup("d", 0, NOW) is None
    c.put("d", _state(6), c.fill_token())
    assert c.lookup("d", 0, NOW) == _state(6)
    c.changed("d", 6)                # Redis' echo of our own commit changes nothing
    assert c.lookup("d", 6, NOW) == _state(6)


def test_a_device_ahead_of_the_entry_is_sent_to_the_database() -> None:
    """A device that heard of 7 from another server, before this one did, must not be told
    it is ahead by a stale entry: the database decides."""
    c = _cache()
    c.put("d", _state(6), c.fill_token())
    assert c.lookup("d", 7, NOW) is None


def test_a_document_near_expiry_and_an_old_entry_are_not_served() -> None:
    c = _cache(refresh=3600.0)
    c.put("d", _state(1, expires=NOW + dt.timedelta(minutes=30)), c.fill_token())
    assert c.lookup("d", 1, NOW) is None          # desired_for_sync re-signs it
    old = _cache(max_age=0.0001)
    old.put("d", _state(1), old.fill_token())
    import time
    time.sleep(0.001)
    assert old.lookup("d", 1, NOW) is None


def test_a_lost_subscription_clears_and_stops_serving_until_resumed() -> None:
    c = _cache()
    c.put("d", _state(1), c.fill_token())
    token = c.fill_token()
    c.lost()
    assert c.lookup("d", 1, NOW) is None and len(c) == 0
    c.put("d", _state(1), c.fill_token())         # fills while deaf are not kept
    assert len(c) == 0
    c.resumed()
    c.put("d", _state(1), token)                  # begun before the clear: dropped
    assert c.lookup("d", 1, NOW) is None
    c.put("d", _state(1), c.fill_token())
    assert c.lookup("d", 1, NOW) == _state(1)


def test_a_cache_that_starts_deaf_serves_once_resumed() -> None:
    c = _cache(serving=False)
    c.put("d", _state(1), c.fill_token())
    assert c.lookup("d", 1, NOW) is None
    c.resumed()
    c.put("d", _state(1), c.fill_token())
    assert c.lookup("d", 1, NOW) == _state(1)


def test_at_most_size_devices_the_least_recently_used_go_first() -> None:
    c = _cache(size=3)
    for d in "abc":
        c.put(d, _state(1), c.fill_token())
    assert c.lookup("a", 1, NOW) is not None      # a is now the most recent
    c.put("e", _state(1), c.fill_token())
    assert len(c) == 3
    assert c.lookup("b", 1, NOW) is None and c.lookup("a", 1, NOW) is not None
    off = _cache(size=0)
    off.put("a", _state(1), off.fill_token())
    assert off.lookup("a", 1, NOW) is None and len(off) == 0


def test_a_device_without_desired_state_is_cached_too() -> None:
    c = _cache()
    c.put("d", CachedState(sequence=0), c.fill_token())
    hit = c.lookup("d", 0, NOW)
    assert hit is not None and not hit.has_document
    assert c.lookup("d", 3, NOW) is None          # claims a state: the database refuses it
