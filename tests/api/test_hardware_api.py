"""Hardware classes, per-device selection and learned compatibility over real gRPC: a version
with every variant kind, measured by the server's real worker, and devices of three classes.

The loop shown: a device reports that its desired variant disagreed with its golden samples;
the variant is marked for that device's class; the next device of that class is given another
variant (explain says why) while a device of another class still gets it; clearing the mark
gives it back."""

from __future__ import annotations

import grpc
import pytest

from controlplane import modelgen
from controlplane.config import Settings
from controlplane.registry.tflite import inspect_model
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push, wait_for, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")

MODEL = modelgen.build_cnn(seed=5)
GiB = 2**30


@pytest.fixture
def server_settings(server_settings: Settings) -> Settings:
    return server_settings.replace(variant_kinds=Settings().variant_kinds)


def _profile(arch: str, interp: str, version: str, ram: int, available: int,
             storage: int = 8 * GiB, delegates: tuple[str, ...] = ("xnnpack",)
             ) -> pb.HardwareProfile:
    return pb.HardwareProfile(arch=arch, cpu_cores=4, ram_bytes=ram, ram_available_bytes=available,
                              storage_free_bytes=storage, delegates=list(delegates),
                              interpreter=pb.InterpreterInfo(name=interp, version=version))


GATEWAY = _profile("x86_64", "ai-edge-litert", "2.3.0", 16 * GiB, 12 * GiB)
TINY = _profile("armv7l", "tflite-runtime", "2.14.0", 128 * 2**20, 40 * 1024)


def _desired(server: RunningServer, device_id: str) -> pb.ModelRef:
    admin, md = server.admin(), bearer(server.admin_token)

    def probe() -> pb.ModelRef | None:
        d = admin.GetDevice(pb.GetDeviceRequest(id=device_id), metadata=md)
        return d.models[0].desired if d.models and d.models[0].desired.sha256 else None

    return wait_for("the device's desired variant", probe)


def _explain(server: RunningServer, device_id: str, **kw: str) -> pb.Explanation:
    return server.admin().ExplainDevice(
        pb.ExplainDeviceRequest(device_id=device_id, model="cnn", version="1", **kw),
        metadata=bearer(server.admin_token))


def _rollout(server: RunningServer, selector: str) -> pb.Rollout:
    return server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="1", selector=selector),
        metadata=bearer(server.admin_token))


