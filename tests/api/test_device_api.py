"""DeviceService over a real socket: sync, metric de-duplication, status reports, bad reports."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import grpc
import pytest

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import abort_once_started, enroll, push, wait_for, wait_ready


def _window(window_id: str, count: int = 10) -> pb.MetricWindow:
    return pb.MetricWindow(
        window_id=window_id, ref=pb.ModelRef(model="m", version="1", variant="float32",
                                             sha256="a" * 64),
        count=count, errors=1, bucket_bounds_ms=[1.0, 5.0], bucket_counts=[6, 3, 1],
        latency_sum_ms=20.0, latency_max_ms=7.5)


def test_metric_windows_are_stored_once_per_device(server: RunningServer) -> None:
    """Input tried: the same window ids re-sent, and another device reusing them."""
    _, a = enroll(server, name="a")
    _, b = enroll(server, name="b")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    report = pb.MetricsReport(windows=[_window(i) for i in ids])
    first = server.device().ReportMetrics(report, metadata=bearer(a))
    assert (first.accepted, first.duplicates) == (3, 0)
    again = server.device().ReportMetrics(report, metadata=bearer(a))
    assert (again.accepted, again.duplicates) == (0, 3)
    other = server.device().ReportMetrics(report, metadata=bearer(b))
    assert (other.accepted, other.duplicates) == (3, 0)


@pytest.mark.parametrize(
    ("case", "window"),
    [
        ("bucket_counts_wrong_length", pb.MetricWindow(window_id=str(uuid.uuid4()),
                                                       bucket_bounds_ms=[1.0], bucket_counts=[1])),
        ("missing_window_id", pb.MetricWindow(bucket_counts=[0])),
    ],
)
def test_a_malformed_metric_window_is_rejected_alone_in_the_acknowledgement(
    server: RunningServer, case: str, window: pb.MetricWindow
) -> None:
    """Input tried: a histogram whose counts do not fit its bounds; a window without an id;
    each beside a good window, which is stored."""
    _, token = enroll(server)
    good = _window(str(uuid.uuid4()))
    ack = server.device().ReportMetrics(pb.MetricsReport(windows=[window, good]),
                                        metadata=bearer(token))
    assert (ack.accepted, ack.rejected) == (1, 1)
    assert [r.id for r in ack.rejections] == [window.window_id]
    assert ack.rejections[0].reason


def test_sync_updates_hardware_and_last_seen_in_batches(server: RunningServer) -> None:
    device_id, token = enroll(server)
    resp = server.device().Sync(
        pb.SyncRequest(hardware=pb.HardwareProfile(arch="aarch64", cpu_cores=4,
                                                   delegates=["xnnpack", "edgetpu"])),
        metadata=bearer(token))
    assert resp.poll_interval_seconds == server.settings.poll_interval_seconds
    assert not resp.HasField("desired_state")

    def shown() -> pb.Device | None:
        d = server.admin().GetDevice(pb.GetDeviceRequest(id=device_id),
                                     metadata=bearer(server.admin_token))
        return d if d.hardware.arch == "aarch64" else None

    dev = wait_for("the new hardware profile", shown)
    assert list(dev.hardware.delegates) == ["xnnpack", "edgetpu"]
    assert dev.last_seen.seconds > 0


def test_device_labels_and_selector(server: RunningServer) -> None:
    device_id, _ = enroll(server, labels={"site": "berlin"})
    enroll(server, labels={"site": "paris"})
    admin = server.admin()
    md = bearer(server.admin_token)
    admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels={"tier": "canary"}), metadata=md)
    got = admin.ListDevices(pb.ListDevicesRequest(selector="site=berlin,tier=canary"), metadata=md)
    assert [d.id for d in got.devices] == [device_id]
    admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels={"tier": ""}), metadata=md)
    assert admin.ListDevices(pb.ListDevicesRequest(selector="tier=canary"),
                             metadata=md).devices == []
    with pytest.raises(grpc.RpcError) as err:
        admin.GetDevice(pb.GetDeviceRequest(id="no-such-device"), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_claimed_sequence_above_the_servers_is_refused_and_changes_nothing(
    server: RunningServer,
) -> None:
    """Input tried (L2): a Sync claiming known_sequence 2^62, and one claiming a little more than
    the device's real sequence (as a device would after the database was restored from a backup).
    Both are refused and change nothing: the device's own sequence still syncs, and the next
    change outnumbers anything it could hold (sequences are time-based)."""
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=11))
    wait_ready(server, "cnn", "1.0.0")
    push(server, "cnn", "2.0.0", modelgen.build_cnn(seed=12))
    wait_ready(server, "cnn", "2.0.0")
    device_id, token = enroll(server, labels={"site": "restored"})
    created = server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="1.0.0", selector="site=restored"),
        metadata=bearer(server.admin_token))

    def newer(than: int) -> pb.SyncResponse | None:
        r = server.device().Sync(pb.SyncRequest(known_sequence=than), metadata=bearer(token))
        return r if r.HasField("desired_state") else None

    first = json.loads(wait_for("the first desired state", lambda: newer(0)).desired_state.payload)
    for claim in (2**62, first["sequence"] + 10):
        with pytest.raises(grpc.RpcError) as err:
            server.device().Sync(pb.SyncRequest(known_sequence=claim), metadata=bearer(token))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "restored from a backup" in (err.value.details() or "")
    assert newer(first["sequence"]) is None    # nothing moved
    shown = server.admin().GetDevice(pb.GetDeviceRequest(id=device_id),
                                     metadata=bearer(server.admin_token))
    assert shown.desired_sequence == first["sequence"]
    abort_once_started(server, created.id)
    server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="2.0.0", selector="site=restored"),
        metadata=bearer(server.admin_token))
    second = json.loads(wait_for("the next desired state",
                                 lambda: newer(first["sequence"])).desired_state.payload)
    assert second["sequence"] > first["sequence"] + 10
    assert second["models"][0]["version"] == "2.0.0"


def test_an_impossible_known_sequence_is_invalid_argument(server: RunningServer) -> None:
    """Input tried: known_sequence 2**63 (beyond any sequence the database can hold)."""
    _, token = enroll(server)
    with pytest.raises(grpc.RpcError) as err:
        server.device().Sync(pb.SyncRequest(known_sequence=2**63), metadata=bearer(token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_device_holds_several_models_and_each_rollout_changes_only_its_own(
    server: RunningServer,
) -> None:
    """Desired state is per (device, model name): rolling out ``voice`` keeps ``cnn``, and a new
    ``cnn`` version replaces only the ``cnn`` entry."""
    for name, version, seed in (("cnn", "1.0.0", 1), ("voice", "1.0.0", 2), ("cnn", "2.0.0", 3)):
        push(server, name, version, modelgen.build_cnn(seed=seed))
        wait_ready(server, name, version)
    _, token = enroll(server, labels={"site": "multi"})
    seen = 0

    def roll_out_and_sync(name: str, version: str) -> dict[str, str]:
        nonlocal seen
        created = server.admin().CreateRollout(
            pb.CreateRolloutRequest(model=name, version=version, selector="site=multi"),
            metadata=bearer(server.admin_token))
        # This device never reports: abort leaves it the version and frees it for the next
        # rollout of the model.
        abort_once_started(server, created.id)

        def newer() -> pb.SyncResponse | None:
            r = server.device().Sync(pb.SyncRequest(known_sequence=seen), metadata=bearer(token))
            return r if r.HasField("desired_state") else None

        doc = json.loads(wait_for(f"{name}:{version} in the desired state",
                                  newer).desired_state.payload)
        assert doc["sequence"] > seen
        seen = doc["sequence"]
        return {m["model"]: m["version"] for m in doc["models"]}

    assert roll_out_and_sync("cnn", "1.0.0") == {"cnn": "1.0.0"}
    assert roll_out_and_sync("voice", "1.0.0") == {"cnn": "1.0.0", "voice": "1.0.0"}
    assert roll_out_and_sync("cnn", "2.0.0") == {"cnn": "2.0.0", "voice": "1.0.0"}


def test_get_device_shows_what_arrived_from_it_and_its_latest_finding(
    server: RunningServer,
) -> None:
    """Input tried, from a device given cnn:1.0.0 by a rollout: two windows of its variant
    with 3 and 0 non-finite outputs and one claiming 11 of 10 (refused); events with findings:
    probation_latency, then probation_nonfinite (the latest good one), then one whose finding
    has a NaN figure (dropped, noted in the message), then one about a variant it was not given.
    GetDevice sums the two windows (p50 and p95 of [12, 6, 2] in (0,1], (1,5], (5,7.5]: 10/12
    ms and 5 + 2.5/2 ms) and shows the probation_nonfinite finding; LabelDevice and
    RevokeDevice answer the same; ListDevices leaves the metrics out."""
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=21))
    wait_ready(server, "cnn", "1.0.0")
    device_id, token = enroll(server, labels={"site": "metrics"})
    admin, md = server.admin(), bearer(server.admin_token)
    admin.CreateRollout(pb.CreateRolloutRequest(model="cnn", version="1.0.0",
                                                selector="site=metrics"), metadata=md)

    def desired() -> pb.ModelRef | None:
        d = admin.GetDevice(pb.GetDeviceRequest(id=device_id), metadata=md)
        return d.models[0].desired if d.models and d.models[0].desired.sha256 else None

    ref = wait_for("the device's desired variant", desired)
    windows = [_window(str(uuid.uuid4())) for _ in range(3)]
    for w, nonfinite in zip(windows, (3, 0, 11), strict=True):
        w.ref.CopyFrom(ref)
        w.nonfinite = nonfinite
    ack = server.device().ReportMetrics(pb.MetricsReport(windows=windows), metadata=bearer(token))
    assert (ack.accepted, ack.rejected) == (2, 1)
    assert ack.rejections[0].id == windows[2].window_id
    assert "11 inferences with non-finite outputs" in ack.rejections[0].reason

    def finding(reason: str, **changes: Any) -> pb.Finding:
        return pb.Finding(**{"reason": reason, "interpreter": "tflite-runtime",
                             "interpreter_version": "2.14.0", "sample": -1, "output": "scores",
                             "observed": 1.7976931348623157e308, "limit": 0.0, **changes})

    other = pb.ModelRef(model="cnn", version="1.0.0", variant="float32", sha256="f" * 64)
    events = [
        pb.InstallEvent(ref=ref, state="rolled_back", message="p95 too high",
                        finding=finding("probation_latency", observed=40.0, limit=12.0)),
        pb.InstallEvent(ref=ref, state="rolled_back", message="NaN or Inf",
                        finding=finding("probation_nonfinite")),
        pb.InstallEvent(ref=ref, state="failed", message="load failed",
                        finding=finding("load_failed", observed=math.nan)),
        pb.InstallEvent(ref=other, state="failed", message="elsewhere",
                        finding=finding("golden_mismatch", sample=2)),
    ]
    ack = server.device().ReportStatus(pb.StatusReport(events=events), metadata=bearer(token))
    assert (ack.accepted, ack.rejected) == (4, 0)

    def check(d: pb.Device) -> None:
        (m,) = d.metrics
        assert (m.model, m.version, m.variant) == ("cnn", "1.0.0", ref.variant)
        assert (m.windows, m.inferences, m.errors, m.nonfinite) == (2, 20, 2, 3)
        assert m.latency_p50_ms == pytest.approx(10 / 12)
        assert m.latency_p95_ms == pytest.approx(6.25)
        assert m.last_window_end.seconds >= m.first_window_start.seconds > 0
        assert (d.metrics_coverage.windows_considered, d.metrics_coverage.truncated,
                d.metrics_coverage.max_windows) == (2, False, 1000)
        (dm,) = d.models
        assert dm.finding.reason == "probation_nonfinite"
        assert (dm.finding.observed, dm.finding.sample) == (1.7976931348623157e308, -1)
        assert dm.state == "failed"
        assert dm.message.startswith("load failed [finding dropped: ")
        assert "observed must be a finite number, got nan" in dm.message

    check(admin.GetDevice(pb.GetDeviceRequest(id=device_id), metadata=md))
    check(admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels={"tier": "a"}),
                            metadata=md))
    check(admin.RevokeDevice(pb.RevokeDeviceRequest(id=device_id), metadata=md))
    (listed,) = admin.ListDevices(pb.ListDevicesRequest(selector="site=metrics"),
                                  metadata=md).devices
    assert (list(listed.metrics), listed.HasField("metrics_coverage")) == ([], False)
    assert listed.models[0].HasField("finding") is False
