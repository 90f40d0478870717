"""Test helpers for the agent: real models, documents signed as docs/contract.md says, and a small
but real DeviceService peer on a TCP socket.

Float models come from the project's generator (``controlplane.modelgen``). It writes float
models only, so ``build_dense`` here writes the one extra thing the agent tests need: a single
FULLY_CONNECTED layer, float or int8-quantized, whose exact parameters the test knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import flatbuffers
import grpc
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.modelgen import build_mlp, mlp_params
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

MLP_INPUT = "features"
MLP_OUTPUT = "scores"
MLP_SHAPE = (1, 16)
MLP_CLASSES = 4


# -- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """Model bytes plus the manifest fields the agent checks them against."""

    data: bytes
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def mlp_artifact(seed: int = 0, hidden_scale: float = 1.0) -> Artifact:
    """``controlplane.modelgen.build_mlp``: features (1,16) -> scores (1,4) softmax."""
    return Artifact(
        data=build_mlp(seed=seed, hidden_scale=hidden_scale),
        inputs=[_spec(MLP_INPUT, MLP_SHAPE)],
        outputs=[_spec(MLP_OUTPUT, (1, MLP_CLASSES))],
    )


def mlp_reference(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """What ``build_mlp(seed=seed)`` computes, in numpy."""
    p = mlp_params(seed=seed)
    h = np.maximum(x @ p.hidden_weights.T + p.hidden_bias, 0.0)
    logits = h @ p.out_weights.T + p.out_bias
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Quant:
    scale: float
    zero_point: int


def build_dense(
    weights: np.ndarray,
    bias: np.ndarray,
    *,
    input_quant: Quant | None = None,
    output_quant: Quant | None = None,
) -> Artifact:
    """One FULLY_CONNECTED layer ``y = x @ W.T + b`` with input "x" (1,in) and output "y" (1,out).

    With ``input_quant``/``output_quant`` the model is full-int8: int8 activations, symmetric
    per-tensor int8 weights and an int32 bias at scale ``input_scale * weight_scale``, the way
    TFLite's quantizer lays it out.
    """
    out_features, in_features = weights.shape
    quantized = input_quant is not None and output_quant is not None
    buffers = [schema.BufferT()]

    def buffer(array: np.ndarray) -> int:
        b = schema.BufferT()
        b.data = list(np.frombuffer(array.astype(array.dtype.newbyteorder("<")).tobytes(),
                                    np.uint8))
        buffers.append(b)
        return len(buffers) - 1

    def tensor(name: str, shape: tuple[int, ...], ttype: int, buf: int = 0,
               quant: tuple[list[float], list[int]] | None = None) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, buf
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = quant
            t.quantization = q
        return t

    if quantized:
        assert input_quant is not None and output_quant is not None
        w_scale = float(np.abs(weights).max()) / 127.0
        w_q = np.round(weights / w_scale).astype(np.int8)
        b_q = np.round(bias / (input_quant.scale * w_scale)).astype(np.int32)
        tensors = [
            tensor("x", (1, in_features), schema.TensorType.INT8, 0,
                   ([input_quant.scale], [input_quant.zero_point])),
            tensor("w", weights.shape, schema.TensorType.INT8, buffer(w_q), ([w_scale], [0])),
            tensor("b", bias.shape, schema.TensorType.INT32, buffer(b_q),
                   ([input_quant.scale * w_scale], [0])),
            tensor("y", (1, out_features), schema.TensorType.INT8, 0,
                   ([output_quant.scale], [output_quant.zero_point])),
        ]
    else:
        tensors = [
            tensor("x", (1, in_features), schema.TensorType.FLOAT32),
            tensor("w", weights.shape, schema.TensorType.FLOAT32,
                   buffer(weights.astype(np.float32))),
            tensor("b", bias.shape, schema.TensorType.FLOAT32, buffer(bias.astype(np.float32))),
            tensor("y", (1, out_features), schema.TensorType.FLOAT32),
        ]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 4 if quantized else 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, [op]
    subgraph.inputs, subgraph.outputs = [0], [3]
    model = schema.ModelT()
    model.version, model.operatorCodes = 3, [code]
    model.subgraphs, model.buffers = [subgraph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dtype = "int8" if quantized else "float32"
    return Artifact(
        data=bytes(builder.Output()),
        inputs=[_spec("x", (1, in_features), dtype, input_quant)],
        outputs=[_spec("y", (1, out_features), dtype, output_quant)],
    )


def _spec(name: str, shape: tuple[int, ...], dtype: str = "float32",
          quant: Quant | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(shape),
        "dtype": dtype,
        "quantization": None if quant is None else {
            "scale": [quant.scale], "zero_point": [quant.zero_point], "quantized_dimension": 0,
        },
    }


# -- signed documents -----------------------------------------------------------------------


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, doc: dict[str, Any]) -> pb.SignedDocument:
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return pb.SignedDocument(payload=payload, signature=key.sign(payload), key_id=key_id(key))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_doc(artifact: Artifact, *, model: str = "demo", version: str = "1.0.0",
                 variant: str = "float32", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``extra``: optional manifest fields (``latency_ms``, ``golden``)."""
    return {
        "type": "edgefleet.manifest.v1", "model": model, "version": version, "variant": variant,
        "sha256": artifact.sha256, "size": artifact.size, "min_runtime": "2.3.0",
        "created_at": rfc3339(datetime.now(UTC)),
        "inputs": artifact.inputs, "outputs": artifact.outputs, **(extra or {}),
    }


