"""Bad input over a real socket (L4, M2): bytes that are not a message, NUL in strings and ids,
strings and counts past their settings, figures no column can hold. Each is answered
INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED with a short message, never INTERNAL or
UNKNOWN, on SQLite and on PostgreSQL (which refuses NUL in text and integers past 2^63 - 1)."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.validation import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push_requests

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
ADMIN, DEVICE = "/edgefleet.v1.AdminService/", "/edgefleet.v1.DeviceService/"
# A string field 1 holding two bytes that are not UTF-8 (proto3 strings must be).
NOT_UTF8 = b"\x0a\x02\xff\xfe"


def _refusal(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    error: Any = err.value
    assert len(error.details() or "") < 500, "a refusal quotes at most a little of the input"
    return error


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The server logs nothing at ERROR (no "Exception deserializing request", no bug)."""
    with caplog.at_level(logging.ERROR):
        yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _raw(server: RunningServer, method: str, data: bytes, token: str | None,
         kind: str = "unary_unary") -> Any:
    """Send hand-made bytes to ``method`` (a generic channel method: no serializer)."""
    call = getattr(server.channel, kind)(method, request_serializer=None,
                                         response_deserializer=None)
    request: Any = iter([data]) if kind.startswith("stream") else data
    result = call(request, metadata=bearer(token) if token else None, timeout=10)
    return list(result) if kind.endswith("_stream") else result


# -- bytes that do not parse ------------------------------------------------------------------


