"""AdminService over a real socket: model push, listing, rollouts, and what bad input gets."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import push, push_requests, wait_ready

MODEL = modelgen.build_cnn(seed=1)


def _code(exc_info: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return exc_info.value.code()


def _blobs(srv: RunningServer) -> list[str]:
    root = srv.settings.artifact_dir
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _no_models(srv: RunningServer) -> bool:
    return (
        len(srv.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(srv.admin_token)).models)
        == 0
    )


def test_push_records_signature_and_becomes_ready_with_a_signed_manifest(
    server: RunningServer,
) -> None:
    mv = push(server, "cnn", "1.0.0", MODEL)
    assert mv.status == "pending"
    assert mv.sha256 == hashlib.sha256(MODEL).hexdigest()
    assert [t.name for t in mv.inputs] == ["image"]
    assert list(mv.inputs[0].shape) == [1, 28, 28, 1] and mv.inputs[0].dtype == "float32"
    assert "CONV_2D" in mv.operators
    ready = wait_ready(server, "cnn", "1.0.0")
    assert ready.status == "ready", ready.failure
    variant, *others = ready.variants   # the reference first; this server makes no others
    assert {(v.kind, v.status, v.failure) for v in others} == {
        ("float16", "skipped", "left out by this server's variant_kinds setting"),
        ("dynamic_int8", "skipped", "left out by this server's variant_kinds setting"),
        ("weight_only_int8", "skipped", "left out by this server's variant_kinds setting"),
        ("int8", "skipped", "needs calibration data")}   # what it would say in any case
    assert variant.kind == "float32" and variant.size == len(MODEL) and variant.latency_ms > 0
    key = load_pem_public_key(server.settings.signing_public_key_path.read_bytes())
    key.verify(variant.manifest.signature, variant.manifest.payload)  # raises if forged
    manifest = json.loads(variant.manifest.payload)
    assert manifest["sha256"] == variant.sha256 and manifest["model"] == "cnn"


def test_duplicate_version_is_already_exists_and_stores_nothing_new(server: RunningServer) -> None:
    """Input tried: the same name:version pushed twice."""
    push(server, "cnn", "1.0.0", MODEL)
    with pytest.raises(grpc.RpcError) as err:
        push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=2))
    assert _code(err) == grpc.StatusCode.ALREADY_EXISTS
    assert len(_blobs(server)) == 1


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("not_tflite", b"PK\x03\x04 this is a zip, not a model" * 10),
        ("wrong_identifier", MODEL[:4] + b"XXXX" + MODEL[8:]),
        ("truncated_file", MODEL[: len(MODEL) // 3]),
    ],
)
def test_invalid_model_files_are_refused_and_nothing_is_stored(
    server: RunningServer, case: str, data: bytes
) -> None:
    """Input tried: a non-TFLite file, a wrong file identifier, a file cut to a third."""
    with pytest.raises(grpc.RpcError) as err:
        push(server, "bad", "1", data)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert _blobs(server) == [] and _no_models(server)


def test_empty_upload_is_refused(server: RunningServer) -> None:
    """Input tried: a zero-byte file."""
    with pytest.raises(grpc.RpcError) as err:
        push(server, "empty", "1", b"")
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty" in err.value.details()
    assert _blobs(server) == [] and _no_models(server)


def test_upload_cut_off_before_the_announced_size_is_refused(server: RunningServer) -> None:
    """Input tried: the header announces the full size but the stream stops half-way."""
    with pytest.raises(grpc.RpcError) as err:
        push(
            server,
            "cut",
            "1",
            MODEL[: len(MODEL) // 2],
            size=len(MODEL),
            sha256=hashlib.sha256(MODEL).hexdigest(),
        )
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncated" in err.value.details()
    assert _blobs(server) == [] and _no_models(server)


def test_bytes_not_matching_the_announced_sha256_are_refused(server: RunningServer) -> None:
    """Input tried: a model whose bytes were altered in transit (digest mismatch)."""
    with pytest.raises(grpc.RpcError) as err:
        push(server, "altered", "1", MODEL, sha256="0" * 64)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert _blobs(server) == [] and _no_models(server)


def test_oversized_upload_is_resource_exhausted(server: RunningServer) -> None:
    """Input tried: a header announcing 1 byte over max_model_bytes, and a stream that lies."""
    limit = server.settings.max_model_bytes
    with pytest.raises(grpc.RpcError) as err:
        push(server, "big", "1", b"\0" * 16, size=limit + 1)
    assert _code(err) == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as err:  # announces small, sends more than announced
        server.admin().PushModel(
            push_requests("big", "2", MODEL + b"\0" * 1024, size=len(MODEL)),
            metadata=bearer(server.admin_token),
        )
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert _blobs(server) == [] and _no_models(server)


def test_rollout_of_unknown_model_is_not_found(server: RunningServer) -> None:
    """Input tried: a rollout for a model that was never pushed, and for an unknown version."""
    push(server, "cnn", "1.0.0", MODEL)
    for model, version in (("ghost", "1.0.0"), ("cnn", "9.9.9")):
        with pytest.raises(grpc.RpcError) as err:
            server.admin().CreateRollout(
                pb.CreateRolloutRequest(model=model, version=version, selector="*"),
                metadata=bearer(server.admin_token),
            )
        assert _code(err) == grpc.StatusCode.NOT_FOUND


def test_malformed_selector_is_invalid_argument(server: RunningServer) -> None:
    """Input tried: a selector without '='."""
    push(server, "cnn", "1.0.0", MODEL)
    wait_ready(server, "cnn", "1.0.0")
    with pytest.raises(grpc.RpcError) as err:
        server.admin().CreateRollout(
            pb.CreateRolloutRequest(model="cnn", version="1.0.0", selector="site"),
            metadata=bearer(server.admin_token),
        )
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("selector", "code", "complaint"),
    [
        ("site=nowhere", grpc.StatusCode.FAILED_PRECONDITION, "matches no device"),
        ("site=berlin,site=paris", grpc.StatusCode.INVALID_ARGUMENT, "given twice"),
    ],
)
def test_a_selector_that_can_match_nothing_is_refused(
    server: RunningServer, selector: str, code: grpc.StatusCode, complaint: str
) -> None:
    """Input tried: a selector with a typo (matches no enrolled device) and a contradictory one
    (one label twice): refused instead of a rollout that "succeeds" with nothing deployed."""
    from tests.api.helpers import enroll

    push(server, "cnn", "1.0.0", MODEL)
    wait_ready(server, "cnn", "1.0.0")
    enroll(server, labels={"site": "berlin"})
    with pytest.raises(grpc.RpcError) as err:
        server.admin().CreateRollout(
            pb.CreateRolloutRequest(model="cnn", version="1.0.0", selector=selector),
            metadata=bearer(server.admin_token),
        )
    assert _code(err) == code
    assert complaint in (err.value.details() or "")
    listed = server.admin().ListRollouts(pb.ListRolloutsRequest(),
                                         metadata=bearer(server.admin_token))
    assert list(listed.rollouts) == []
    # the same '*' a rollout takes lists every device
    every = server.admin().ListDevices(pb.ListDevicesRequest(selector="*"),
                                       metadata=bearer(server.admin_token)).devices
    assert [dict(d.labels) for d in every] == [{"site": "berlin"}]


def test_calibration_must_match_the_inputs(server: RunningServer) -> None:
    """Input tried: a calibration .npz keyed by the wrong input name, and one that is not .npz."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, wrong=np.zeros((2, 1, 28, 28, 1), np.float32))
    for cal in (buf.getvalue(), b"not an npz"):
        with pytest.raises(grpc.RpcError) as err:
            push(server, "cnn", "1.0.0", MODEL, calibration=cal)
        assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert _blobs(server) == [] and _no_models(server)