def test_a_variant_that_fails_on_one_class_is_avoided_on_the_next_device_of_that_class(
        server: RunningServer) -> None:
    push(server, "cnn", "1", MODEL)
    assert wait_ready(server, "cnn", "1").status == "ready"
    first, first_token = enroll(server, labels={"site": "a"}, hardware=GATEWAY)
    second, _ = enroll(server, labels={"site": "b"}, hardware=GATEWAY)
    other_class, _ = enroll(server, labels={"site": "c"}, hardware=_profile(
        "aarch64", "ai-edge-litert", "2.3.0", 4 * GiB, 3 * GiB, delegates=("xnnpack", "gpu")))

    before = _explain(server, second)
    assert before.chosen and len(before.variants) == 5
    assert before.hardware_class.name == "x86_64/ai-edge-litert-2.3/16G/cpu"

    _rollout(server, "site=a")
    ref = _desired(server, first)
    assert ref.variant == before.chosen   # what explain said is what the rollout gave
    finding = pb.Finding(reason="golden_mismatch", interpreter="ai-edge-litert",
                         interpreter_version="2.3.0", sample=1, output="scores",
                         observed=0.4, limit=0.01)
    ack = server.device().ReportStatus(pb.StatusReport(events=[pb.InstallEvent(
        ref=ref, state="incompatible", message="sample 1, output scores: off by 0.4",
        finding=finding)]), metadata=bearer(first_token))
    assert ack.accepted == 1

    marks = server.admin().ListIncompatibilities(
        pb.ListIncompatibilitiesRequest(model="cnn"), metadata=bearer(server.admin_token))
    (mark,) = marks.incompatibilities
    assert (mark.variant, mark.hardware_class.key, mark.device_id, mark.reports) == (
        ref.variant, before.hardware_class.key, first, 1)
    assert mark.finding.reason == "golden_mismatch" and "off by 0.4" in mark.reason

    after = _explain(server, second)
    assert after.chosen and after.chosen != ref.variant
    marked = next(v for v in after.variants if v.kind == ref.variant)
    assert not marked.eligible
    assert any("marked incompatible with class" in r for r in marked.reasons)
    _rollout(server, "site=b")
    assert _desired(server, second).variant == after.chosen
    # Another class learned nothing from it.
    assert _explain(server, other_class).chosen == ref.variant

    cleared = server.admin().ClearIncompatibility(pb.ClearIncompatibilityRequest(
        model="cnn", version="1", variant=ref.variant,
        hardware_class=before.hardware_class.key), metadata=bearer(server.admin_token))
    assert cleared.cleared == 1
    assert _explain(server, second).chosen == ref.variant
    with pytest.raises(grpc.RpcError) as err:
        server.admin().ClearIncompatibility(pb.ClearIncompatibilityRequest(
            model="cnn", version="1", variant=ref.variant), metadata=bearer(server.admin_token))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_device_nothing_fits_is_put_in_no_compatible_variant_with_the_reasons(
        server: RunningServer) -> None:
    push(server, "cnn", "1", MODEL)
    wait_ready(server, "cnn", "1")
    tiny, _ = enroll(server, labels={"site": "tiny"}, hardware=TINY)
    explained = _explain(server, tiny)
    assert explained.chosen == ""
    assert not any(v.eligible for v in explained.variants)
    ready = [v for v in explained.variants if not any("not ready" in r for r in v.reasons)]
    assert ready and all(any("loaded" in r for r in v.reasons) for v in ready)
    assert explained.reason.startswith("no variant this device can run")

    rollout = _rollout(server, "site=tiny")

    def settled() -> pb.Rollout | None:
        r = server.admin().GetRollout(pb.GetRolloutRequest(id=rollout.id),
                                      metadata=bearer(server.admin_token))
        return r if r.state not in ("pending", "running") else None

    done = wait_for("the rollout to finish", settled)
    assert done.waves[0].no_compatible == 1 and done.waves[0].failed == 0
    (why,) = done.failed_devices
    assert (why.device_id, why.state) == (tiny, "no_compatible_variant")
    assert "loaded" in why.message


