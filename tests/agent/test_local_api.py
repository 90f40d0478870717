"""The local inference endpoint over a real unix socket: Predict/Status, refusals with the right
status codes, and InferenceClient (including from many threads at once)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest

from agent import InferenceClient, InvalidInputError, ModelNotFoundError, NoModelLoadedError
from agent.errors import AgentError, AgentTransportError, ConfigurationError
from agent.metrics import MetricsRecorder
from agent.refs import ModelRef
from agent.runtime import ModelRunner
from agent.server import LocalInferenceServer
from agent.serving import LiveModel, ModelTable, Prediction
from agent.settings import AgentSettings
from agent.trust import Signed
from agent.wire import decode_tensor, encode_tensor
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    manifest_doc,
    mlp_artifact,
    mlp_reference,
)

SETTINGS = AgentSettings()


class TableBackend:
    """The smallest real backend: a model table and a status built from it."""

    def __init__(self) -> None:
        self.metrics = MetricsRecorder(SETTINGS)
        self.table = ModelTable(self.metrics)

    def predict(self, model, inputs) -> Prediction:
        return self.table.predict(model, inputs)

    def status(self) -> pb.AgentStatus:
        return pb.AgentStatus(device_id="dev-1", models=[
            pb.AgentModelStatus(model=m.ref.model, version=m.ref.version, variant=m.ref.variant,
                                sha256=m.ref.sha256, state="active")
            for m in self.table.snapshot().values()
        ])

    def load(self, tmp_path: Path, name: str, seed: int) -> LiveModel:
        artifact = mlp_artifact(seed)
        path = tmp_path / f"{artifact.sha256}.tflite"
        path.write_bytes(artifact.data)
        live = LiveModel(ModelRef(name, "1.0.0", "float32", artifact.sha256),
                         ModelRunner(path, manifest_doc(artifact, model=name)),
                         Signed(b"", b"", ""))
        self.table.activate(live)
        return live


@pytest.fixture
def backend() -> TableBackend:
    return TableBackend()


@pytest.fixture
def served(backend, tmp_path):
    server = LocalInferenceServer(backend, f"unix://{tmp_path}/agent.sock", settings=SETTINGS)
    endpoint = server.start()
    yield endpoint
    server.stop(0)


@pytest.fixture
def client(served):
    with InferenceClient(served) as c:
        yield c


@pytest.fixture
def raw_stub(served):
    channel = grpc.insecure_channel(served)
    yield pb_grpc.LocalInferenceServiceStub(channel)
    channel.close()


def x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, MLP_SHAPE).astype(np.float32)


def test_socket_is_group_accessible_only(served, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "agent.sock").st_mode) == 0o660


def test_predict_and_status_through_the_client(backend, client, tmp_path):
    live = backend.load(tmp_path, "face", seed=2)
    result = client.predict_result({MLP_INPUT: x()})
    np.testing.assert_allclose(result.outputs[MLP_OUTPUT], mlp_reference(x(), seed=2),
                               rtol=1e-5, atol=1e-6)
    assert result.ref == live.ref and result.latency_ms > 0
    status = client.status()
    assert status["device_id"] == "dev-1"
    assert status["models"] == [{
        "model": "face", "version": "1.0.0", "variant": "float32", "sha256": live.ref.sha256,
        "state": "active", "message": None, "inferences": 0, "errors": 0,
        "latency_p50_ms": 0.0, "latency_p95_ms": 0.0, "previous_sha256": None,
    }]


def test_client_accepts_a_data_dir(backend, served, tmp_path):
    backend.load(tmp_path, "face", seed=0)
    with InferenceClient(tmp_path) as c:
        assert c.endpoint == served
        assert c.predict({MLP_INPUT: x()})[MLP_OUTPUT].shape == (1, 4)


@pytest.mark.parametrize("inputs,fragment", [
    ({"image": encode_tensor(x())}, "unknown input"),
    ({MLP_INPUT: encode_tensor(np.zeros((1, 8), np.float32))}, "shape"),
    ({MLP_INPUT: encode_tensor(np.zeros(MLP_SHAPE, np.int64))}, "int64"),
    ({MLP_INPUT: pb.Tensor(dtype="float32", shape=[1, 16], data=b"\0" * 10)}, "bytes"),
    ({MLP_INPUT: pb.Tensor(dtype="float32", shape=[1, 16], data=b"\0" * 128)}, "bytes"),
    ({MLP_INPUT: encode_tensor(np.zeros((1, 17), np.float32))}, "shape"),
    ({MLP_INPUT: pb.Tensor(dtype="float32", shape=[1, -16], data=b"")}, "negative"),
    ({MLP_INPUT: pb.Tensor(dtype="complex_thing", shape=[1], data=b"")}, "dtype"),
])
def test_malformed_predict_requests_are_invalid_argument(backend, raw_stub, tmp_path, inputs,
                                                         fragment):
    """Wrong input name, wrong shape, integer dtype, short data, data longer than its shape,
    a shape one element too big, a negative dimension, unknown dtype."""
    backend.load(tmp_path, "face", seed=0)
    with pytest.raises(grpc.RpcError) as info:
        raw_stub.Predict(pb.PredictRequest(inputs=inputs))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


def test_malformed_request_through_the_client_raises_invalid_input(backend, client, tmp_path):
    backend.load(tmp_path, "face", seed=0)
    with pytest.raises(InvalidInputError, match="shape"):
        client.predict({MLP_INPUT: np.zeros((2, 16), np.float32)})


def test_a_request_over_the_message_limit_is_refused_before_it_is_read(backend, tmp_path):
    """Input tried: a 64 KiB limit on the server and an 80 KB tensor sent by a client whose
    own limit allows it: RESOURCE_EXHAUSTED, and the model never sees it."""
    small = SETTINGS.replace(grpc_max_message_bytes=64 * 1024)
    live = backend.load(tmp_path, "face", seed=0)
    server = LocalInferenceServer(backend, f"unix://{tmp_path}/small.sock", settings=small)
    endpoint = server.start()
    try:
        with InferenceClient(endpoint) as c:
            with pytest.raises(AgentError, match="RESOURCE_EXHAUSTED"):
                c.predict({MLP_INPUT: np.zeros((1, 20_000), np.float32)})
            assert c.predict({MLP_INPUT: x()})[MLP_OUTPUT].shape == (1, 4)
    finally:
        server.stop(0)
    assert backend.metrics.stats(live.ref).inferences == 1


@pytest.mark.parametrize("value", [
    x().astype(">f4"),                                   # big-endian float32
    np.asfortranarray(np.tile(x(), (2, 1)))[:1],         # not C-contiguous
    x().astype(np.float64),                              # float64: the agent casts
], ids=["big-endian", "non-contiguous", "float64"])
def test_any_float_layout_travels_and_gets_the_same_answer(backend, client, tmp_path, value):
    backend.load(tmp_path, "face", seed=2)
    np.testing.assert_allclose(client.predict({MLP_INPUT: value})[MLP_OUTPUT],
                               mlp_reference(x(), seed=2), rtol=1e-5, atol=1e-6)


def test_a_dtype_spelled_another_way_is_still_read(backend, raw_stub, tmp_path):
    """Input tried: ``<f4`` (outside the table of names encode_tensor sends)."""
    backend.load(tmp_path, "face", seed=2)
    tensor = pb.Tensor(dtype="<f4", shape=list(MLP_SHAPE), data=x().tobytes())
    response = raw_stub.Predict(pb.PredictRequest(inputs={MLP_INPUT: tensor}))
    np.testing.assert_allclose(decode_tensor("y", response.outputs[MLP_OUTPUT]),
                               mlp_reference(x(), seed=2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                   "int64", "uint64", "float16", "float32", "float64"])
def test_every_numeric_dtype_round_trips_through_the_wire(dtype):
    value = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    for layout in (value, value.T, value.astype(np.dtype(dtype).newbyteorder(">"))):
        tensor = encode_tensor(layout)
        assert tensor.dtype == np.dtype(dtype).name
        back = decode_tensor("t", tensor)
        assert back.dtype == np.dtype(dtype) and back.dtype.isnative
        np.testing.assert_array_equal(back, layout)


def test_predict_with_no_model_loaded_is_failed_precondition(raw_stub, client):
    with pytest.raises(grpc.RpcError) as info:
        raw_stub.Predict(pb.PredictRequest(inputs={MLP_INPUT: encode_tensor(x())}))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(NoModelLoadedError):
        client.predict({MLP_INPUT: x()})


def test_unknown_model_is_not_found(backend, raw_stub, client, tmp_path):
    backend.load(tmp_path, "face", seed=0)
    with pytest.raises(grpc.RpcError) as info:
        raw_stub.Predict(pb.PredictRequest(model="voice", inputs={MLP_INPUT: encode_tensor(x())}))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ModelNotFoundError, match="face"):
        client.predict({MLP_INPUT: x()}, model="voice")


def test_omitting_the_model_while_two_are_loaded_names_them(backend, raw_stub, client, tmp_path):
    backend.load(tmp_path, "face", seed=0)
    backend.load(tmp_path, "voice", seed=1)
    with pytest.raises(grpc.RpcError) as info:
        raw_stub.Predict(pb.PredictRequest(inputs={MLP_INPUT: encode_tensor(x())}))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "face" in info.value.details() and "voice" in info.value.details()
    out = client.predict({MLP_INPUT: x()}, model="voice")[MLP_OUTPUT]
    np.testing.assert_allclose(out, mlp_reference(x(), seed=1), rtol=1e-5, atol=1e-6)


def test_one_client_shared_by_many_threads(backend, client, tmp_path):
    backend.load(tmp_path, "face", seed=4)
    inputs = [x(i) for i in range(6)]
    expected = [mlp_reference(v, seed=4) for v in inputs]
    failures: list[str] = []

    def worker(i: int) -> None:
        for _ in range(25):
            try:
                out = client.predict({MLP_INPUT: inputs[i]})[MLP_OUTPUT]
            except Exception as exc:   # collected, asserted below
                failures.append(repr(exc))
                continue
            if not np.allclose(out, expected[i], rtol=1e-5, atol=1e-6):
                failures.append(f"thread {i}: wrong output")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert backend.table.snapshot()["face"].runner is not None


def test_client_of_an_agent_that_is_not_running_raises_transport_error(tmp_path):
    with InferenceClient(tmp_path / "nowhere", timeout=2) as c, \
            pytest.raises(AgentTransportError, match="not reachable"):
        c.status()


def test_second_server_on_a_live_socket_is_refused(backend, served, tmp_path):
    other = LocalInferenceServer(backend, served, settings=SETTINGS)
    with pytest.raises(ConfigurationError, match="already serves"):
        other.start()


def test_stale_socket_file_is_replaced(backend, tmp_path):
    import socket

    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()   # the file stays, nobody listens
    server = LocalInferenceServer(backend, f"unix://{path}", settings=SETTINGS)
    server.start()
    try:
        with InferenceClient(f"unix://{path}") as c:
            assert c.status()["device_id"] == "dev-1"
    finally:
        server.stop(0)


def test_tcp_address_with_port_zero_reports_the_bound_port(backend):
    server = LocalInferenceServer(backend, "127.0.0.1:0", settings=SETTINGS)
    endpoint = server.start()
    try:
        assert endpoint.startswith("127.0.0.1:") and not endpoint.endswith(":0")
        with InferenceClient(endpoint) as c:
            assert c.status()["device_id"] == "dev-1"
    finally:
        server.stop(0)
