"""Conversions for the local inference API, shared by its server and its client: numpy arrays
to ``pb.Tensor`` and back, the status document, and refusal errors to gRPC codes and back.

Tensors travel as raw little-endian bytes in C order; decoding checks that dtype, shape and byte
count agree before any array is built, and refuses with InvalidInputError otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import numpy as np

from agent.errors import (
    AgentError,
    AgentTransportError,
    AmbiguousModelError,
    InvalidInputError,
    ModelNotFoundError,
    NoModelLoadedError,
    PredictRequestError,
)
from protos import edgefleet_pb2 as pb

#: How a refused request travels; the client maps the code back to the same class.
REFUSAL_CODES: dict[type[PredictRequestError], grpc.StatusCode] = {
    InvalidInputError: grpc.StatusCode.INVALID_ARGUMENT,
    AmbiguousModelError: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotFoundError: grpc.StatusCode.NOT_FOUND,
    NoModelLoadedError: grpc.StatusCode.FAILED_PRECONDITION,
}
_CODE_ERRORS: dict[grpc.StatusCode, type[AgentError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInputError,
    grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: NoModelLoadedError,
}
_NUMERIC_KINDS = "biuf"


def encode_tensor(array: Any) -> pb.Tensor:
    a = np.asarray(array)
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidInputError(f"dtype {a.dtype} cannot travel; use a numeric array")
    little = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return pb.Tensor(dtype=a.dtype.name, shape=list(a.shape), data=little.tobytes())


def decode_tensor(name: str, tensor: pb.Tensor) -> np.ndarray:
    """The array ``tensor`` carries. Raises InvalidInputError when it is inconsistent."""
    try:
        dtype = np.dtype(tensor.dtype)
    except TypeError as exc:
        raise InvalidInputError(f"tensor {name!r}: unknown dtype {tensor.dtype!r}") from exc
    if dtype.kind not in _NUMERIC_KINDS:
        raise InvalidInputError(f"tensor {name!r}: dtype {tensor.dtype!r} is not numeric")
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidInputError(f"tensor {name!r}: negative dimension in shape {list(shape)}")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(tensor.data):
        raise InvalidInputError(
            f"tensor {name!r}: shape {list(shape)} of {dtype.name} needs {expected} bytes, "
            f"got {len(tensor.data)}"
        )
    little = np.frombuffer(tensor.data, dtype=dtype.newbyteorder("<")).reshape(shape)
    return little.astype(dtype.newbyteorder("="), copy=False)


def status_code_for(exc: PredictRequestError) -> grpc.StatusCode:
    return next(
        (code for cls, code in REFUSAL_CODES.items() if isinstance(exc, cls)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


def error_from_rpc(exc: grpc.RpcError, endpoint: str) -> AgentError:
    """The agent error a failed local call stands for (refusals map back to their class)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    if code in _CODE_ERRORS:
        return _CODE_ERRORS[code](details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return AgentTransportError(
            f"the agent at {endpoint} is not reachable ({details}); is `edgefleet-agent run` "
            "running with this data dir / --serve address?",
            code=code.name,
        )
    return AgentError(f"the agent at {endpoint} failed: {code.name if code else '?'}: {details}")


def status_document(status: pb.AgentStatus) -> dict[str, Any]:
    """The status document of ``status -o json`` and ``InferenceClient.status()``."""
    return {
        "device_id": status.device_id,
        "server": status.server,
        "desired_sequence": status.desired_sequence,
        "last_sync": status.last_sync.ToJsonString() if status.HasField("last_sync") else None,
        "last_error": status.last_error or None,
        "models": [
            {
                "model": m.model,
                "version": m.version,
                "variant": m.variant,
                "sha256": m.sha256,
                "state": m.state,
                "message": m.message or None,
                "inferences": m.inferences,
                "errors": m.errors,
                "latency_p50_ms": m.latency_p50_ms,
                "latency_p95_ms": m.latency_p95_ms,
                "previous_sha256": m.previous_sha256 or None,
            }
            for m in status.models
        ],
    }