def test_preferences_classes_and_selectors_over_hardware(server: RunningServer) -> None:
    push(server, "cnn", "1", MODEL)
    mv = wait_ready(server, "cnn", "1")
    gateway, gateway_token = enroll(server, name="gw", hardware=GATEWAY)
    enroll(server, name="gw2", hardware=GATEWAY)
    # The same profile again changes nothing; an Edge TPU plugged in is a new class, and both
    # profiles stay in the device's history, newest first.
    for delegates in (("xnnpack",), ("xnnpack", "edgetpu")):
        changed = pb.HardwareProfile()
        changed.CopyFrom(GATEWAY)
        del changed.delegates[:]
        changed.delegates.extend(delegates)
        server.device().Sync(pb.SyncRequest(hardware=changed), metadata=bearer(gateway_token))
    shown = server.admin().GetDevice(pb.GetDeviceRequest(id=gateway),
                                     metadata=bearer(server.admin_token))
    assert shown.hardware_class.name == "x86_64/ai-edge-litert-2.3/16G/edgetpu"
    assert [c.hardware_class.name for c in shown.hardware_history] == [
        "x86_64/ai-edge-litert-2.3/16G/edgetpu", "x86_64/ai-edge-litert-2.3/16G/cpu"]
    assert list(shown.hardware_history[0].profile.delegates) == ["xnnpack", "edgetpu"]
    server.device().Sync(pb.SyncRequest(hardware=GATEWAY), metadata=bearer(gateway_token))
    enroll(server, name="tiny", hardware=TINY)
    sizes = {v.kind: v.size for v in mv.variants if v.status == "ready"}
    by_size = _explain(server, gateway, prefer="size")
    assert sizes[by_size.chosen] == min(sizes.values())
    assert by_size.prefer == "size"
    forced = _explain(server, gateway, variant="float16")
    assert forced.chosen == "float16"

    classes = server.admin().ListHardwareClasses(pb.ListHardwareClassesRequest(),
                                                 metadata=bearer(server.admin_token)).classes
    assert [(c.name, c.devices) for c in classes] == [
        ("x86_64/ai-edge-litert-2.3/16G/cpu", 2), ("armv7l/tflite-runtime-2.14/128M/cpu", 1)]

    def names(selector: str) -> list[str]:
        return sorted(d.name for d in server.admin().ListDevices(
            pb.ListDevicesRequest(selector=selector), metadata=bearer(server.admin_token)).devices)

    assert names("ram_bytes>=1Gi") == ["gw", "gw2"]
    assert names("arch=armv7l,interpreter=tflite-runtime") == ["tiny"]
    assert names(f"class={classes[1].key}") == ["tiny"]
    devices = server.admin().ListDevices(pb.ListDevicesRequest(selector="name=gw"),
                                         metadata=bearer(server.admin_token)).devices
    assert devices == []   # "name" is a label here, and no device has it

    for request, code in (
            (pb.ExplainDeviceRequest(device_id=gateway, model="cnn", version="1",
                                     prefer="speed"), grpc.StatusCode.INVALID_ARGUMENT),
            (pb.ExplainDeviceRequest(device_id="0" * 36, model="cnn", version="1"),
             grpc.StatusCode.NOT_FOUND),
            (pb.ExplainDeviceRequest(device_id=gateway, model="cnn", version="9"),
             grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.RpcError) as err:
            server.admin().ExplainDevice(request, metadata=bearer(server.admin_token))
        assert err.value.code() == code, request
    with pytest.raises(grpc.RpcError) as err:
        server.admin().ListDevices(pb.ListDevicesRequest(selector="ram_bytes>=lots"),
                                   metadata=bearer(server.admin_token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert inspect_model(MODEL).arena_bytes > 0


def _slow_window(ref: pb.ModelRef, count: int, slow_ms: float) -> pb.MetricWindow:
    """``count`` inferences, every one between 20 ms and ``slow_ms``, one of them an error."""
    import uuid

    return pb.MetricWindow(window_id=str(uuid.uuid4()), ref=ref, count=count, errors=1,
                           bucket_bounds_ms=[1.0, 20.0], bucket_counts=[0, 0, count],
                           latency_sum_ms=slow_ms * count, latency_max_ms=slow_ms)


def test_latency_reported_by_a_class_steers_its_next_devices_and_shows_by_class(
        server: RunningServer) -> None:
    """Devices of the gateway class report the variant they were given as slow (every
    inference over 20 ms, where the server measured a fraction of a millisecond): once
    ``selection_min_class_inferences`` arrived, the next gateway gets another variant, and
    ``GetModel(by_class)`` shows the class's figures."""
    push(server, "cnn", "1", MODEL)
    wait_ready(server, "cnn", "1")
    first, token = enroll(server, labels={"site": "a"}, hardware=GATEWAY)
    second, _ = enroll(server, labels={"site": "b"}, hardware=GATEWAY)
    _rollout(server, "site=a")
    ref = _desired(server, first)
    needed = server.settings.selection_min_class_inferences
    ack = server.device().ReportMetrics(pb.MetricsReport(windows=[
        _slow_window(ref, needed // 2, 40.0), _slow_window(ref, needed - needed // 2, 40.0)]),
        metadata=bearer(token))
    assert ack.accepted == 2

    after = _explain(server, second)
    assert after.chosen and after.chosen != ref.variant
    slow = next(v for v in after.variants if v.kind == ref.variant)
    assert slow.eligible and slow.latency_ms > 20.0
    assert f"reported by class {after.hardware_class.key} ({needed} inferences)" \
        in slow.latency_source

    mv = server.admin().GetModel(pb.GetModelRequest(name="cnn", version="1", by_class=True),
                                 metadata=bearer(server.admin_token))
    (row,) = mv.class_metrics
    assert (row.hardware_class.name, row.variant, row.devices, row.windows, row.inferences,
            row.errors) == ("x86_64/ai-edge-litert-2.3/16G/cpu", ref.variant, 1, 2, needed, 2)
    assert 20.0 < row.latency_p50_ms <= row.latency_p95_ms <= 40.0
    assert mv.class_metrics_coverage.windows_considered == 2
    plain = server.admin().GetModel(pb.GetModelRequest(name="cnn", version="1"),
                                    metadata=bearer(server.admin_token))
    assert not plain.class_metrics and not plain.HasField("class_metrics_coverage")