def test_a_calibration_zip_bomb_is_refused_without_inflating_it(server: RunningServer) -> None:
    """Input tried (M1): a calibration .npz of a few hundred KB whose one entry inflates to
    320 MiB of zeros (over max_calibration_inflated_bytes, 256 MiB): RESOURCE_EXHAUSTED,
    nothing stored, and the server never holds the inflated bytes."""
    import io
    import tracemalloc
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    rows = 320 * 1024 * 1024 // (28 * 28 * 4)
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, 1, 28, 28, 1)}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("image.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        zeros = bytes(28 * 28 * 4 * 4096)
        for _ in range(rows // 4096):
            f.write(zeros)
    bomb = buf.getvalue()
    assert len(bomb) < server.settings.max_calibration_bytes
    tracemalloc.start()
    try:
        with pytest.raises(grpc.RpcError) as err:
            push(server, "cnn", "1.0.0", MODEL, calibration=bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _code(err) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_calibration_inflated_bytes" in (err.value.details() or "")
    assert peak < 64 * 1024 * 1024
    assert _blobs(server) == [] and _no_models(server)


def test_a_tensor_name_too_long_for_any_message_is_refused_and_lists_keep_working(
        server: RunningServer) -> None:
    """Input tried (M2): the CNN with its input tensor renamed to 1.6 MB of 'x' (such a push once
    made `model list` fail for every operator): INVALID_ARGUMENT naming the setting, nothing
    stored, and the model list still answers with the other models."""
    push(server, "ok", "1.0.0", MODEL)

    def rename(model: object) -> None:
        subgraph = model.subgraphs[0]  # type: ignore[attr-defined]
        subgraph.tensors[subgraph.inputs[0]].name = "x" * 1_600_000

    huge = modelgen.edit_model(MODEL, rename)
    with pytest.raises(grpc.RpcError) as err:
        server.admin().PushModel(push_requests("big", "1.0.0", huge, chunk=1024 * 1024),
                                 metadata=bearer(server.admin_token), timeout=60)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_tensor_name_chars" in (err.value.details() or "")
    listed = server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(server.admin_token))
    assert [m.name for m in listed.models] == ["ok"]


def test_a_signature_too_heavy_for_one_message_is_refused_at_push(server: RunningServer) -> None:
    """Input tried (M2): the MLP with its output quantized per channel with 4096 scales on each
    of 40 extra outputs (every name and count within its own bound, the whole description
    about 3 MB): refused at push naming max_signature_bytes, so no version exists that GetModel
    or a listing could not carry."""
    from ai_edge_litert import schema_py_generated as schema

    def heavy(model: object) -> None:
        subgraph = model.subgraphs[0]  # type: ignore[attr-defined]
        subgraph.outputs = list(subgraph.outputs)   # unpacked as a numpy array
        for i in range(40):
            t = schema.TensorT()
            t.name, t.shape, t.type, t.buffer = f"extra{i}", [4096], schema.TensorType.INT8, 0
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = [0.5] * 4096, [0] * 4096
            t.quantization = q
            subgraph.tensors.append(t)
            subgraph.outputs.append(len(subgraph.tensors) - 1)

    data = modelgen.edit_model(modelgen.build_mlp(seed=3), heavy)
    with pytest.raises(grpc.RpcError) as err:
        push(server, "heavy", "1.0.0", data)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_signature_bytes" in (err.value.details() or "")
    assert _no_models(server)


def test_calibration_larger_than_one_grpc_message_streams_in_chunks(server: RunningServer) -> None:
    """A 5 MiB calibration file (over the 4 MiB message limit) arrives whole and is recorded."""
    import io

    import numpy as np

    samples = np.random.default_rng(0).random((1700, 1, 28, 28, 1), dtype=np.float32)
    buf = io.BytesIO()
    np.savez(buf, image=samples)
    data = buf.getvalue()
    assert len(data) > server.settings.grpc_max_message_bytes
    mv = push(server, "cnn", "1.0.0", MODEL, calibration=data, chunk=1024 * 1024)
    assert mv.status == "pending"
    assert hashlib.sha256(data).hexdigest() in _blobs(server)


def test_calibration_chunks_after_model_chunks_are_refused(server: RunningServer) -> None:
    """Input tried: a stream that sends calibration bytes after the model's bytes began."""

    def stream():  # type: ignore[no-untyped-def]
        yield pb.PushModelRequest(
            header=pb.PushModelHeader(name="cnn", version="1", size=len(MODEL), calibration_size=4)
        )
        yield pb.PushModelRequest(chunk=MODEL)
        yield pb.PushModelRequest(calibration_chunk=b"abcd")

    with pytest.raises(grpc.RpcError) as err:
        server.admin().PushModel(stream(), metadata=bearer(server.admin_token))
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert _blobs(server) == [] and _no_models(server)


def test_model_an_interpreter_cannot_run_ends_failed_with_the_reason(server: RunningServer) -> None:
    """Input tried: a valid flatbuffer whose first operator is an unknown custom op."""
    from ai_edge_litert import schema_py_generated as schema

    def unknown_op(m: schema.ModelT) -> None:
        m.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
        m.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        m.operatorCodes[0].customCode = b"EdgeFleetNoSuchOp"

    push(server, "custom", "1", modelgen.edit_model(MODEL, unknown_op))
    mv = wait_ready(server, "custom", "1")
    assert mv.status == "failed"
    assert "EdgeFleetNoSuchOp" in mv.failure
    assert mv.variants[0].status == "failed" and not mv.variants[0].manifest.payload
    with pytest.raises(grpc.RpcError) as err:
        server.admin().CreateRollout(
            pb.CreateRolloutRequest(model="custom", version="1", selector="*"),
            metadata=bearer(server.admin_token))
    assert _code(err) == grpc.StatusCode.FAILED_PRECONDITION


def test_a_version_whose_measure_message_was_lost_is_measured_by_the_sweep(
    server_settings: object, db_url: str
) -> None:
    """Input tried: a pending version whose task never reached a worker (as after a crash of
    the embedded server, whose broker is in memory)."""
    import dataclasses
    import hashlib

    from controlplane.app import ControlPlane
    from controlplane.registry import services as registry
    from controlplane.registry.tflite import inspect_model
    from tests.api.conftest import start_server

    settings = dataclasses.replace(server_settings, measure_resend_seconds=0,  # type: ignore[type-var]
                                   measure_sweep_seconds=0.5, upload_stale_seconds=3600)
    if db_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True)
        Path(db_url.split("///", 1)[1]).rename(settings.data_dir / "edgefleet.db")
    # Written straight to the store and database, with no task sent: the lost message.
    plane = ControlPlane.from_settings(settings)
    stored = plane.store.put_bytes(MODEL)
    with plane.tx() as s:
        registry.register_version(
            s, name="lost", version="1", model=registry.Upload(stored.sha256, stored.size),
            info=inspect_model(MODEL), calibration=None, created_by=None)
    plane.close()
    # Input tried as well: upload temp files, one left by a server killed two hours ago, one
    # of a push still being written.
    uploads = settings.artifact_dir / ".uploads"
    (uploads / "upload-killed.part").write_bytes(b"x" * 1000)
    os.utime(uploads / "upload-killed.part", (time.time() - 7200,) * 2)
    (uploads / "upload-live.part").write_bytes(b"y" * 10)
    thread, stop, loop = start_server(settings)
    try:
        token = settings.admin_token_path.read_text().strip()
        with grpc.insecure_channel(settings.listen) as ch:
            srv = RunningServer(settings.listen, settings, token, ch)
            assert wait_ready(srv, "lost", "1").status == "ready"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    assert hashlib.sha256(MODEL).hexdigest() == stored.sha256
    assert sorted(p.name for p in uploads.iterdir()) == ["upload-live.part"]
