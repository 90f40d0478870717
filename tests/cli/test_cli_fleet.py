"""``device explain``, ``fleet classes``, ``fleet compat list|clear`` and ``rollout create
--prefer`` against a scripted admin server: what is sent, and what people and scripts read."""

from __future__ import annotations

from typing import Any

import grpc

from protos import edgefleet_pb2 as pb
from tests.cli.conftest import Runner

CLASS = pb.HardwareClass(key="hc-0123456789ab", name="armv7l/tflite-runtime-2.14/512M/cpu",
                         fields={"arch": "armv7l", "interpreter": "tflite-runtime",
                                 "series": "2.14", "ram": "512M", "accelerators": "cpu"},
                         devices=3)


def _explanation(chosen: str = "dynamic_int8") -> pb.Explanation:
    return pb.Explanation(
        device_id="d-1", model="cnn", version="1", hardware_class=CLASS, prefer="latency",
        chosen=chosen, reason="dynamic_int8: preferred by latency (7.000 ms, ...)",
        interpreter="tflite-runtime", interpreter_version="2.14.0",
        ram_available_bytes=300 * 2**20, storage_free_bytes=0,
        variants=[
            pb.VariantVerdict(kind="float32", eligible=True, latency_ms=10.0,
                              latency_source="p50 measured in tflite-runtime 2.14.0",
                              accuracy_cosine=1.0, size_bytes=64544, memory_bytes=105392),
            pb.VariantVerdict(kind="dynamic_int8", eligible=True, chosen=chosen == "dynamic_int8",
                              latency_ms=7.0, latency_source="p50 measured in tflite-runtime",
                              size_bytes=20000, memory_bytes=60848),
            pb.VariantVerdict(kind="int8", eligible=False,
                              reasons=["rejected for tflite-runtime 2.14.0: cosine 0.2 < 0.99"]),
        ])


def test_device_explain_sends_the_policy_and_shows_every_variant(cli: Runner,
                                                                 admin_server: Any) -> None:
    admin_server.service.reply("ExplainDevice", _explanation())
    result = cli("device", "explain", "d-1", "cnn:1", "--prefer", "size", "--variant", "int8")
    assert result.code == 0, result.err
    request = admin_server.service.requests["ExplainDevice"][0]
    assert (request.device_id, request.model, request.version, request.prefer,
            request.variant) == ("d-1", "cnn", "1", "size", "int8")
    assert "hardware class: armv7l/tflite-runtime-2.14/512M/cpu (hc-0123456789ab)" in result.out
    assert "storage free:   (not reported)" in result.out
    rows = {line.split()[0] if not line.startswith("*") else line.split()[1]: line
            for line in result.out.split("variants (* chosen):\n")[1].splitlines()[1:]}
    assert rows["dynamic_int8"].startswith("* dynamic_int8")
    assert "rejected for tflite-runtime 2.14.0" in rows["int8"]


