"""The optimize pipeline behind PushModel, run by the server's real Celery worker, and what a
push may say about it (calibration, tolerance) and gets refused for."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import grpc
import numpy as np
import pytest

from controlplane import modelgen
from controlplane.config import Settings
from controlplane.registry.tflite import inspect_model
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push_requests, wait_for, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")

MODEL = modelgen.build_cnn(seed=3)
INPUTS = inspect_model(MODEL).inputs


@pytest.fixture
def server_settings(server_settings: Settings) -> Settings:
    """The API fixture's server with the pipeline's every kind, as a fleet runs it."""
    return server_settings.replace(variant_kinds=Settings().variant_kinds)


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def calibration(samples: int = 16) -> bytes:
    return npz(**modelgen.calibration_samples(INPUTS, samples=samples))


def push(srv: RunningServer, version: str, *, tolerance: pb.Tolerance | None = None,
         **kw: object) -> pb.ModelVersion:
    requests = list(push_requests("cnn", version, MODEL, **kw))  # type: ignore[arg-type]
    if tolerance is not None:
        requests[0].header.tolerance.CopyFrom(tolerance)
    return srv.admin().PushModel(iter(requests), metadata=bearer(srv.admin_token), timeout=30)


def test_a_calibrated_push_ends_ready_with_five_measured_variants(server: RunningServer) -> None:
    assert push(server, "1", calibration=calibration()).status == "pending"
    mv = wait_ready(server, "cnn", "1")
    assert mv.status == "ready", mv.failure
    assert mv.calibrated and mv.tolerance.min_cosine == 0.99 and mv.tolerance.min_top1 == 0.95
    # the reference first, then ever smaller kinds
    assert [v.kind for v in mv.variants] == [
        "float32", "float16", "dynamic_int8", "weight_only_int8", "int8"]
    for v in mv.variants:
        assert v.status == "ready" and v.manifest.payload and v.golden_sha256, v
        assert len(v.measurements) >= 1
        for m in v.measurements:
            assert m.inputs_source == "calibration" and m.samples == 16
            assert m.accuracy[0].name == "scores" and m.accuracy[0].HasField("top1")
    int8 = mv.variants[-1]
    assert int8.size <= 0.3 * mv.variants[0].size
    assert int8.inputs[0].dtype == "int8" and int8.inputs[0].HasField("quantization")


def test_a_push_s_tolerance_is_kept_with_the_version(server: RunningServer) -> None:
    push(server, "2", tolerance=pb.Tolerance(min_top1=0.5))
    mv = wait_ready(server, "cnn", "2")
    assert (mv.tolerance.min_cosine, mv.tolerance.min_top1) == (0.99, 0.5)
    assert not mv.calibrated
    int8 = next(v for v in mv.variants if v.kind == "int8")
    assert (int8.status, int8.failure) == ("skipped", "needs calibration data")


@pytest.mark.parametrize(("tolerance", "message"), [
    (pb.Tolerance(min_cosine=1.5), "tolerance min_cosine must be from 0 to 1"),
    (pb.Tolerance(min_top1=float("nan")), "tolerance min_top1 must be from 0 to 1"),
])
def test_a_tolerance_outside_0_to_1_is_refused_and_nothing_stored(
        server: RunningServer, tolerance: pb.Tolerance, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        push(server, "3", tolerance=tolerance)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (err.value.details() or "")
    assert not [p for p in server.settings.artifact_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("data", "message"), [
    (lambda: npz(pixels=np.zeros((16, 1, 28, 28, 1), np.float32)), "it needs exactly one"),
    (lambda: npz(image=np.zeros((16, 1, 27, 28, 1), np.float32)), "expected (N, 1, 28, 28, 1)"),
    (lambda: npz(image=np.array([["a"] * 784] * 16)), "it must hold numbers"),
    (lambda: calibration(samples=3), "needs at least 8"),
])
def test_a_calibration_file_that_does_not_fit_is_refused_at_push_and_nothing_stored(
        server: RunningServer, data, message: str) -> None:  # type: ignore[no-untyped-def]
    """Inputs tried: wrong array names, a wrong shape, strings, too few samples."""
    with pytest.raises(grpc.RpcError) as err:
        push(server, "4", calibration=data())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (err.value.details() or ""), err.value.details()
    assert not [p for p in server.settings.artifact_dir.rglob("*") if p.is_file()]
    with pytest.raises(grpc.RpcError) as missing:
        server.admin().GetModel(pb.GetModelRequest(name="cnn", version="4"),
                                metadata=bearer(server.admin_token))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_device_may_fetch_the_golden_samples_its_manifest_references_and_no_others(
        server: RunningServer) -> None:
    push(server, "5", calibration=calibration(8))
    mv = wait_ready(server, "cnn", "5")
    goldens = {v.kind: v.golden_sha256 for v in mv.variants if v.golden_sha256}
    _, token = enroll(server, labels={"site": "golden"})
    server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="5", selector="site=golden",
                                variant="int8"), metadata=bearer(server.admin_token))

    def desired() -> pb.SyncResponse | None:
        r = server.device().Sync(pb.SyncRequest(known_sequence=0), metadata=bearer(token))
        return r if r.HasField("desired_state") else None

    (entry,) = json.loads(wait_for("the desired state", desired).desired_state.payload)["models"]
    manifest = json.loads(base64.b64decode(entry["manifest"]["payload"]))
    assert manifest["variant"] == "int8" and manifest["golden"]["sha256"] == goldens["int8"]

    def download(sha256: str) -> bytes:
        chunks = server.device().DownloadArtifact(pb.DownloadRequest(sha256=sha256),
                                                  metadata=bearer(token), timeout=30)
        return b"".join(c.data for c in chunks)

    data = download(goldens["int8"])
    assert hashlib.sha256(data).hexdigest() == goldens["int8"]
    assert len(data) == manifest["golden"]["size"]
    with pytest.raises(grpc.RpcError) as err:   # another variant's samples: not this device's
        download(goldens["float16"])
    assert err.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
