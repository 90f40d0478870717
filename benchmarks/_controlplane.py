"""A real EdgeFleet control plane (``controlplane.server.serve_async``) in a thread of this
process, and the operator and device steps benchmarks take on it through its public gRPC API.

Nothing here reaches around the API: models are pushed with ``AdminService.PushModel``, devices
enroll with ``DeviceService.Enroll``, desired states come from a real rollout, and a device
reports its install with ``ReportStatus``, exactly as the CLI and an agent do.

``scratch_database`` gives ``--db`` runs a private ``edgefleet_bench_<random>`` database on the
PostgreSQL server the user named, migrated to head, and drops it afterwards, so a benchmark never
touches data it did not create.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from benchmarks._servers import AsyncServerThread
from controlplane.config import Settings, normalise_db_url
from controlplane.db import upgrade
from controlplane.server import serve_async
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

T = TypeVar("T")
MiB = 1024 * 1024
PUSH_CHUNK_BYTES = 1 * MiB
SCRATCH_PREFIX = "edgefleet_bench_"

# What a benchmark device says it is: an interpreter new enough for every generated model.
DEVICE_HARDWARE = pb.HardwareProfile(
    arch="x86_64",
    cpu_cores=2,
    os="linux",
    interpreter=pb.InterpreterInfo(name="tflite-runtime", version="2.14.0"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something other than None (bounds a wait; not a timing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, migrated ``edgefleet_bench_<random>`` database on ``server_url``'s server."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(normalise_db_url(server_url))
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = SCRATCH_PREFIX + secrets.token_hex(6)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    scratch = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(scratch)
        yield scratch
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True)
class BenchDevice:
    id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token)


@dataclass(frozen=True)
class Assignment:
    """What a device's desired state asks it to run (one model), as the device received it."""

    sequence: int
    ref: pb.ModelRef
    size: int


