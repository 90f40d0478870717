"""``InferenceClient``: how applications on the device use the agent from Python.

    from agent import InferenceClient

    with InferenceClient("/var/lib/edgefleet-agent") as client:
        outputs = client.predict({"image": image}, model="face")
        print(client.status()["models"])

Invariants: one gRPC channel per client, safe to share between threads; every call has a
timeout; failures raise the agent's own errors (InvalidInputError, ModelNotFoundError,
NoModelLoadedError for refusals, AgentTransportError when the agent is not reachable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from agent.errors import InvalidInputError
from agent.refs import ModelRef
from agent.settings import AgentSettings
from agent.transport import open_channel
from agent.wire import decode_tensor, encode_tensor, error_from_rpc, status_document
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

SOCKET_NAME = "agent.sock"


@dataclass(frozen=True)
class PredictResult:
    outputs: dict[str, np.ndarray]
    ref: ModelRef
    latency_ms: float   # inside the agent, interpreter included, transport excluded


def resolve_endpoint(endpoint_or_data_dir: str | os.PathLike[str]) -> str:
    """``unix://...`` and ``host:port`` as given; a data dir means its ``agent.sock``."""
    target = os.fspath(endpoint_or_data_dir)
    if target.startswith("unix:"):
        return target
    if os.path.isdir(target) or ":" not in target:
        return f"unix://{(Path(target) / SOCKET_NAME).resolve()}"
    return target


class InferenceClient:
    def __init__(
        self,
        endpoint_or_data_dir: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        settings: AgentSettings | None = None,
    ) -> None:
        settings = settings or AgentSettings()
        self.endpoint = resolve_endpoint(endpoint_or_data_dir)
        self._timeout = timeout if timeout is not None else settings.local_rpc_timeout_seconds
        self._channel = open_channel(self.endpoint, settings)
        self._stub = pb_grpc.LocalInferenceServiceStub(self._channel)

    def predict(
        self, inputs: dict[str, np.ndarray], model: str | None = None
    ) -> dict[str, np.ndarray]:
        """Float32 outputs by name for float ``inputs`` by name (see ``predict_result``)."""
        return self.predict_result(inputs, model=model).outputs

    def predict_result(
        self, inputs: dict[str, np.ndarray], model: str | None = None
    ) -> PredictResult:
        """Outputs plus which variant answered and how long it took.

        Raises InvalidInputError, ModelNotFoundError, NoModelLoadedError (refused),
        AgentTransportError (agent not reachable), AgentError (anything else).
        """
        if not isinstance(inputs, dict):
            raise InvalidInputError("inputs must be a dict of input name to array")
        request = pb.PredictRequest(
            model=model or "", inputs={k: encode_tensor(v) for k, v in inputs.items()}
        )
        try:
            response = self._stub.Predict(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.endpoint) from exc
        r = response.ref
        return PredictResult(
            outputs={k: decode_tensor(k, t) for k, t in response.outputs.items()},
            ref=ModelRef(r.model, r.version, r.variant, r.sha256),
            latency_ms=response.latency_ms,
        )

    def status(self) -> dict[str, Any]:
        """The agent's status document (the one ``edgefleet-agent status -o json`` prints)."""
        try:
            status = self._stub.Status(pb.AgentStatusRequest(), timeout=self._timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.endpoint) from exc
        return status_document(status)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
