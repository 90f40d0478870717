"""Conversions for the local inference API, shared by its server and its client: numpy arrays
to ``pb.Tensor`` and back, the status document, and refusal errors to gRPC codes and back.

Tensors travel as raw little-endian bytes in C order; decoding checks that dtype, shape and byte
count agree before any array is built, and refuses with InvalidInputError otherwise. The numeric
dtypes are looked up in a table built at import (a name, its native and little-endian forms), so
the common tensor costs no dtype parsing either way; any other spelling numpy accepts still goes
through ``np.dtype`` and the same checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _WireType:
    name: str            # as it travels
    native: np.dtype     # as arrays are built and read here
    little: np.dtype     # as its bytes travel

    @classmethod
    def of(cls, dtype: np.dtype) -> _WireType:
        native = dtype.newbyteorder("=")
        return cls(native.name, native, native.newbyteorder("<"))


_WIRE_TYPES = [_WireType.of(np.dtype(code)) for code in "?" + np.typecodes["AllInteger"]
               + np.typecodes["Float"]]
_BY_DTYPE = {w.native: w for w in _WIRE_TYPES}
_BY_NAME = {w.name: w for w in _WIRE_TYPES}


def encode_tensor(array: Any) -> pb.Tensor:
    a = np.asarray(array)
    wire = _BY_DTYPE.get(a.dtype)
    if wire is None:
        if a.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidInputError(f"dtype {a.dtype} cannot travel; use a numeric array")
        wire = _WireType.of(a.dtype)   # a numeric dtype in a foreign byte order
    if a.dtype != wire.little:
        a = a.astype(wire.little)
    # tobytes() gives C order whatever the array's layout: no ascontiguousarray first.
    return pb.Tensor(dtype=wire.name, shape=a.shape, data=a.tobytes())


def decode_tensor(name: str, tensor: pb.Tensor) -> np.ndarray:
    """The array ``tensor`` carries. Raises InvalidInputError when it is inconsistent."""
    wire = _BY_NAME.get(tensor.dtype)
    if wire is None:
        wire = _parse_wire_type(name, tensor.dtype)
    dtype = wire.native
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidInputError(f"tensor {name!r}: negative dimension in shape {list(shape)}")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(tensor.data):
        raise InvalidInputError(
            f"tensor {name!r}: shape {list(shape)} of {dtype.name} needs {expected} bytes, "
            f"got {len(tensor.data)}"
        )
    little = np.frombuffer(tensor.data, dtype=wire.little).reshape(shape)
    return little.astype(dtype, copy=False)


def _parse_wire_type(name: str, text: str) -> _WireType:
    """A dtype spelling outside the table (``<f4``, ``float``). Raises InvalidInputError."""
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise InvalidInputError(f"tensor {name!r}: unknown dtype {text!r}") from exc
    if dtype.kind not in _NUMERIC_KINDS:
        raise InvalidInputError(f"tensor {name!r}: dtype {text!r} is not numeric")
    return _WireType.of(dtype)


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