def test_a_unary_request_that_is_not_utf8_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: raw bytes with a string field holding 0xff 0xfe (GetDevice, ListDevices,
    GetModel and CreateRollout: field 1; ReportMetrics and ReportStatus: the first item's ref
    model; Sync: the first active ref's model; Enroll: the name), each with the credential
    its method asks for."""
    enrollment = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(),
                                                      metadata=bearer(server.admin_token)).token
    _, device = enroll(server)
    in_item_ref = b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe"
    for method, token, data in [
        (ADMIN + "GetDevice", server.admin_token, NOT_UTF8),
        (ADMIN + "ListDevices", server.admin_token, NOT_UTF8),
        (ADMIN + "GetModel", server.admin_token, NOT_UTF8),
        (ADMIN + "CreateRollout", server.admin_token, NOT_UTF8),
        (DEVICE + "Enroll", enrollment, NOT_UTF8),
        (DEVICE + "ReportMetrics", device, in_item_ref),
        (DEVICE + "ReportStatus", device, in_item_ref),
        (DEVICE + "Sync", device, b"\x12\x04\x0a\x02\xff\xfe"),
    ]:
        error = _refusal(lambda m=method, t=token, d=data: _raw(server, m, d, t))
        assert error.code() == INVALID, method
        assert "not UTF-8" in error.details()


def test_truncated_bytes_are_invalid_argument(server: RunningServer, no_tracebacks: None) -> None:
    """Input tried: GetDevice bytes announcing a 16-byte id and carrying 2."""
    error = _refusal(lambda: _raw(server, ADMIN + "GetDevice", b"\x0a\x10ab", server.admin_token))
    assert error.code() == INVALID


def test_a_request_that_does_not_parse_and_has_no_token_is_unauthenticated(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: GetDevice bytes that are not UTF-8, without a bearer token."""
    error = _refusal(lambda: _raw(server, ADMIN + "GetDevice", NOT_UTF8, None))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_push_whose_stream_holds_a_message_that_does_not_parse_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: PushModel with a good header, then a message whose header name is not
    UTF-8; nothing is stored (ListModels stays empty)."""
    header = next(push_requests("m", "1.0.0", b"x" * 10)).SerializeToString()
    call = server.channel.stream_unary(ADMIN + "PushModel", request_serializer=None,
                                       response_deserializer=None)
    error = _refusal(lambda: call(iter([header, b"\x0a\x04\x0a\x02\xff\xfe"]),
                                  metadata=bearer(server.admin_token), timeout=10))
    assert error.code() == INVALID
    assert not server.admin().ListModels(pb.ListModelsRequest(),
                                         metadata=bearer(server.admin_token)).models


def test_a_download_request_that_does_not_parse_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: DownloadArtifact (a response stream) with a sha256 that is not UTF-8."""
    _, token = enroll(server)
    error = _refusal(lambda: _raw(server, DEVICE + "DownloadArtifact", NOT_UTF8, token,
                                  "unary_stream"))
    assert error.code() == INVALID


def test_public_health_and_reflection_answer_bytes_that_do_not_parse_with_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: Health.Check, Health.Watch and ServerReflectionInfo with field 1 (a string)
    holding bytes that are not UTF-8, without a token (they were answered UNKNOWN,
    "Unexpected DecodeError", before); a well-formed Check still answers."""
    for method, kind in [
        ("/grpc.health.v1.Health/Check", "unary_unary"),
        ("/grpc.health.v1.Health/Watch", "unary_stream"),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "stream_stream"),
    ]:
        error = _refusal(lambda m=method, k=kind: _raw(server, m, NOT_UTF8, None, k))
        assert error.code() == INVALID, method
    assert _raw(server, "/grpc.health.v1.Health/Check", b"", None) == b"\x08\x01"  # SERVING


# -- NUL and malformed ids --------------------------------------------------------------------


def _admin_calls(server: RunningServer) -> dict[str, Callable[[str], Any]]:
    admin, md = server.admin(), bearer(server.admin_token)
    return {
        "GetDevice": lambda v: admin.GetDevice(pb.GetDeviceRequest(id=v), metadata=md),
        "RevokeDevice": lambda v: admin.RevokeDevice(pb.RevokeDeviceRequest(id=v), metadata=md),
        "LabelDevice": lambda v: admin.LabelDevice(
            pb.LabelDeviceRequest(id=v, labels={"a": "b"}), metadata=md),
        "GetRollout": lambda v: admin.GetRollout(pb.GetRolloutRequest(id=v), metadata=md),
        "ChangeRollout": lambda v: admin.ChangeRollout(
            pb.ChangeRolloutRequest(id=v, action="pause"), metadata=md),
        "RevokeToken": lambda v: admin.RevokeToken(pb.RevokeTokenRequest(id=v), metadata=md),
        "RevokeEnrollmentToken": lambda v: admin.RevokeEnrollmentToken(
            pb.RevokeEnrollmentTokenRequest(id=v), metadata=md),
        "GetModel name": lambda v: admin.GetModel(pb.GetModelRequest(name=v), metadata=md),
        "GetModel version": lambda v: admin.GetModel(
            pb.GetModelRequest(name="m", version=v), metadata=md),
    }


def test_a_malformed_id_or_name_is_not_found_or_invalid_never_a_database_error(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: NUL alone, NUL ending a 16-character token id and a 36-character UUID, a
    megabyte of 'x', and a plain unknown word, as the id (or model name, or version) of
    GetDevice, RevokeDevice, LabelDevice, GetRollout, ChangeRollout, RevokeToken,
    RevokeEnrollmentToken and GetModel."""
    values = ["\x00", "0" * 15 + "\x00", str(uuid.uuid4())[:35] + "\x00", "x" * 1_000_000,
              "no-such-thing"]
    for name, call in _admin_calls(server).items():
        for value in values:
            error = _refusal(lambda c=call, v=value: c(v))
            assert error.code() in (INVALID, NOT_FOUND), (name, value[:40])


def test_nul_or_an_oversized_key_in_a_label_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: a label value holding NUL, a label key that is NUL, a 1000-character key;
    each through LabelDevice, CreateEnrollmentToken and Enroll."""
    device_id, _ = enroll(server)
    admin, md = server.admin(), bearer(server.admin_token)
    for labels in [{"site": "a\x00"}, {"\x00": "a"}, {"k" * 1000: "v"}]:
        token = admin.CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(), metadata=md).token
        for call in [
            lambda lab=labels: admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels=lab),
                                                 metadata=md),
            lambda lab=labels: admin.CreateEnrollmentToken(
                pb.CreateEnrollmentTokenRequest(labels=lab), metadata=md),
            lambda lab=labels, t=token: server.device().Enroll(
                pb.EnrollRequest(name="n", labels=lab), metadata=bearer(t)),
        ]:
            assert _refusal(call).code() == INVALID, labels


def test_a_device_name_with_nul_a_newline_or_past_its_bound_is_refused_and_spends_no_use(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: Enroll named "cam\\0", "cam\\nsite=evil" and 201 characters (it was cut to
    200 silently before), with a one-use token; the token then still enrolls a device named
    with 200 characters."""
    admin, md = server.admin(), bearer(server.admin_token)
    token = admin.CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(uses=1), metadata=md).token
    for name, words in [("cam\x00", "control character"),
                        ("cam\nsite=evil", "control character"),
                        ("c" * 201, "max_device_name_chars")]:
        error = _refusal(lambda n=name: server.device().Enroll(pb.EnrollRequest(name=n),
                                                               metadata=bearer(token)))
        assert error.code() == INVALID and words in error.details()
    assert server.device().Enroll(pb.EnrollRequest(name="c" * 200),
                                  metadata=bearer(token)).device_id
    listed = admin.ListDevices(pb.ListDevicesRequest(), metadata=md).devices
    assert [d.name for d in listed] == ["c" * 200]


