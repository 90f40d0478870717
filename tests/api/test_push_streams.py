"""Push streams cannot hold the disk (audit finding L5): an idle stream is cut after
``push_idle_timeout_seconds`` and leaves nothing, a push holds no temp file before its bytes
arrive, at most ``max_concurrent_pushes`` are received at once, and a failing second upload
removes the first."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controlplane import modelgen
from controlplane.config import Settings
from controlplane.errors import UnavailableError
from controlplane.registry.push import PushHeader, PushReceiver
from controlplane.registry.store import FilesystemArtifactStore
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import push_requests

MODEL = modelgen.build_mlp(seed=31)


@pytest.fixture
def server_settings(server_settings: Settings) -> Settings:
    return server_settings.replace(push_idle_timeout_seconds=1.0, max_concurrent_pushes=2)


def _uploads(srv: RunningServer) -> list[Path]:
    return list((srv.settings.artifact_dir / ".uploads").iterdir())


def _stalling(first: int, stop: threading.Event) -> Iterator[pb.PushModelRequest]:
    """The push of MODEL that sends its first ``first`` messages and then nothing."""
    for i, message in enumerate(push_requests("stall", "1.0.0", MODEL, chunk=1024)):
        if i == first:
            stop.wait(10)
            return
        yield message


def test_a_push_that_stops_sending_is_cut_and_leaves_no_temp_file(server: RunningServer) -> None:
    """Input tried: a push that sends its header and one chunk, then nothing for 10 s."""
    stop = threading.Event()
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as err:
            server.admin().PushModel(_stalling(2, stop), metadata=bearer(server.admin_token),
                                     timeout=30)
    finally:
        stop.set()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "sent nothing for 1 s" in (err.value.details() or "")  # type: ignore[attr-defined]
    assert time.monotonic() - started < 8
    deadline = time.monotonic() + 5
    while _uploads(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _uploads(server) == []


def test_pushes_beyond_the_concurrent_limit_wait_then_are_refused(server: RunningServer) -> None:
    """Input tried: two pushes trickling their bytes (a message every 0.2 s, within the idle
    timeout) hold both receiving slots (max_concurrent_pushes 2) for about 4 s; a third push
    waits one idle timeout for a slot and is refused RESOURCE_EXHAUSTED; the two complete."""
    def trickle(version: str) -> Iterator[pb.PushModelRequest]:
        for message in push_requests("slow", version, MODEL, chunk=max(1, len(MODEL) // 20)):
            yield message
            time.sleep(0.2)

    results: dict[str, str] = {}

    def slow(version: str) -> None:
        try:
            server.admin().PushModel(trickle(version), metadata=bearer(server.admin_token),
                                     timeout=60)
            results[version] = "OK"
        except grpc.RpcError as exc:
            results[version] = exc.code().name  # type: ignore[attr-defined]

    threads = [threading.Thread(target=slow, args=(v,)) for v in ("1.0.0", "2.0.0")]
    for t in threads:
        t.start()
    time.sleep(0.6)
    with pytest.raises(grpc.RpcError) as err:
        server.admin().PushModel(push_requests("slow", "3.0.0", MODEL),
                                 metadata=bearer(server.admin_token), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "max_concurrent_pushes" in (err.value.details() or "")  # type: ignore[attr-defined]
    for t in threads:
        t.join(60)
    assert results == {"1.0.0": "OK", "2.0.0": "OK"}
    assert _uploads(server) == []


def test_a_push_holds_no_temp_file_before_its_bytes_arrive(server: RunningServer) -> None:
    """Input tried: a push that sends only its header and then idles: no temp file exists
    while it waits (500 such streams once held 1,000 temp files)."""
    stop = threading.Event()
    done = threading.Event()

    def idle() -> None:
        with contextlib.suppress(grpc.RpcError):
            server.admin().PushModel(_stalling(1, stop), metadata=bearer(server.admin_token),
                                     timeout=30)
        done.set()

    threading.Thread(target=idle).start()
    time.sleep(0.5)
    assert not done.is_set()      # the stream is open and idle
    assert _uploads(server) == []
    stop.set()
    assert done.wait(10)


def _limit_leaving_one_descriptor() -> int:
    """A soft RLIMIT_NOFILE under which exactly one more descriptor can be opened: the limit
    bounds descriptor numbers, and a new descriptor takes the lowest free number."""
    open_now = set()
    for fd in (int(name) for name in os.listdir("/proc/self/fd")):
        try:
            os.fstat(fd)   # the listing's own descriptor is closed again by now
        except OSError:
            continue
        open_now.add(fd)
    limit, free = 0, 0
    while free < 1 or limit in open_now:
        free += limit not in open_now
        limit += 1
    return limit


def test_a_second_upload_that_cannot_open_removes_the_first(tmp_path: Path) -> None:
    """Input tried: a push with a calibration file, where the process runs out of file
    descriptors (RLIMIT_NOFILE) right after the calibration upload opened, so the model's
    upload cannot open: the calibration's temp file is removed too."""
    store = FilesystemArtifactStore(tmp_path / "artifacts")
    header = PushHeader(name="m", version="1", size=len(MODEL), calibration_size=10)
    receiver = PushReceiver(header, store=store, settings=Settings(data_dir=tmp_path))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    resource.setrlimit(resource.RLIMIT_NOFILE, (_limit_leaving_one_descriptor(), hard))
    try:
        receiver.add("calibration", b"0123456789")   # takes the last descriptor
        with pytest.raises(UnavailableError, match="cannot start an upload"):
            receiver.add("model", MODEL[:100])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert list((tmp_path / "artifacts" / ".uploads").iterdir()) == []
