"""Fixtures for the CLI tests: a real gRPC server with a canned AdminService, and a CLI runner.

The servicer is deliberately dumb: it answers each method with the replies a test queued (the
last one repeats), or aborts with a queued status, and records what arrived (requests, bearer
tokens, pushed bytes). What the CLI does with the answers is what these tests check; the real
servicers are tested with the API.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from controlplane.cli.connection import ClientSettings
from controlplane.cli.main import main
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

UNARY_METHODS = (
    "CreateToken", "ListTokens", "RevokeToken", "CreateEnrollmentToken", "RevokeEnrollmentToken",
    "ListModels", "GetModel", "ListDevices", "GetDevice", "LabelDevice", "RevokeDevice",
    "CreateRollout", "ListRollouts", "GetRollout", "ChangeRollout", "RolloutHistory", "ListAudit",
    "ExplainDevice", "ListHardwareClasses", "ListIncompatibilities", "ClearIncompatibility",
)


@dataclass(frozen=True)
class Abort:
    code: grpc.StatusCode
    details: str


@dataclass
class ReceivedPush:
    header: pb.PushModelHeader | None = None
    chunk_sizes: list[int] = field(default_factory=list)
    sha256: str = ""
    header_was_first: bool = True
    calibration: bytes = b""


class CannedAdminService(pb_grpc.AdminServiceServicer):
    def __init__(self) -> None:
        self._replies: dict[str, list[Any]] = {}
        self.requests: dict[str, list[Any]] = defaultdict(list)
        self.bearers: list[str] = []
        self.push = ReceivedPush()
        for method in UNARY_METHODS:
            setattr(self, method, self._unary(method))

    def reply(self, method: str, *replies: Any) -> None:
        """Queue answers for ``method``: messages, or ``Abort``s; the last one repeats."""
        self._replies[method] = list(replies)

    @staticmethod
    def aborting(code: grpc.StatusCode, details: str) -> Abort:
        """A reply for ``reply()`` that aborts the call instead of answering."""
        return Abort(code, details)

    def fail(self, method: str, code: grpc.StatusCode, details: str) -> None:
        """Make every call of ``method`` abort with ``code`` and ``details``."""
        self.reply(method, self.aborting(code, details))

    def calls(self, method: str) -> int:
        return len(self.requests[method])

    def _next(self, method: str, context: grpc.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata())
        self.bearers.append(str(metadata.get("authorization", "")))
        queue = self._replies.get(method)
        if not queue:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no canned reply for {method}")
            raise AssertionError("unreachable: abort raises")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Abort):
            context.abort(answer.code, answer.details)
        return answer

    def _unary(self, method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            self.requests[method].append(request)
            return self._next(method, context)

        return handle

    def PushModel(self, request_iterator: Iterator[pb.PushModelRequest],
                  context: grpc.ServicerContext) -> pb.ModelVersion:
        digest = hashlib.sha256()
        for message in request_iterator:
            if message.HasField("header"):
                self.push.header_was_first = self.push.header is None and not self.push.chunk_sizes
                self.push.header = message.header
            elif message.HasField("calibration_chunk"):
                self.push.calibration += message.calibration_chunk
            else:
                self.push.chunk_sizes.append(len(message.chunk))
                digest.update(message.chunk)
        self.push.sha256 = digest.hexdigest()
        self.requests["PushModel"].append(self.push.header)
        return self._next("PushModel", context)


@dataclass
class AdminServer:
    address: str
    service: CannedAdminService


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No EDGEFLEET_* from the developer's shell, and no ./edgefleet-data/admin-token nearby."""
    for name in ("EDGEFLEET_SERVER", "EDGEFLEET_TOKEN", "EDGEFLEET_DATA_DIR", "EDGEFLEET_DB",
                 "EDGEFLEET_REDIS", "EDGEFLEET_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def admin_server() -> Iterator[AdminServer]:
    service = CannedAdminService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_AdminServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield AdminServer(address=f"127.0.0.1:{port}", service=service)
    finally:
        server.stop(grace=None)


@pytest.fixture
def free_address() -> str:
    """An address nothing listens on (a port the kernel just handed out and we released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON document (raises if there is anything else)."""
        return json.loads(self.out)


Runner = Callable[..., Result]

FAST_WATCH = ClientSettings(watch_interval_seconds=0.01, watch_outage_seconds=0.3)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Runner:
    """``run(*argv, settings=None)``: the CLI in-process, with its exit code and both streams."""

    def invoke(*argv: str, settings: ClientSettings | None = None) -> Result:
        capsys.readouterr()  # drop anything printed before
        code = main(list(argv), settings=settings or FAST_WATCH)
        captured = capsys.readouterr()
        return Result(code=code, out=captured.out, err=captured.err)

    return invoke


@pytest.fixture
def cli(run: Runner, admin_server: AdminServer) -> Runner:
    """Like ``run`` but pointed at ``admin_server`` with a token."""

    def invoke(*argv: str, settings: ClientSettings | None = None) -> Result:
        return run(*argv, "--server", admin_server.address, "--token", "t0k", settings=settings)

    return invoke