def test_a_hardware_profile_with_nul_or_past_its_bounds_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: Sync and Enroll with an arch holding NUL, a CPU flag that is NUL, an
    interpreter version of 33 characters, a profile of 20 KB (max_hardware_profile_bytes
    16 KiB)."""
    _, token = enroll(server)
    enrollment = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(),
                                                      metadata=bearer(server.admin_token)).token
    for hardware in [
        pb.HardwareProfile(arch="x86\x00"), pb.HardwareProfile(cpu_flags=["sse", "\x00"]),
        pb.HardwareProfile(interpreter=pb.InterpreterInfo(name="tflite-runtime",
                                                          version="9" * 33)),
        pb.HardwareProfile(cpu_model="c" * 20_000),
    ]:
        for call in [
            lambda hw=hardware: server.device().Sync(pb.SyncRequest(hardware=hw),
                                                     metadata=bearer(token)),
            lambda hw=hardware: server.device().Enroll(pb.EnrollRequest(name="n", hardware=hw),
                                                       metadata=bearer(enrollment)),
        ]:
            assert _refusal(call).code() == INVALID, hardware


def test_a_token_description_with_nul_or_past_its_bound_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: CreateToken with a description holding NUL, and one of 201 characters
    (max_description_chars 200; it was cut to 200 silently before)."""
    for description in ("ci\x00", "d" * 201):
        error = _refusal(lambda d=description: server.admin().CreateToken(
            pb.CreateTokenRequest(role="viewer", description=d),
            metadata=bearer(server.admin_token)))
        assert error.code() == INVALID and "max_description_chars" in error.details()


# -- counts and lengths past their settings ---------------------------------------------------


def _labels(n: int, prefix: str = "k") -> dict[str, str]:
    return {f"{prefix}{i}": "v" for i in range(n)}


