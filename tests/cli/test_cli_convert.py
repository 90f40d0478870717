"""Proto messages -> contract JSON: every contract key present, explicit nulls for unset values."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.cli import convert
from protos import edgefleet_pb2 as pb

MAY_1 = Timestamp(seconds=1714564800)  # 2024-05-01T12:00:00Z


def test_timestamps_are_rfc3339_utc_and_unset_ones_are_null() -> None:
    device = pb.Device(id="d1", last_seen=Timestamp(seconds=1714564800, nanos=250_000_000))
    doc = convert.device(device)
    assert doc["last_seen"] == "2024-05-01T12:00:00.250000Z"
    assert doc["enrolled_at"] is None
    whole_second = convert.device(pb.Device(id="d1", last_seen=MAY_1))
    assert whole_second["last_seen"] == "2024-05-01T12:00:00Z"


def test_device_without_hardware_or_last_seen_has_explicit_nulls() -> None:
    doc = convert.device(pb.Device(id="d1", name="cam-1"))
    for key in ("id", "name", "labels", "hardware", "last_seen", "models"):
        assert key in doc
    assert doc["hardware"] is None
    assert doc["last_seen"] is None
    assert doc["labels"] == {}
    assert doc["models"] == []
    assert (doc["metrics"], doc["metrics_coverage"]) == (None, None)   # not told, not "none"


def test_device_model_with_only_desired_state_has_null_active() -> None:
    ref = pb.ModelRef(model="face", version="1.2.0", variant="full_int8", sha256="ab" * 32)
    device = pb.Device(id="d1", models=[pb.DeviceModel(model="face", desired=ref)])
    (model,) = convert.device(device)["models"]
    assert model == {
        "model": "face",
        "desired": {"version": "1.2.0", "variant": "full_int8", "sha256": "ab" * 32},
        "active": None,
        "state": None,
        "message": None,
        "finding": None,
    }


def test_device_model_ref_set_but_empty_counts_as_null() -> None:
    device = pb.Device(id="d1", models=[pb.DeviceModel(model="face", active=pb.ModelRef())])
    assert convert.device(device)["models"][0]["active"] is None


def test_hardware_profile_keeps_contract_field_names_and_bytes() -> None:
    hardware = pb.HardwareProfile(
        arch="aarch64", cpu_model="Cortex-A72", cpu_cores=4, cpu_flags=["neon"],
        ram_bytes=4 * 1024**3, ram_available_bytes=3 * 1024**3, storage_free_bytes=10**10,
        os="linux", kernel="6.1", interpreter=pb.InterpreterInfo(name="tflite-runtime",
                                                                  version="2.14.0"),
        delegates=["xnnpack"],
    )
    doc = convert.device(pb.Device(id="d1", hardware=hardware, labels={"site": "berlin"}))
    assert doc["hardware"] == {
        "arch": "aarch64", "cpu_model": "Cortex-A72", "cpu_cores": 4, "cpu_flags": ["neon"],
        "ram_bytes": 4 * 1024**3, "ram_available_bytes": 3 * 1024**3,
        "storage_free_bytes": 10**10, "os": "linux", "kernel": "6.1",
        "interpreter": {"name": "tflite-runtime", "version": "2.14.0"}, "delegates": ["xnnpack"],
    }
    assert doc["labels"] == {"site": "berlin"}


def test_hardware_without_interpreter_reports_null_interpreter() -> None:
    doc = convert.device(pb.Device(id="d1", hardware=pb.HardwareProfile(arch="x86_64")))
    assert doc["hardware"]["interpreter"] is None
    assert doc["hardware"]["ram_bytes"] is None


def _model_version() -> pb.ModelVersion:
    quantized = pb.TensorSpec(
        name="input", shape=[1, 4], dtype="int8",
        quantization=pb.Quantization(scale=[0.5], zero_point=[-128], quantized_dimension=0),
    )
    manifest = pb.SignedDocument(payload=b'{"model": "face"}', signature=b"\x01\x02", key_id="k1")
    return pb.ModelVersion(
        name="face", version="1.2.0", status="ready", sha256="cd" * 32, size=123456,
        inputs=[pb.TensorSpec(name="input", shape=[1, 4], dtype="float32")],
        outputs=[pb.TensorSpec(name="scores", shape=[1, 2], dtype="float32")],
        operators=["FULLY_CONNECTED"], min_runtime="2.3.0", created_at=MAY_1,
        variants=[
            pb.Variant(kind="float32", sha256="cd" * 32, size=123456, status="ready",
                       latency_ms=1.5, manifest=manifest),
            pb.Variant(kind="full_int8", status="pending", inputs=[quantized]),
        ],
    )


def test_model_version_has_every_contract_key() -> None:
    doc = convert.model_version(_model_version())
    for key in ("name", "version", "status", "inputs", "outputs", "variants", "failure",
                "operators", "min_runtime", "sha256", "size", "created_at"):
        assert key in doc
    assert doc["failure"] is None
    assert doc["created_at"] == "2024-05-01T12:00:00Z"
    assert doc["inputs"] == [{"name": "input", "shape": [1, 4], "dtype": "float32",
                              "quantization": None}]
    json.dumps(doc)  # every value is plain JSON


def test_variants_carry_kind_sha256_size_and_null_for_what_is_not_there_yet() -> None:
    ready, pending = convert.model_version(_model_version())["variants"]
    assert (ready["kind"], ready["sha256"], ready["size"]) == ("float32", "cd" * 32, 123456)
    assert ready["latency_ms"] == 1.5
    assert ready["manifest"] == {"key_id": "k1", "payload": {"model": "face"},
                                 "signature": "AQI="}
    assert (pending["sha256"], pending["size"], pending["latency_ms"]) == (None, None, None)
    assert pending["manifest"] is None
    assert pending["inputs"][0]["quantization"] == {
        "scale": [0.5], "zero_point": [-128], "quantized_dimension": 0}


def test_manifest_payload_that_is_not_json_is_shown_in_base64() -> None:
    doc = convert.signed_document(pb.SignedDocument(payload=b"\xff\xfe", signature=b""))
    assert doc["payload"] == "//4="


def test_failed_model_version_reports_its_failure() -> None:
    doc = convert.model_version(pb.ModelVersion(name="m", version="1", status="failed",
                                                failure="not a TFLite flatbuffer"))
    assert (doc["status"], doc["failure"], doc["min_runtime"]) == (
        "failed", "not a TFLite flatbuffer", None)


def test_rollout_with_waves() -> None:
    rollout = pb.Rollout(
        id="r1", model="face", version="1.2.0", selector="site=berlin", state="running",
        waves=[pb.Wave(index=0, devices=3, succeeded=1, failed=0, state="running")],
        created_at=MAY_1,
    )
    assert convert.rollout(rollout) == {
        "id": "r1", "model": "face", "version": "1.2.0", "selector": "site=berlin",
        "state": "running",
        "waves": [{"index": 0, "target": 0, "devices": 3, "queued": 0, "in_progress": 0,
                   "held": 0, "succeeded": 1, "failed": 0, "timed_out": 0, "skipped": 0,
                   "no_compatible": 0, "rolled_back": 0, "state": "running",
                   "started_at": None, "completed_at": None, "bake_until": None,
                   "finished_at": None, "gates": []}],
        "created_at": "2024-05-01T12:00:00Z", "updated_at": None, "created_by": None,
        "variant": None, "prefer": "latency", "failed_devices": [],
        "reason": None, "previous_version": None, "plan": None,
    }


def test_tokens() -> None:
    assert convert.created_token(pb.CreateTokenResponse(id="t1", token="s3cret", role="viewer")) \
        == {"id": "t1", "token": "s3cret", "role": "viewer", "expires_at": None}
    enrollment = pb.CreateEnrollmentTokenResponse(id="e1", token="enr", uses=5, expires_at=MAY_1,
                                                  labels={"tier": "canary", "site": "berlin"})
    assert convert.enrollment_token(enrollment) == {
        "id": "e1", "token": "enr", "uses": 5, "expires_at": "2024-05-01T12:00:00Z",
        "labels": {"site": "berlin", "tier": "canary"},
    }