def nested(signed: pb.SignedDocument) -> dict[str, str]:
    return {
        "payload": base64.b64encode(signed.payload).decode(),
        "signature": base64.b64encode(signed.signature).decode(),
        "key_id": signed.key_id,
    }


def entry(key: Ed25519PrivateKey, artifact: Artifact, **fields: Any) -> dict[str, Any]:
    """A desired-state entry for ``artifact`` with its manifest signed by ``key``."""
    manifest = manifest_doc(artifact, **fields)
    return {
        **{k: manifest[k] for k in ("model", "version", "variant", "sha256", "size")},
        "manifest": nested(sign(key, manifest)),
    }


def desired_state_doc(device_id: str, sequence: int, entries: list[dict[str, Any]], *,
                      expires_in: timedelta = timedelta(days=1)) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "type": "edgefleet.desired_state.v1", "device_id": device_id, "sequence": sequence,
        "issued_at": rfc3339(now), "expires_at": rfc3339(now + expires_in), "models": entries,
    }


# -- a DeviceService peer -------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``predicate`` until truthy; bounds a wait (not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what or predicate}")
        time.sleep(0.02)
    return result


@dataclass(eq=False)
class FakeControlPlane(pb_grpc.DeviceServiceServicer):
    """Just enough of DeviceService, with knobs to misbehave, recording what the agent sent."""

    key: Ed25519PrivateKey
    enroll_token: str = "enroll-secret"
    device_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    device_token: str = "device-secret"
    chunk_size: int = 512
    poll_interval_seconds: int = 30
    desired: pb.SignedDocument | None = None
    sequence: int = 0
    artifacts: dict[str, bytes] = field(default_factory=dict)
    #: sha256 -> bytes served instead of the real ones (an altered artifact).
    altered: dict[str, bytes] = field(default_factory=dict)
    #: Abort the next stream with UNAVAILABLE after sending this many bytes (one-shot).
    interrupt_after: int | None = None
    #: Fail this many ReportMetrics calls with UNAVAILABLE, remembering the ids they carried.
    fail_metric_reports: int = 0
    reject_metric_windows: bool = False   # refuse each window as malformed, as the server would
    metric_reports: int = 0
    failed_window_ids: list[str] = field(default_factory=list)
    #: Answer this many Enroll calls with UNAVAILABLE after recording them (a lost answer).
    lose_enroll_answers: int = 0
    enrollments: list[pb.EnrollRequest] = field(default_factory=list)
    syncs: list[pb.SyncRequest] = field(default_factory=list)
    download_requests: list[tuple[str, int]] = field(default_factory=list)
    events: list[pb.InstallEvent] = field(default_factory=list)
    windows: dict[str, pb.MetricWindow] = field(default_factory=dict)
    duplicate_windows: int = 0
    #: Serve Watch (else UNIMPLEMENTED, as a server before Watch): streams opened so far.
    serve_watch: bool = False
    watches: int = 0

    def publish(self, entries: list[dict[str, Any]], artifacts: tuple[Artifact, ...] = (),
                sequence: int | None = None, **doc_fields: Any) -> pb.SignedDocument:
        """Make a signed desired state (next sequence) the one Sync hands out."""
        for artifact in artifacts:
            self.artifacts[artifact.sha256] = artifact.data
        self.sequence = sequence if sequence is not None else self.sequence + 1
        doc = desired_state_doc(self.device_id, self.sequence, entries)
        doc.update(doc_fields)
        self.desired = sign(self.key, doc)
        return self.desired

    def Watch(self, request: pb.WatchRequest,
              context: grpc.ServicerContext) -> Iterator[pb.WatchEvent]:
        if not self.serve_watch:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "no Watch here")
        self._device(context)
        self.watches += 1
        told = request.known_sequence
        # Slices, so a stream the agent dropped frees its server thread.
        while context.is_active():
            if self.sequence > told:
                told = self.sequence
                yield pb.WatchEvent(desired_sequence=told)
            time.sleep(0.02)

    def events_for(self, state: str) -> list[pb.InstallEvent]:
        return [e for e in list(self.events) if e.state == state]

    def _bearer(self, context: grpc.ServicerContext) -> str:
        md = dict(context.invocation_metadata())
        return md.get("authorization", "").removeprefix("Bearer ")

    def _device(self, context: grpc.ServicerContext) -> None:
        if self._bearer(context) != self.device_token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown device credential")

    def Enroll(self, request: pb.EnrollRequest, context: grpc.ServicerContext) -> Any:
        if self._bearer(context) != self.enroll_token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "enrollment token is not valid")
        self.enrollments.append(request)
        if self.lose_enroll_answers > 0:
            self.lose_enroll_answers -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "the answer was lost on the way")
        return pb.EnrollResponse(device_id=self.device_id, device_token=self.device_token)

    def Sync(self, request: pb.SyncRequest, context: grpc.ServicerContext) -> Any:
        self._device(context)
        self.syncs.append(request)
        response = pb.SyncResponse(poll_interval_seconds=self.poll_interval_seconds)
        if self.desired is not None and self.sequence > request.known_sequence:
            response.desired_state.CopyFrom(self.desired)
        return response

    def DownloadArtifact(self, request: pb.DownloadRequest,
                         context: grpc.ServicerContext) -> Iterator[pb.ArtifactChunk]:
        self._device(context)
        self.download_requests.append((request.sha256, request.offset))
        data = self.altered.get(request.sha256, self.artifacts.get(request.sha256))
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such artifact")
            return
        sent, offset = 0, request.offset
        while offset < len(data):
            if self.interrupt_after is not None and sent >= self.interrupt_after:
                self.interrupt_after = None
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost (test)")
            piece = data[offset:offset + self.chunk_size]
            yield pb.ArtifactChunk(offset=offset, data=piece, total_size=len(data))
            offset += len(piece)
            sent += len(piece)

    def ReportStatus(self, request: pb.StatusReport, context: grpc.ServicerContext) -> Any:
        self._device(context)
        self.events.extend(request.events)
        return pb.ReportAck(accepted=len(request.events))

    def ReportMetrics(self, request: pb.MetricsReport, context: grpc.ServicerContext) -> Any:
        self._device(context)
        if self.fail_metric_reports > 0:
            self.fail_metric_reports -= 1
            self.failed_window_ids.extend(w.window_id for w in request.windows)
            context.abort(grpc.StatusCode.UNAVAILABLE, "metrics store down (test)")
        self.metric_reports += 1
        if self.reject_metric_windows:
            return pb.ReportAck(rejected=len(request.windows), rejections=[
                pb.Rejection(id=w.window_id, reason="bucket counts sum to 0, the window says 1")
                for w in request.windows])
        fresh = [w for w in request.windows if w.window_id not in self.windows]
        self.windows.update({w.window_id: w for w in fresh})
        self.duplicate_windows += len(request.windows) - len(fresh)
        return pb.ReportAck(accepted=len(fresh), duplicates=len(request.windows) - len(fresh))


class RunningControlPlane:
    """``FakeControlPlane`` served by a real grpc server on 127.0.0.1."""

    def __init__(self, servicer: FakeControlPlane) -> None:
        self.servicer = servicer
        self._server = self._serve("127.0.0.1:0")
        self.address = f"127.0.0.1:{self._port}"

    def _serve(self, address: str) -> grpc.Server:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_DeviceServiceServicer_to_server(self.servicer, server)
        self._port = server.add_insecure_port(address)
        server.start()
        return server

    def stop(self) -> None:
        self._server.stop(0).wait()

    def restart(self) -> None:
        """Serve again on the same address, with the same state (an outage that ended)."""
        self._server = self._serve(self.address)
