"""DeviceService.Watch over a real socket: a device hears its own changes, and only its own."""

from __future__ import annotations

import queue
import threading
from typing import Any

import grpc
import pytest

from controlplane import modelgen
from controlplane.config import Settings
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer, start_server
from tests.api.helpers import enroll, push, wait_for, wait_ready


@pytest.fixture
def server_settings(server_settings: Settings) -> Settings:
    return server_settings.replace(watch_keepalive_seconds=0.3, watch_max_seconds=30.0,
                                   watch_max_streams=3)


def _collect(stream: Any) -> queue.Queue[Any]:
    """Every event of ``stream`` in a queue, then the stream's end (None) or its error."""
    events: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            for event in stream:
                events.put(event)
            events.put(None)
        except grpc.RpcError as exc:
            events.put(exc)

    threading.Thread(target=run, daemon=True).start()
    return events


def _next_change(events: queue.Queue[Any], timeout: float = 60.0) -> Any:
    while True:
        event = events.get(timeout=timeout)
        if event is None or isinstance(event, grpc.RpcError) or not event.keepalive:
            return event


def test_a_device_hears_its_own_change_and_not_another_devices(server: RunningServer) -> None:
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=21))
    wait_ready(server, "cnn", "1.0.0")
    a_id, a_token = enroll(server, labels={"site": "a"}, name="a")
    _, b_token = enroll(server, labels={"site": "b"}, name="b")
    a_stream = server.device().Watch(pb.WatchRequest(), metadata=bearer(a_token))
    b_stream = server.device().Watch(pb.WatchRequest(), metadata=bearer(b_token))
    a_events, b_events = _collect(a_stream), _collect(b_stream)
    # Both streams are open once each has had a keepalive.
    assert a_events.get(timeout=30).keepalive and b_events.get(timeout=30).keepalive
    # A's "nothing yet" is in the server's Sync cache, as after an agent's first poll.
    assert not server.device().Sync(pb.SyncRequest(), metadata=bearer(a_token)).HasField(
        "desired_state")
    server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="1.0.0", selector="site=a"),
        metadata=bearer(server.admin_token))
    heard = _next_change(a_events)
    # The Sync the event asks for, at once, returns that very document.
    resp = server.device().Sync(pb.SyncRequest(), metadata=bearer(a_token))
    assert resp.HasField("desired_state")
    shown = server.admin().GetDevice(pb.GetDeviceRequest(id=a_id),
                                     metadata=bearer(server.admin_token))
    assert heard.desired_sequence == shown.desired_sequence > 0
    # B's stream went on with keepalives only.
    for _ in range(3):
        assert b_events.get(timeout=30).keepalive
    assert b_events.empty() or all(e.keepalive for e in list(b_events.queue) if e is not None)
    # A new stream from the device's known sequence hears nothing of it again; from 0, at once.
    a_stream.cancel()
    b_stream.cancel()
    again = server.device().Watch(pb.WatchRequest(known_sequence=heard.desired_sequence),
                                  metadata=bearer(a_token))
    fresh = server.device().Watch(pb.WatchRequest(), metadata=bearer(a_token))
    assert _collect(again).get(timeout=30).keepalive
    assert _collect(fresh).get(timeout=30).desired_sequence == heard.desired_sequence
    again.cancel()
    fresh.cancel()


def test_watch_refuses_operators_and_callers_without_a_credential(server: RunningServer) -> None:
    for metadata, code in ((bearer(server.admin_token), grpc.StatusCode.PERMISSION_DENIED),
                           (None, grpc.StatusCode.UNAUTHENTICATED),
                           (bearer("not-a-token"), grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as err:
            list(server.device().Watch(pb.WatchRequest(), metadata=metadata, timeout=30))
        assert err.value.code() == code


def test_streams_past_the_limit_are_resource_exhausted(server: RunningServer) -> None:
    _, token = enroll(server)
    streams = [server.device().Watch(pb.WatchRequest(), metadata=bearer(token))
               for _ in range(3)]
    queues = [_collect(s) for s in streams]
    for q in queues:
        assert q.get(timeout=30).keepalive      # all three are held
    with pytest.raises(grpc.RpcError) as err:
        list(server.device().Watch(pb.WatchRequest(), metadata=bearer(token), timeout=30))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watch_max_streams" in (err.value.details() or "")
    streams[0].cancel()

    # A closed stream frees its place.
    def opened() -> bool:
        try:
            q = _collect(server.device().Watch(pb.WatchRequest(), metadata=bearer(token)))
            first = q.get(timeout=30)
            return not isinstance(first, grpc.RpcError)
        except grpc.RpcError:
            return False
    wait_for("a freed watch place", lambda: True if opened() else None)
    for s in streams[1:]:
        s.cancel()


def test_the_stream_closes_cleanly_at_watch_max_seconds(server_settings: Settings) -> None:
    """A stream is closed with OK after ``watch_max_seconds`` (the device opens a new one)."""
    settings = server_settings.replace(watch_max_seconds=1.0, watch_keepalive_seconds=0.4)
    thread, stop, loop = start_server(settings)
    channel = grpc.insecure_channel(settings.listen)
    try:
        srv = RunningServer(settings.listen, settings,
                            settings.admin_token_path.read_text().strip(), channel)
        _, token = enroll(srv)
        events = list(srv.device().Watch(pb.WatchRequest(), metadata=bearer(token), timeout=30))
        assert events and all(e.keepalive for e in events)   # ended by the server, no error
    finally:
        channel.close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
