"""The agent's local inference endpoint: ``LocalInferenceService`` on a unix socket (default)
or a TCP address, for ``edgefleet-agent predict|status`` and ``agent.InferenceClient``.

Invariants:
- A refused request gets the status code that says why (INVALID_ARGUMENT bad input or ambiguous
  model, NOT_FOUND unknown model, FAILED_PRECONDITION nothing loaded) and a message naming the
  fix; only an interpreter failure on a well-formed request is INTERNAL.
- The unix socket file is mode 0660: its permissions are the access control. A stale socket
  left by a dead agent is replaced; a live one (another agent) is refused.
- Stopping waits up to the grace period for requests in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from concurrent import futures
from pathlib import Path
from typing import Any, Protocol

import grpc
import numpy as np

from agent.errors import ConfigurationError, InferenceError, PredictRequestError
from agent.serving import Prediction
from agent.settings import AgentSettings
from agent.transport import message_limits
from agent.wire import decode_tensor, encode_tensor, status_code_for
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class InferenceBackend(Protocol):
    def predict(self, model: str | None, inputs: dict[str, np.ndarray]) -> Prediction: ...

    def status(self) -> pb.AgentStatus: ...


class LocalInferenceServicer(pb_grpc.LocalInferenceServiceServicer):
    def __init__(self, backend: InferenceBackend) -> None:
        self._backend = backend

    def Predict(self, request: pb.PredictRequest, context: grpc.ServicerContext) -> Any:
        try:
            inputs = {name: decode_tensor(name, t) for name, t in request.inputs.items()}
            prediction = self._backend.predict(request.model or None, inputs)
        except PredictRequestError as exc:
            context.abort(status_code_for(exc), str(exc))
        except InferenceError as exc:
            context.abort(grpc.StatusCode.INTERNAL, str(exc))
        return pb.PredictResponse(
            outputs={name: encode_tensor(v) for name, v in prediction.outputs.items()},
            ref=prediction.ref.to_proto(),
            latency_ms=prediction.latency_ms,
        )

    def Status(self, request: pb.AgentStatusRequest, context: grpc.ServicerContext) -> Any:
        return self._backend.status()


def unix_socket_path(address: str) -> Path | None:
    """The socket file of a ``unix:`` address, None for a TCP one."""
    if address.startswith("unix://"):
        return Path(address[len("unix://"):])
    if address.startswith("unix:"):
        return Path(address[len("unix:"):])
    return None


class LocalInferenceServer:
    """Serves ``backend`` on ``address``; ``endpoint`` is where clients connect once started."""

    def __init__(
        self, backend: InferenceBackend, address: str, *, settings: AgentSettings
    ) -> None:
        self._address = address
        self._settings = settings
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=settings.local_server_workers, thread_name_prefix="local-rpc"
            ),
            options=message_limits(settings),
        )
        pb_grpc.add_LocalInferenceServiceServicer_to_server(
            LocalInferenceServicer(backend), self._server
        )
        self.endpoint = address

    def start(self) -> str:
        """Bind and start serving; returns the endpoint (with the real port for ``:0``).

        Raises ConfigurationError when the address cannot be bound or another agent serves it.
        """
        path = unix_socket_path(self._address)
        if path is not None:
            path = path.resolve()
            _clear_stale_socket(path)
            bind = f"unix://{path}"
        else:
            bind = self._address
        try:
            port = self._server.add_insecure_port(bind)
        except RuntimeError as exc:
            raise ConfigurationError(f"cannot serve on {self._address}: {exc}") from exc
        if port == 0 and path is None:
            raise ConfigurationError(f"cannot serve on {self._address}")
        self._server.start()
        if path is not None:
            os.chmod(path, 0o660)
            self.endpoint = bind
        else:
            host = self._address.rsplit(":", 1)[0]
            self.endpoint = f"{host}:{port}"
        log.info("local inference endpoint on %s", self.endpoint)
        return self.endpoint

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting requests and wait for those in flight, up to the grace period."""
        grace = self._settings.shutdown_grace_seconds if grace is None else grace
        self._server.stop(grace).wait()
        path = unix_socket_path(self.endpoint)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _clear_stale_socket(path: Path) -> None:
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()   # nobody listens: a dead agent left it behind
        return
    finally:
        probe.close()
    raise ConfigurationError(
        f"another agent already serves on {path}; stop it or choose another --serve address"
    )