def test_more_labels_than_max_labels_are_resource_exhausted(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: LabelDevice and CreateEnrollmentToken with 65 labels (max_labels 64);
    LabelDevice adding 34 labels to a device holding 31; Enroll with 40 labels of its own on a
    token carrying 30 (the merged device would hold 70), whose use is not spent."""
    admin, md = server.admin(), bearer(server.admin_token)
    device_id, _ = enroll(server, labels=_labels(31, "t"))
    for call in (
        lambda: admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels=_labels(65)),
                                  metadata=md),
        lambda: admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels=_labels(34)),
                                  metadata=md),
        lambda: admin.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(labels=_labels(65)), metadata=md),
    ):
        error = _refusal(call)
        assert error.code() == EXHAUSTED and "max_labels" in error.details()
    token = admin.CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(labels=_labels(30, "t"), uses=1), metadata=md).token
    error = _refusal(lambda: server.device().Enroll(
        pb.EnrollRequest(name="n", labels=_labels(40)), metadata=bearer(token)))
    assert error.code() == EXHAUSTED and "max_labels" in error.details()
    assert server.device().Enroll(pb.EnrollRequest(name="n", labels=_labels(34)),
                                  metadata=bearer(token)).device_id  # the use was kept


def test_a_selector_past_max_selector_chars_is_invalid_argument(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: ListDevices and CreateRollout with a selector of 5,000 characters of
    padding around site=a (max_selector_chars 4096)."""
    selector = " " * 4990 + "site=a"
    admin, md = server.admin(), bearer(server.admin_token)
    for call in (lambda: admin.ListDevices(pb.ListDevicesRequest(selector=selector), metadata=md),
                 lambda: admin.CreateRollout(pb.CreateRolloutRequest(
                     model="m", version="1", selector=selector), metadata=md)):
        error = _refusal(call)
        assert error.code() == INVALID and "max_selector_chars" in error.details()


def test_an_unknown_rollout_action_of_a_megabyte_is_a_short_refusal(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: ChangeRollout with an action of 1,000,000 characters."""
    error = _refusal(lambda: server.admin().ChangeRollout(
        pb.ChangeRolloutRequest(id=str(uuid.uuid4()), action="p" * 1_000_000),
        metadata=bearer(server.admin_token)))
    assert error.code() == INVALID and "unknown action" in error.details()


# -- reports ----------------------------------------------------------------------------------


def _window(**changes: Any) -> pb.MetricWindow:
    w = pb.MetricWindow(
        window_id=str(uuid.uuid4()),
        ref=pb.ModelRef(model="m", version="1", variant="float32", sha256="a" * 64),
        start=Timestamp(seconds=1_700_000_000), end=Timestamp(seconds=1_700_000_010),
        count=10, errors=1, bucket_bounds_ms=[1.0, 5.0], bucket_counts=[6, 3, 1],
        latency_sum_ms=20.0, latency_max_ms=7.5)
    for name, value in changes.items():
        target = getattr(w, name)
        if isinstance(value, Timestamp):
            target.CopyFrom(value)
        elif isinstance(value, list):
            del target[:]
            target.extend(value)
        else:
            setattr(w, name, value)
    return w


def test_windows_no_column_can_hold_are_rejected_one_by_one_and_the_rest_stored(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: one report holding a good window and windows with count 2^63 (PostgreSQL
    BIGINT overflows), bucket counts of 2^64 - 1, NaN latency_sum_ms, +inf latency_max_ms, a
    NaN bucket bound, start beyond year 9999, end before year 1, nanos 1e9, end before start,
    unsorted bounds, counts not summing, errors > count, NUL as the window id."""
    bad = [
        _window(count=2**63, bucket_counts=[2**63, 0, 0]),
        _window(count=2**64 - 1, errors=0, bucket_counts=[2**64 - 1, 0, 0]),
        _window(latency_sum_ms=math.nan), _window(latency_max_ms=math.inf),
        _window(bucket_bounds_ms=[1.0, math.nan]),
        _window(start=Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1)),
        _window(end=Timestamp(seconds=MIN_TIMESTAMP_SECONDS - 1)),
        _window(end=Timestamp(seconds=1_700_000_010, nanos=1_000_000_000)),
        _window(start=Timestamp(seconds=1_700_000_020)),
        _window(bucket_bounds_ms=[5.0, 1.0]), _window(bucket_counts=[1, 1, 1]),
        _window(errors=11), _window(window_id="\x00"),
    ]
    good = _window()
    _, token = enroll(server)
    ack = server.device().ReportMetrics(pb.MetricsReport(windows=[*bad, good]),
                                        metadata=bearer(token))
    assert (ack.accepted, ack.duplicates, ack.rejected) == (1, 0, len(bad))
    assert [r.id for r in ack.rejections] == [w.window_id for w in bad]
    again = server.device().ReportMetrics(pb.MetricsReport(windows=[good]),
                                          metadata=bearer(token))
    assert (again.accepted, again.duplicates) == (0, 1)  # the good one was stored


def test_a_report_of_5000_windows_is_refused_whole_naming_the_setting(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: ReportMetrics with 5,000 good windows (max_windows_per_report 1,000; the
    first 1,000 were kept silently before)."""
    _, token = enroll(server)
    windows = [_window() for _ in range(5000)]
    error = _refusal(lambda: server.device().ReportMetrics(pb.MetricsReport(windows=windows),
                                                           metadata=bearer(token)))
    assert error.code() == EXHAUSTED and "max_windows_per_report" in error.details()
    ack = server.device().ReportMetrics(pb.MetricsReport(windows=windows[:1000]),
                                        metadata=bearer(token))
    assert (ack.accepted, ack.duplicates) == (1000, 0)  # nothing of the refused one was kept


def test_events_with_bad_times_or_nul_are_rejected_by_index_and_the_rest_stored(
    server: RunningServer, no_tracebacks: None
) -> None:
    """Input tried: ReportStatus with a good event, one at a time beyond year 9999, one with
    negative nanos, one whose model is NUL, and one whose message holds NUL and 5,000
    characters (kept, cut with a marker), plus 101 events in another report."""
    ref = pb.ModelRef(model="m", version="1", variant="float32", sha256="a" * 64)
    events = [
        pb.InstallEvent(ref=ref, state="downloading", message="ok"),
        pb.InstallEvent(ref=ref, state="active", at=Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1)),
        pb.InstallEvent(ref=ref, state="active", at=Timestamp(seconds=1, nanos=-1)),
        pb.InstallEvent(ref=pb.ModelRef(model="\x00", version="1", variant="float32",
                                        sha256="a" * 64), state="active"),
        pb.InstallEvent(ref=ref, state="failed", message="\x00" + "x" * 5000),
    ]
    _, token = enroll(server)
    ack = server.device().ReportStatus(pb.StatusReport(events=events), metadata=bearer(token))
    assert (ack.accepted, ack.rejected) == (2, 3)
    assert [r.id for r in ack.rejections] == ["1", "2", "3"]
    error = _refusal(lambda: server.device().ReportStatus(
        pb.StatusReport(events=events[:1] * 101), metadata=bearer(token)))
    assert error.code() == EXHAUSTED and "max_events_per_report" in error.details()
