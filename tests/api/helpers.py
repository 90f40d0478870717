"""Small client-side helpers for API tests: push a model, wait for states, enroll a device."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer

T = TypeVar("T")


def push_requests(
    name: str,
    version: str,
    data: bytes,
    *,
    size: int | None = None,
    chunk: int = 16 * 1024,
    sha256: str | None = None,
    calibration: bytes = b"",
) -> Iterator[pb.PushModelRequest]:
    yield pb.PushModelRequest(
        header=pb.PushModelHeader(
            name=name,
            version=version,
            size=len(data) if size is None else size,
            sha256=hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
            calibration_size=len(calibration),
        )
    )
    for i in range(0, len(calibration), chunk):
        yield pb.PushModelRequest(calibration_chunk=calibration[i : i + chunk])
    for i in range(0, len(data), chunk):
        yield pb.PushModelRequest(chunk=data[i : i + chunk])


def push(srv: RunningServer, name: str, version: str, data: bytes, **kw: Any) -> pb.ModelVersion:
    return srv.admin().PushModel(
        push_requests(name, version, data, **kw), metadata=bearer(srv.admin_token), timeout=30
    )


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_ready(srv: RunningServer, name: str, version: str) -> pb.ModelVersion:
    def probe() -> pb.ModelVersion | None:
        mv = srv.admin().GetModel(
            pb.GetModelRequest(name=name, version=version), metadata=bearer(srv.admin_token)
        )
        return mv if mv.status in ("ready", "failed") else None

    return wait_for(f"{name}:{version} to settle", probe)


def enroll(
    srv: RunningServer, *, labels: dict[str, str] | None = None, name: str = "dev",
    hardware: pb.HardwareProfile | None = None,
) -> tuple[str, str]:
    """A fresh device (an x86_64 one with tflite-runtime 2.14.0 unless ``hardware`` says
    otherwise): returns (device_id, device_token)."""
    et = srv.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(labels=labels or {}, uses=1),
        metadata=bearer(srv.admin_token),
    )
    resp = srv.device().Enroll(
        pb.EnrollRequest(
            name=name,
            hardware=hardware or pb.HardwareProfile(
                arch="x86_64",
                cpu_cores=2,
                interpreter=pb.InterpreterInfo(name="tflite-runtime", version="2.14.0"),
            ),
        ),
        metadata=bearer(et.token),
    )
    return resp.device_id, resp.device_token


def abort_once_started(srv: RunningServer, rollout_id: str) -> None:
    """Abort a rollout once the engine started it: its devices keep what they were given and
    are free for the model's next rollout (one open rollout at a time per model and device)."""
    md = bearer(srv.admin_token)
    wait_for(f"rollout {rollout_id} to start", lambda: srv.admin().GetRollout(
        pb.GetRolloutRequest(id=rollout_id), metadata=md).state == "running" or None)
    srv.admin().ChangeRollout(pb.ChangeRolloutRequest(id=rollout_id, action="abort"),
                              metadata=md)
