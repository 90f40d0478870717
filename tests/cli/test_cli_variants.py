"""The CLI's side of optimized variants: ``model show``'s table and document of per-interpreter
figures, ``model push --wait`` and its exit codes, a push's tolerance, ``rollout create
--variant``; against a real gRPC server with a canned AdminService."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.cli.connection import ClientSettings
from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


def measurement(interpreter: str, version: str, p50: float, *, cosine: float = 1.0,
                top1: float = 1.0, status: str = "ok", reason: str = "") -> pb.VariantMeasurement:
    return pb.VariantMeasurement(
        interpreter=interpreter, interpreter_version=version, status=status, reason=reason,
        latency_p50_ms=p50, latency_p95_ms=p50 * 1.2, inputs_source="calibration", samples=32,
        accuracy=[pb.OutputAccuracy(name="scores", max_abs_error=1 - cosine, mean_abs_error=0.001,
                                    cosine=cosine, top1=top1)])


def measured_version(status: str = "ready") -> pb.ModelVersion:
    reference = pb.Variant(
        kind="float32", sha256="ab" * 32, size=64_000, status="ready", min_runtime="2.3.0",
        measurements=[measurement("ai-edge-litert", "2.3.0", 0.010),
                      measurement("tflite-runtime", "2.14.0", 0.008)])
    dynamic = pb.Variant(
        kind="dynamic_int8", sha256="cd" * 32, size=16_000, status="ready", min_runtime="2.17.0",
        golden_sha256="ef" * 32, golden_samples=4,
        measurements=[
            measurement("ai-edge-litert", "2.3.0", 0.005),
            measurement("tflite-runtime", "2.14.0", 0.040, cosine=0.636, top1=0.0,
                        status="rejected", reason="scores: cosine similarity 0.6360 < 0.99")])
    skipped = pb.Variant(kind="int8", status="skipped", failure="needs calibration data")
    return pb.ModelVersion(
        name="cnn", version="1", status=status, sha256="ab" * 32, size=64_000,
        tolerance=pb.Tolerance(min_cosine=0.99, min_top1=0.95), calibrated=True,
        variants=[reference, dynamic, skipped])


def pending_version() -> pb.ModelVersion:
    mv = measured_version(status="pending")
    del mv.variants[1:]
    mv.variants.append(pb.Variant(kind="float16", status="pending"))
    return mv


def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.tflite"
    path.write_bytes(os.urandom(100))
    return path


def test_model_show_prints_a_row_per_variant_and_interpreter_with_ratios_to_float32(
        cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetModel", measured_version())
    result = cli("model", "show", "cnn:1")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("KIND "))
    rows = [line.split() for line in lines[header + 1:header + 6]]
    assert rows[0][:5] == ["float32", "ready", "62.5", "KiB", "1.00x"]
    assert rows[2][:6] == ["dynamic_int8", "ready", "15.6", "KiB", "0.25x", "ai-edge-litert"]
    assert rows[2][-2:] == ["0.50x", "ok"]   # 0.005 ms against float32's 0.010 in litert
    assert rows[3][:2] == ["tflite-runtime", "2.14.0"]   # the same variant, next interpreter
    assert "5.00x  rejected: scores: cosine similarity 0.6360 < 0.99" in lines[header + 4]
    assert rows[4][:2] == ["int8", "skipped"] and "needs calibration data" in lines[header + 5]
    assert "measured on 32 calibration input sample(s) against float32" in result.out
    assert "tolerance: cosine >= 0.99, top-1 >= 0.95" in result.out


def test_model_show_json_carries_every_figure(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetModel", measured_version())
    doc = json.loads(cli("model", "show", "cnn:1", "-o", "json").out)
    assert doc["calibrated"] is True
    assert doc["tolerance"] == {"min_cosine": 0.99, "min_top1": 0.95}
    dynamic = doc["variants"][1]
    assert dynamic["min_runtime"] == "2.17.0"
    assert dynamic["golden"] == {"sha256": "ef" * 32, "samples": 4}
    rejected = dynamic["measurements"][1]
    assert rejected == {
        "interpreter": "tflite-runtime", "interpreter_version": "2.14.0", "status": "rejected",
        "reason": "scores: cosine similarity 0.6360 < 0.99", "latency_p50_ms": 0.04,
        "latency_p95_ms": 0.048, "inputs_source": "calibration", "samples": 32,
        "accuracy": [{"name": "scores", "max_abs_error": 1 - 0.636, "mean_abs_error": 0.001,
                      "cosine": 0.636, "top1": 0.0}]}
    skipped = doc["variants"][2]
    assert (skipped["sha256"], skipped["size"], skipped["measurements"]) == (None, None, [])


def test_push_wait_follows_the_pipeline_until_ready(
        cli: Runner, admin_server: Any, tmp_path: Path) -> None:
    admin_server.service.reply("PushModel", pending_version())
    admin_server.service.reply("GetModel", pending_version(), pending_version(),
                               measured_version())
    result = cli("model", "push", str(model_file(tmp_path)), "--name", "cnn", "--version", "1",
                 "--wait", "-o", "json")
    assert result.code == 0, result.err
    assert admin_server.service.calls("GetModel") == 3
    assert json.loads(result.out)["status"] == "ready"   # one document: the settled version


def test_push_wait_exits_8_when_the_version_failed(
        cli: Runner, admin_server: Any, tmp_path: Path) -> None:
    failed = measured_version(status="failed")
    failed.failure = "float32 (the reference): could not run"
    admin_server.service.reply("PushModel", pending_version())
    admin_server.service.reply("GetModel", failed)
    result = cli("model", "push", str(model_file(tmp_path)), "--name", "cnn", "--version", "1",
                 "--wait")
    assert result.code == 8
    assert "cnn:1 failed: float32 (the reference): could not run" in result.err


def test_push_wait_gives_up_after_its_timeout_with_exit_9(
        cli: Runner, admin_server: Any, tmp_path: Path) -> None:
    admin_server.service.reply("PushModel", pending_version())
    admin_server.service.reply("GetModel", pending_version())
    result = cli("model", "push", str(model_file(tmp_path)), "--name", "cnn", "--version", "1",
                 "--wait", "--timeout", "1s",
                 settings=ClientSettings(watch_interval_seconds=0.2, watch_outage_seconds=1))
    assert result.code == 9
    assert "gave up waiting for cnn:1 after 1 s" in result.err


def test_without_wait_the_push_answers_at_once_and_says_how_to_follow(
        cli: Runner, admin_server: Any, tmp_path: Path) -> None:
    admin_server.service.reply("PushModel", pending_version())
    result = cli("model", "push", str(model_file(tmp_path)), "--name", "cnn", "--version", "1")
    assert result.code == 0 and admin_server.service.calls("GetModel") == 0
    assert "edgefleet model show cnn:1" in result.err


def test_a_push_s_tolerance_travels_in_its_header(
        cli: Runner, admin_server: Any, tmp_path: Path) -> None:
    admin_server.service.reply("PushModel", pending_version())
    assert cli("model", "push", str(model_file(tmp_path)), "--name", "cnn", "--version", "1",
               "--min-top1", "0.5").code == 0
    header = admin_server.service.push.header
    assert header.HasField("tolerance") and header.tolerance.min_top1 == 0.5
    assert not header.tolerance.HasField("min_cosine")   # the server's default


def test_a_tolerance_outside_0_to_1_is_a_usage_error(cli: Runner, tmp_path: Path) -> None:
    for value in ("1.5", "-0.1", "nan", "high"):
        result = cli("model", "push", str(model_file(tmp_path)), "--name", "cnn",
                     "--version", "1", "--min-cosine", value)
        assert result.code == 2 and "--min-cosine" in result.err, (value, result.err)


def test_rollout_create_sends_the_variant_asked_for_and_shows_failed_devices(
        cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateRollout", pb.Rollout(
        id="r1", model="cnn", version="1", selector="*", variant="dynamic_int8", state="failed",
        waves=[pb.Wave(index=0, devices=1, failed=1, state="failed")],
        failed_devices=[pb.FailedDevice(device_id="d1", message="no variant this device can "
                                        "run: dynamic_int8 rejected for tflite-runtime 2.14.0")]))
    result = cli("rollout", "create", "cnn:1", "--selector", "*", "--variant", "dynamic_int8")
    assert result.code == 0, result.err
    assert admin_server.service.requests["CreateRollout"][0].variant == "dynamic_int8"
    assert "variant:" in result.out and "dynamic_int8" in result.out
    assert "failed devices:" in result.out and "rejected for tflite-runtime 2.14.0" in result.out
