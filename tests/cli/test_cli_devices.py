"""``device list|show|label`` against a real gRPC server with a canned AdminService."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


def _device(**labels: str) -> pb.Device:
    return pb.Device(
        id="d-1", name="cam-1", labels=labels or {"site": "berlin"},
        hardware=pb.HardwareProfile(
            arch="aarch64", cpu_cores=4, ram_bytes=4 * 1024**3,
            interpreter=pb.InterpreterInfo(name="tflite-runtime", version="2.14.0")),
        hardware_class=pb.HardwareClass(key="hc-0123456789ab",
                                        name="aarch64/tflite-runtime-2.14/4G/cpu"),
        last_seen=Timestamp(seconds=1714564800),
        models=[
            pb.DeviceModel(
                model="face",
                desired=pb.ModelRef(model="face", version="1.3.0", variant="full_int8",
                                    sha256="aa" * 32),
                active=pb.ModelRef(model="face", version="1.2.0", variant="float16",
                                   sha256="bb" * 32),
                state="downloading"),
            pb.DeviceModel(model="kws", desired=pb.ModelRef(model="kws", version="1",
                                                           variant="float32", sha256="cc" * 32)),
        ],
    )


def test_device_list_passes_the_selector_and_prints_one_json_document(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("ListDevices", pb.ListDevicesResponse(devices=[_device()]))
    result = cli("device", "list", "--selector", "site=berlin", "-o", "json")
    assert result.code == 0
    assert admin_server.service.requests["ListDevices"][0].selector == "site=berlin"
    (device,) = result.json()["devices"]
    assert (device["id"], device["last_seen"]) == ("d-1", "2024-05-01T12:00:00Z")


def test_device_list_table(cli: Runner, admin_server: Any) -> None:
    never_seen = pb.Device(id="d-2", name="cam-2")
    never_seen.revoked_at.FromSeconds(1714565000)
    admin_server.service.reply("ListDevices",
                               pb.ListDevicesResponse(devices=[_device(), never_seen]))
    lines = cli("device", "list").out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "LABELS", "ARCH", "CLASS", "INTERPRETER", "LAST",
                                "SEEN", "ACTIVE", "MODELS", "REVOKED"]
    assert lines[1].split() == ["d-1", "cam-1", "site=berlin", "aarch64",
                                "aarch64/tflite-runtime-2.14/4G/cpu", "tflite-runtime",
                                "2.14.0", "2024-05-01T12:00:00Z", "face:1.2.0/float16", "-"]
    assert lines[2].split() == ["d-2", "cam-2", "-", "-", "-", "-", "-", "-",
                                "2024-05-01T12:03:20Z"]


def test_device_show_json_has_desired_and_active_with_explicit_nulls(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("GetDevice", _device())
    result = cli("device", "show", "d-1", "-o", "json")
    assert result.code == 0
    assert admin_server.service.requests["GetDevice"][0].id == "d-1"
    doc = result.json()
    assert {"id", "name", "labels", "hardware", "last_seen", "models"} <= doc.keys()
    face, kws = doc["models"]
    assert face["desired"] == {"version": "1.3.0", "variant": "full_int8", "sha256": "aa" * 32}
    assert face["active"] == {"version": "1.2.0", "variant": "float16", "sha256": "bb" * 32}
    assert kws["active"] is None


def test_device_show_table(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetDevice", _device())
    out = cli("device", "show", "d-1").out
    assert "interpreter:      tflite-runtime 2.14.0" in out
    assert "ram:              4.0 GiB" in out
    model_rows = [line.split()
                  for line in out.split("models:\n")[1].split("\n\n")[0].splitlines()[1:]]
    assert model_rows == [["face", "1.3.0/full_int8", "1.2.0/float16", "downloading", "-"],
                          ["kws", "1/float32", "-", "-", "-"]]


def test_device_show_of_an_unknown_device_exits_5(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("GetDevice", grpc.StatusCode.NOT_FOUND, "no device d-9")
    result = cli("device", "show", "d-9")
    assert (result.code, result.out) == (5, "")
    assert "no device d-9" in result.err


def test_device_label_sends_set_and_remove_in_one_call(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("LabelDevice", _device(site="munich"))
    result = cli("device", "label", "d-1", "site=munich", "tier=", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["LabelDevice"][0]
    assert (request.id, dict(request.labels)) == ("d-1", {"site": "munich", "tier": ""})
    assert result.json()["labels"] == {"site": "munich"}


def test_device_label_with_a_key_given_twice_is_a_usage_error(
    cli: Runner, admin_server: Any
) -> None:
    result = cli("device", "label", "d-1", "site=a", "site=b")
    assert result.code == 2
    assert "label 'site' given twice" in result.err
    assert admin_server.service.calls("LabelDevice") == 0


def test_device_revoke_sends_the_id_and_shows_when(cli: Runner, admin_server: Any) -> None:
    revoked = _device()
    revoked.revoked_at.FromSeconds(1714565000)
    admin_server.service.reply("RevokeDevice", revoked)
    result = cli("device", "revoke", "d-1", "-o", "json")
    assert result.code == 0
    assert admin_server.service.requests["RevokeDevice"][0].id == "d-1"
    assert result.json()["revoked_at"] == "2024-05-01T12:03:20Z"
    assert "new enrollment token" in result.err
    admin_server.service.reply("GetDevice", revoked)
    shown = cli("device", "show", "d-1").out.splitlines()
    assert [line.split() for line in shown if line.startswith("revoked:")] == [
        ["revoked:", "2024-05-01T12:03:20Z"]]


def test_device_revoke_by_a_viewer_is_exit_4(cli: Runner, admin_server: Any) -> None:
    """Input tried: a viewer token asking to revoke a device (the server says PERMISSION_DENIED)."""
    admin_server.service.fail("RevokeDevice", grpc.StatusCode.PERMISSION_DENIED,
                              "RevokeDevice needs role operator or higher (token has viewer)")
    result = cli("device", "revoke", "d-1")
    assert (result.code, result.out) == (4, "")
    assert "needs role operator" in result.err


def _reported(device: pb.Device, *, truncated: bool = False) -> pb.Device:
    """``device`` as GetDevice answers it: with a finding on "face" and two variants' metrics."""
    device.models[0].finding.CopyFrom(pb.Finding(
        reason="probation_nonfinite", interpreter="tflite-runtime", interpreter_version="2.14.0",
        sample=-1, output="scores", observed=1.7976931348623157e308, limit=0.0))
    device.metrics.extend([
        pb.DeviceModelMetrics(model="face", version="1.2.0", variant="float16", windows=12,
                              inferences=1200, errors=3, nonfinite=0, latency_p50_ms=4.25,
                              latency_p95_ms=9.5, first_window_start=Timestamp(seconds=1714564000),
                              last_window_end=Timestamp(seconds=1714564800)),
        pb.DeviceModelMetrics(model="face", version="1.3.0", variant="full_int8", windows=1,
                              inferences=0, first_window_start=Timestamp(seconds=1714564790),
                              last_window_end=Timestamp(seconds=1714564800)),
    ])
    device.metrics_coverage.CopyFrom(pb.MetricsCoverage(
        windows_considered=13, truncated=truncated, max_windows=13 if truncated else 1000))
    return device