def test_device_explain_json_and_no_compatible_variant_says_what_next(
        cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ExplainDevice", _explanation(chosen=""))
    result = cli("device", "explain", "d-1", "cnn:1", "-o", "json")
    doc = result.json()
    assert doc["chosen"] is None and doc["hardware_class"]["key"] == "hc-0123456789ab"
    assert [v["kind"] for v in doc["variants"]] == ["float32", "dynamic_int8", "int8"]
    assert doc["variants"][2]["latency_ms"] is None        # unset, not 0
    assert doc["variants"][0]["memory_bytes"] == 105392
    assert "no_compatible_variant" in result.err


def test_device_explain_needs_a_version(cli: Runner) -> None:
    """Input tried: NAME without :VERSION."""
    result = cli("device", "explain", "d-1", "cnn")
    assert result.code == 2 and "needs a version" in result.err


def test_fleet_classes_table_and_json(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListHardwareClasses",
                               pb.ListHardwareClassesResponse(classes=[CLASS]))
    out = cli("fleet", "classes").out
    (row,) = out.splitlines()[1:]
    assert row.split() == ["hc-0123456789ab", "armv7l/tflite-runtime-2.14/512M/cpu", "3",
                           "armv7l", "tflite-runtime", "2.14", "512M", "cpu"]
    admin_server.service.reply("ListHardwareClasses", pb.ListHardwareClassesResponse())
    assert "no device has reported" in cli("fleet", "classes").out
    admin_server.service.reply("ListHardwareClasses",
                               pb.ListHardwareClassesResponse(classes=[CLASS]))
    assert cli("fleet", "classes", "-o", "json").json()["classes"][0]["devices"] == 3


def test_fleet_compat_list_and_clear(cli: Runner, admin_server: Any) -> None:
    mark = pb.Incompatibility(model="cnn", version="1", variant="int8",
                              hardware_class=pb.HardwareClass(key=CLASS.key, name=CLASS.name),
                              reason="sample 1 off by 0.4", device_id="d-1", reports=2,
                              finding=pb.Finding(reason="golden_mismatch", sample=1))
    admin_server.service.reply("ListIncompatibilities",
                               pb.ListIncompatibilitiesResponse(incompatibilities=[mark]))
    doc = cli("fleet", "compat", "list", "cnn:1", "-o", "json").json()
    request = admin_server.service.requests["ListIncompatibilities"][0]
    assert (request.model, request.version) == ("cnn", "1")
    (only,) = doc["incompatibilities"]
    assert (only["variant"], only["reports"], only["finding"]["reason"]) == (
        "int8", 2, "golden_mismatch")

    admin_server.service.reply("ClearIncompatibility", pb.ClearIncompatibilityResponse(cleared=1))
    result = cli("fleet", "compat", "clear", "cnn:1", "int8", "--class", CLASS.key)
    assert result.code == 0 and "cleared 1 mark(s)" in result.out
    request = admin_server.service.requests["ClearIncompatibility"][0]
    assert (request.variant, request.hardware_class) == ("int8", CLASS.key)

    admin_server.service.fail("ClearIncompatibility", grpc.StatusCode.NOT_FOUND, "no mark")
    assert cli("fleet", "compat", "clear", "cnn:1", "int8").code == 5


def test_rollout_create_sends_prefer_and_status_counts_devices_with_no_variant(
        cli: Runner, admin_server: Any) -> None:
    rollout = pb.Rollout(id="r-1", model="cnn", version="1", selector="*", state="succeeded",
                         prefer="accuracy",
                         waves=[pb.Wave(index=0, devices=3, succeeded=2, no_compatible=1,
                                        state="succeeded")],
                         failed_devices=[pb.FailedDevice(device_id="d-3",
                                                         state="no_compatible_variant",
                                                         message="no variant this device can "
                                                                 "run: float32: needs 1 MiB")])
    admin_server.service.reply("CreateRollout", rollout)
    result = cli("rollout", "create", "cnn:1", "--selector", "*", "--prefer", "accuracy")
    assert admin_server.service.requests["CreateRollout"][0].prefer == "accuracy"
    assert "chosen per device, preferring accuracy" in result.out
    assert "2/3 ok, 0 failed, 1 with no compatible variant" in result.out
    assert result.out.split("failed devices:\n")[1].splitlines()[1].split()[:4] == \
        ["d-3", "no_compatible_variant", "no", "variant"]
    result = cli("rollout", "create", "cnn:1", "--selector", "*", "--prefer", "speed")
    assert result.code == 2   # argparse: not one of the choices


def test_model_show_by_class_asks_for_it_and_shows_each_class_and_variant(
        cli: Runner, admin_server: Any) -> None:
    mv = pb.ModelVersion(name="cnn", version="1", status="ready", class_metrics=[
        pb.ClassVariantMetrics(hardware_class=pb.HardwareClass(key=CLASS.key, name=CLASS.name),
                               variant="int8", devices=2, windows=5, inferences=400, errors=4,
                               nonfinite=1, latency_p50_ms=3.25, latency_p95_ms=9.5)],
        class_metrics_coverage=pb.MetricsCoverage(windows_considered=5, max_windows=20000))
    admin_server.service.reply("GetModel", mv, mv)
    out = cli("model", "show", "cnn:1", "--by-class").out
    assert admin_server.service.requests["GetModel"][0].by_class
    row = out.split("by hardware class:\n")[1].splitlines()[1].split()
    assert row == [CLASS.name, "int8", "2", "400", "1.00%", "1", "3.250", "9.500"]
    doc = cli("model", "show", "cnn:1", "--by-class", "-o", "json").json()
    assert doc["by_class"][0]["error_rate"] == 0.01
    admin_server.service.reply("GetModel", pb.ModelVersion(name="cnn", version="1"))
    assert cli("model", "show", "cnn:1", "-o", "json").json()["by_class"] is None


def test_device_show_lists_the_hardware_history_when_the_profile_changed(
        cli: Runner, admin_server: Any) -> None:
    older = pb.ProfileChange(hardware_class=pb.HardwareClass(key="hc-000000000001",
                                                            name="x86_64/tflite-runtime-2.14/4G/cpu"),
                             profile=pb.HardwareProfile(ram_available_bytes=2**30))
    newer = pb.ProfileChange(hardware_class=pb.HardwareClass(key="hc-000000000002",
                                                            name="x86_64/ai-edge-litert-2.3/4G/cpu"),
                             profile=pb.HardwareProfile(ram_available_bytes=2**31))
    newer.recorded_at.FromSeconds(1714564800)
    device = pb.Device(id="d-1", name="cam", hardware_history=[newer, older],
                       metrics_coverage=pb.MetricsCoverage())
    admin_server.service.reply("GetDevice", device, device)
    out = cli("device", "show", "d-1").out
    rows = out.split("hardware history:\n")[1].split("\n\n")[0].splitlines()[1:]
    assert [r.split()[:2] for r in rows] == [
        ["2024-05-01T12:00:00Z", "x86_64/ai-edge-litert-2.3/4G/cpu"],
        ["-", "x86_64/tflite-runtime-2.14/4G/cpu"]]
    doc = cli("device", "show", "d-1", "-o", "json").json()
    assert [c["hardware_class"]["key"] for c in doc["hardware_history"]] == [
        "hc-000000000002", "hc-000000000001"]