class ControlPlaneUnderTest:
    """The embedded server (or one on ``database_url``) on a free loopback port."""

    def __init__(self, root: Path, *, database_url: str | None = None, **overrides: Any) -> None:
        defaults: dict[str, Any] = {
            # The reference variant only, unless a benchmark of the pipeline asks for more:
            # the others measure what happens after a model is ready.
            "variant_kinds": ("float32",),
            "measure_runs": 3,
            "rollout_tick_seconds": 0.5,
            "shutdown_grace_seconds": 0.5,
        }
        self.settings = Settings(
            data_dir=root / "server",
            listen=f"127.0.0.1:{free_port()}",
            database_url=database_url,
            **{**defaults, **overrides},
        )
        self._server = AsyncServerThread(
            lambda ready, stop: serve_async(self.settings, ready=ready, stop=stop),
            name="edgefleet-server",
        )
        self.admin_token = ""
        self.channel: grpc.Channel | None = None

    @property
    def address(self) -> str:
        return self.settings.listen

    def start(self) -> ControlPlaneUnderTest:
        # The server prints its admin token and a banner on stdout; keep stdout for figures.
        with contextlib.redirect_stdout(sys.stderr):
            self._server.start()
        return self.connect(self.settings.admin_token_path.read_text().strip())

    def connect(self, admin_token: str) -> ControlPlaneUnderTest:
        """Open the operator channel to ``address``: to the server ``start`` started, or to
        one a benchmark runs as a process of its own with these settings."""
        self.admin_token = admin_token
        limit = self.settings.grpc_max_message_bytes
        self.channel = grpc.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", limit),
                     ("grpc.max_send_message_length", limit)],
        )
        return self

    def answers(self) -> bool | None:
        """True once the server answers an operator call; None while it is not listening yet
        (for ``wait_for``, when the server is a process of its own)."""
        try:
            self.admin.ListModels(pb.ListModelsRequest(), metadata=self.admin_md(), timeout=5)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
        return True

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        with contextlib.redirect_stdout(sys.stderr):
            self._server.stop()   # a no-op when it was never started

    def __enter__(self) -> ControlPlaneUnderTest:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- stubs -------------------------------------------------------------------------------

    @property
    def admin(self) -> pb_grpc.AdminServiceStub:
        assert self.channel is not None, "start() first"
        return pb_grpc.AdminServiceStub(self.channel)

    @property
    def device(self) -> pb_grpc.DeviceServiceStub:
        assert self.channel is not None, "start() first"
        return pb_grpc.DeviceServiceStub(self.channel)

    def admin_md(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.admin_token)

    # -- operator steps ----------------------------------------------------------------------

    def push_model(self, name: str, version: str, data: bytes,
                   timeout: float = 120.0, calibration: bytes = b"") -> pb.ModelVersion:
        """Push ``data`` (and ``calibration``, an .npz) as NAME:VERSION and wait until the
        server's optimize pipeline settled it (ready)."""

        def requests() -> Iterator[pb.PushModelRequest]:
            yield pb.PushModelRequest(header=pb.PushModelHeader(
                name=name, version=version, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), calibration_size=len(calibration),
            ))
            for i in range(0, len(calibration), PUSH_CHUNK_BYTES):
                yield pb.PushModelRequest(calibration_chunk=calibration[i:i + PUSH_CHUNK_BYTES])
            view = memoryview(data)
            for i in range(0, len(data), PUSH_CHUNK_BYTES):
                yield pb.PushModelRequest(chunk=bytes(view[i:i + PUSH_CHUNK_BYTES]))

        self.admin.PushModel(requests(), metadata=self.admin_md(), timeout=timeout)

        def settled() -> pb.ModelVersion | None:
            mv = self.admin.GetModel(pb.GetModelRequest(name=name, version=version),
                                     metadata=self.admin_md())
            return mv if mv.status in ("ready", "failed") else None

        mv = wait_for(f"{name}:{version} to be measured", settled, timeout)
        if mv.status != "ready":
            raise RuntimeError(f"{name}:{version} failed on the server: {mv.failure}")
        return mv

    def enroll(self, count: int, labels: dict[str, str]) -> list[BenchDevice]:
        """Enroll ``count`` devices with one enrollment token carrying ``labels``."""
        et = self.admin.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(labels=labels, uses=count),
            metadata=self.admin_md(),
        )
        devices = []
        for i in range(count):
            resp = self.device.Enroll(
                pb.EnrollRequest(name=f"bench-{i}", hardware=DEVICE_HARDWARE),
                metadata=bearer(et.token),
            )
            devices.append(BenchDevice(resp.device_id, resp.device_token))
        return devices

    def enrollment_token(self, labels: dict[str, str], uses: int = 1) -> str:
        et = self.admin.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(labels=labels, uses=uses), metadata=self.admin_md()
        )
        return str(et.token)

    def roll_out(self, name: str, version: str, selector: str, attempts: int = 3) -> str:
        """Create a rollout; returns its id.

        Retries an INTERNAL or UNAVAILABLE answer, saying so on stderr: on the embedded SQLite a
        write that races an agent's writes has been seen to fail with "database is locked"
        (reported as INTERNAL), and the transaction that failed left nothing behind.
        """
        request = pb.CreateRolloutRequest(model=name, version=version, selector=selector)
        retryable = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE)
        for attempt in range(1, attempts + 1):
            try:
                return str(self.admin.CreateRollout(request, metadata=self.admin_md()).id)
            except grpc.RpcError as exc:
                if exc.code() not in retryable or attempt == attempts:
                    raise
                print(f"CreateRollout answered {exc.code().name} ({exc.details()}); "
                      f"retrying ({attempt}/{attempts})", file=sys.stderr)
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def wait_rollout(self, rollout_id: str, timeout: float = 60.0) -> pb.Rollout:
        """Wait until the rollout ends; raise unless it succeeded."""

        def done() -> pb.Rollout | None:
            r = self.admin.GetRollout(pb.GetRolloutRequest(id=rollout_id),
                                      metadata=self.admin_md())
            return r if r.state in ("succeeded", "failed", "aborted", "rolled_back") else None

        rollout = wait_for(f"rollout {rollout_id} to finish", done, timeout)
        if rollout.state != "succeeded":
            raise RuntimeError(f"rollout {rollout_id} ended {rollout.state}")
        return rollout

    # -- device steps (what an agent does, without the agent) --------------------------------

    def wait_assignment(self, device: BenchDevice, timeout: float = 60.0) -> Assignment:
        """Sync until the device is handed a desired state; return what it names."""

        def probe() -> Assignment | None:
            resp = self.device.Sync(pb.SyncRequest(known_sequence=0), metadata=device.metadata)
            if not resp.HasField("desired_state"):
                return None
            doc = json.loads(resp.desired_state.payload)
            (entry,) = doc["models"]
            ref = pb.ModelRef(model=entry["model"], version=entry["version"],
                              variant=entry["variant"], sha256=entry["sha256"])
            return Assignment(sequence=int(doc["sequence"]), ref=ref, size=int(entry["size"]))

        return wait_for(f"a desired state for device {device.id}", probe, timeout)

    def report_active(self, device: BenchDevice, ref: pb.ModelRef) -> None:
        """Tell the server the device now runs ``ref`` (what an agent reports after a swap)."""
        event = pb.InstallEvent(ref=ref, state="active", message="benchmark device")
        event.at.GetCurrentTime()
        self.device.ReportStatus(pb.StatusReport(events=[event], active=[ref]),
                                 metadata=device.metadata)