def test_device_show_json_has_the_metrics_list_and_each_models_finding(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("GetDevice", _reported(_device()))
    doc = cli("device", "show", "d-1", "-o", "json").json()
    assert {"id", "name", "labels", "hardware", "last_seen", "models", "metrics"} <= doc.keys()
    face, kws = doc["models"]
    assert face["finding"] == {"reason": "probation_nonfinite", "interpreter": "tflite-runtime",
                               "interpreter_version": "2.14.0", "sample": None,
                               "output": "scores", "observed": 1.7976931348623157e308,
                               "limit": 0.0}
    assert kws["finding"] is None
    f16, i8 = doc["metrics"]
    assert f16 == {"model": "face", "version": "1.2.0", "variant": "float16", "windows": 12,
                   "inferences": 1200, "errors": 3, "nonfinite": 0, "latency_p50_ms": 4.25,
                   "latency_p95_ms": 9.5, "first_window_start": "2024-05-01T11:46:40Z",
                   "last_window_end": "2024-05-01T12:00:00Z"}
    assert (i8["inferences"], i8["latency_p50_ms"], i8["latency_p95_ms"]) == (0, None, None)
    assert doc["metrics_coverage"] == {"windows_considered": 13, "truncated": False,
                                       "max_windows": 1000}


def test_device_show_table_has_metrics_received_and_findings(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("GetDevice", _reported(_device()))
    out = cli("device", "show", "d-1").out
    sections = {part.split(":\n", 1)[0]: part.split(":\n", 1)[1].splitlines()
                for part in out.split("\n\n")[1:]}
    assert list(sections) == ["models", "findings", "metrics received"]
    assert [line.split() for line in sections["findings"]] == [
        ["MODEL", "REASON", "INTERPRETER", "OBSERVED", "LIMIT", "SAMPLE", "OUTPUT"],
        ["face", "probation_nonfinite", "tflite-runtime", "2.14.0", "1.798e+308", "0", "-",
         "scores"]]
    assert [line.split() for line in sections["metrics received"]] == [
        ["MODEL", "VERSION", "VARIANT", "INFERENCES", "ERRORS", "NON-FINITE", "P50", "MS",
         "P95", "MS", "LAST", "WINDOW"],
        ["face", "1.2.0", "float16", "1200", "3", "0", "4.25", "9.5", "2024-05-01T12:00:00Z"],
        ["face", "1.3.0", "full_int8", "0", "0", "0", "-", "-", "2024-05-01T12:00:00Z"]]


def test_device_show_table_says_when_older_windows_were_left_out(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("GetDevice", _reported(_device(), truncated=True))
    out = cli("device", "show", "d-1").out
    assert out.rstrip().endswith(
        "(from the device's most recent 13 windows only: older ones are not counted; server "
        "setting device_metrics_max_windows is 13)")


def test_device_show_of_a_device_that_reported_nothing_says_what_to_do(
    cli: Runner, admin_server: Any
) -> None:
    """Input tried: a GetDevice answer with no metrics and no finding (coverage of 0 windows),
    and one from a server that sends no coverage at all."""
    quiet = _device()
    quiet.metrics_coverage.CopyFrom(pb.MetricsCoverage(max_windows=1000))
    admin_server.service.reply("GetDevice", quiet)
    out = cli("device", "show", "d-1").out
    assert "findings:" not in out
    assert out.rstrip().endswith(
        "metrics received:\n(none) no metrics received yet: a device reports a window of its "
        "inferences while it serves a model; see `edgefleet-agent status` on the device")
    assert cli("device", "show", "d-1", "-o", "json").json()["metrics"] == []
    admin_server.service.reply("GetDevice", _device())
    assert "(not told by this server" in cli("device", "show", "d-1").out
    assert cli("device", "show", "d-1", "-o", "json").json()["metrics"] is None


def test_device_list_json_leaves_metrics_null(cli: Runner, admin_server: Any) -> None:
    """ListDevices does not read windows: its devices say null, not an empty list."""
    admin_server.service.reply("ListDevices", pb.ListDevicesResponse(devices=[_device()]))
    (device,) = cli("device", "list", "-o", "json").json()["devices"]
    assert (device["metrics"], device["metrics_coverage"]) == (None, None)
    assert [m["finding"] for m in device["models"]] == [None, None]
