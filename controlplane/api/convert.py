"""ORM rows to protobuf messages (and the few proto-to-dict conversions requests need)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.audit.models import AuditEvent
from controlplane.auth.models import EnrollmentToken, OperatorToken
from controlplane.config import VARIANT_KINDS
from controlplane.fleet.classes import HardwareClass, hardware_class
from controlplane.fleet.explain import Explained
from controlplane.fleet.models import (
    Device,
    DeviceModel,
    HardwareProfileChange,
    VariantIncompatibility,
)
from controlplane.fleet.selection import Verdict
from controlplane.pages import PageAsk
from controlplane.registry.models import ModelVersion, Variant, VariantMeasurement
from controlplane.registry.push import PushHeader
from controlplane.rollouts.gates import Reading
from controlplane.rollouts.plan import Plan, PlanAsk, Window
from controlplane.rollouts.services import RolloutView
from controlplane.telemetry import services as telemetry
from controlplane.telemetry.class_metrics import ClassMetrics, ClassVariantMetrics
from controlplane.telemetry.device_metrics import DeviceMetrics, ModelMetrics
from controlplane.telemetry.device_view import DeviceView
from controlplane.validation import WireTime
from protos import edgefleet_pb2 as pb


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def wire_time(ts: Timestamp) -> WireTime:
    """A request's timestamp as it arrived; the domain checks it (``WireTime.to_datetime``)."""
    return WireTime(seconds=ts.seconds, nanos=ts.nanos)


def page_ask(request: Any) -> PageAsk:
    """The page a list request asks for (``page_size``, ``page_token``), unchecked."""
    return PageAsk(size=request.page_size, token=request.page_token)


def install_event(e: pb.InstallEvent) -> telemetry.Event:
    return telemetry.Event(model=e.ref.model, version=e.ref.version, variant=e.ref.variant,
                           sha256=e.ref.sha256, state=e.state, message=e.message,
                           at=wire_time(e.at),
                           finding=finding_dict(e.finding) if e.HasField("finding") else None)


def finding_dict(f: pb.Finding) -> dict[str, Any]:
    """A finding's fields as they arrived; the domain checks them (``telemetry.findings``)."""
    return {"reason": f.reason, "interpreter": f.interpreter,
            "interpreter_version": f.interpreter_version, "sample": f.sample,
            "output": f.output, "observed": f.observed, "limit": f.limit}


def metric_window(w: pb.MetricWindow) -> telemetry.Window:
    return telemetry.Window(
        window_id=w.window_id, model=w.ref.model, version=w.ref.version, variant=w.ref.variant,
        sha256=w.ref.sha256, start=wire_time(w.start), end=wire_time(w.end), count=w.count,
        errors=w.errors, nonfinite=w.nonfinite, bucket_bounds_ms=list(w.bucket_bounds_ms),
        bucket_counts=list(w.bucket_counts), latency_sum_ms=w.latency_sum_ms,
        latency_max_ms=w.latency_max_ms)


def report_ack(outcome: telemetry.Outcome) -> pb.ReportAck:
    return pb.ReportAck(
        accepted=outcome.accepted, duplicates=outcome.duplicates,
        rejected=len(outcome.rejections),
        rejections=[pb.Rejection(id=r.id, reason=r.reason) for r in outcome.rejections])


def tensor(d: dict[str, Any]) -> pb.TensorSpec:
    msg = pb.TensorSpec(name=d["name"], shape=list(d["shape"]), dtype=d["dtype"])
    q = d.get("quantization")
    if q:
        msg.quantization.CopyFrom(
            pb.Quantization(
                scale=q.get("scale", []),
                zero_point=q.get("zero_point", []),
                quantized_dimension=q.get("quantized_dimension", 0),
            )
        )
    return msg


def measurement(m: VariantMeasurement) -> pb.VariantMeasurement:
    return pb.VariantMeasurement(
        interpreter=m.interpreter, interpreter_version=m.interpreter_version, status=m.status,
        reason=m.reason, latency_p50_ms=m.latency_p50_ms or 0.0,
        latency_p95_ms=m.latency_p95_ms or 0.0, inputs_source=m.inputs_source,
        samples=m.samples,
        accuracy=[pb.OutputAccuracy(
            name=a["name"], max_abs_error=a["max_abs_error"], mean_abs_error=a["mean_abs_error"],
            cosine=a["cosine"], top1=a["top1"]) for a in m.accuracy],
    )


def variant(v: Variant) -> pb.Variant:
    msg = pb.Variant(
        kind=v.kind,
        sha256=v.artifact_sha256 or "",
        size=v.size or 0,
        status=v.status,
        latency_ms=v.latency_ms or 0.0,
        failure=v.failure,
        inputs=[tensor(t) for t in v.inputs],
        outputs=[tensor(t) for t in v.outputs],
        min_runtime=v.min_runtime,
        measured_with=v.measured_with,
        measurements=[measurement(m) for m in v.measurements],
        golden_sha256=v.golden_sha256 or "",
        golden_samples=v.golden_samples,
    )
    if v.manifest_payload is not None and v.manifest_signature is not None:
        msg.manifest.CopyFrom(
            pb.SignedDocument(
                payload=v.manifest_payload,
                signature=v.manifest_signature,
                key_id=v.manifest_key_id or "",
            )
        )
    return msg


def _kind_order(v: Variant) -> tuple[int, str]:
    """The reference first, then ever smaller kinds, as the pipeline makes them."""
    order = VARIANT_KINDS.index(v.kind) if v.kind in VARIANT_KINDS else len(VARIANT_KINDS)
    return order, v.kind


def model_version(mv: ModelVersion, by_class: ClassMetrics | None = None) -> pb.ModelVersion:
    """The version; with ``by_class``, what devices reported per hardware class as well."""
    return pb.ModelVersion(
        class_metrics=[class_variant_metrics(m) for m in by_class.rows] if by_class else [],
        class_metrics_coverage=metrics_coverage(by_class) if by_class else None,
        name=mv.model.name,
        version=mv.version,
        status=mv.status,
        failure=mv.failure,
        inputs=[tensor(t) for t in mv.inputs],
        outputs=[tensor(t) for t in mv.outputs],
        operators=mv.operators,
        min_runtime=mv.min_runtime,
        sha256=mv.source_sha256,
        size=mv.size,
        variants=[variant(v) for v in sorted(mv.variants, key=_kind_order)],
        created_at=timestamp(mv.created_at),
        tolerance=tolerance(mv.tolerance) if mv.tolerance else None,
        calibrated=mv.calibration_sha256 is not None,
    )


def hardware_to_dict(msg: pb.HardwareProfile) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def hardware(profile: dict[str, Any] | None) -> pb.HardwareProfile | None:
    if not profile:
        return None
    return json_format.ParseDict(profile, pb.HardwareProfile(), ignore_unknown_fields=True)


def _ref(name: str, v: Variant | None) -> pb.ModelRef | None:
    if v is None:
        return None
    return pb.ModelRef(
        model=name, version=v.model_version.version, variant=v.kind, sha256=v.artifact_sha256
    )


def finding(f: dict[str, Any]) -> pb.Finding:
    """A finding as stored (``telemetry.findings.FIELDS``)."""
    return pb.Finding(reason=f["reason"], interpreter=f["interpreter"],
                      interpreter_version=f["interpreter_version"], sample=f["sample"],
                      output=f["output"], observed=f["observed"], limit=f["limit"])


def device_model(dm: DeviceModel, latest: dict[str, Any] | None = None) -> pb.DeviceModel:
    return pb.DeviceModel(
        model=dm.model_name,
        desired=_ref(dm.model_name, dm.desired_variant),
        active=_ref(dm.model_name, dm.active_variant),
        state=dm.state,
        message=dm.message,
        finding=finding(latest) if latest is not None else None,
    )


def model_metrics(m: ModelMetrics) -> pb.DeviceModelMetrics:
    return pb.DeviceModelMetrics(
        model=m.model, version=m.version, variant=m.variant, windows=m.windows,
        inferences=m.inferences, errors=m.errors, nonfinite=m.nonfinite,
        latency_p50_ms=m.latency_p50_ms or 0.0, latency_p95_ms=m.latency_p95_ms or 0.0,
        first_window_start=timestamp(m.first_window_start),
        last_window_end=timestamp(m.last_window_end))


def class_variant_metrics(m: ClassVariantMetrics) -> pb.ClassVariantMetrics:
    return pb.ClassVariantMetrics(
        hardware_class=pb.HardwareClass(key=m.hardware_class, name=m.class_name),
        variant=m.variant, devices=m.devices, windows=m.windows, inferences=m.inferences,
        errors=m.errors, nonfinite=m.nonfinite, latency_p50_ms=m.latency_p50_ms,
        latency_p95_ms=m.latency_p95_ms)


def metrics_coverage(m: DeviceMetrics | ClassMetrics) -> pb.MetricsCoverage:
    return pb.MetricsCoverage(windows_considered=m.windows_considered, truncated=m.truncated,
                              max_windows=m.max_windows)


def device(d: Device, view: DeviceView | None = None) -> pb.Device:
    """The device as ListDevices lists it; with its ``view`` (``telemetry.device_view``), as
    GetDevice, LabelDevice and RevokeDevice answer it: findings and metrics as well."""
    findings = view.findings if view is not None else {}
    return pb.Device(
        id=d.id,
        name=d.name,
        labels={k: str(v) for k, v in (d.labels or {}).items()},
        hardware=hardware(d.hardware.profile if d.hardware else None),
        last_seen=timestamp(d.last_seen),
        models=[device_model(m, findings.get(m.model_name)) for m in d.models],
        enrolled_at=timestamp(d.enrolled_at),
        desired_sequence=d.desired_sequence,
        revoked_at=timestamp(d.revoked_at),
        metrics=[model_metrics(m) for m in view.metrics.models] if view is not None else [],
        metrics_coverage=metrics_coverage(view.metrics) if view is not None else None,
        hardware_class=(hardware_class_message(hardware_class(d.hardware.profile))
                        if d.hardware else None),
        hardware_history=[profile_change(c) for c in view.history] if view is not None else [],
    )


def profile_change(c: HardwareProfileChange) -> pb.ProfileChange:
    return pb.ProfileChange(recorded_at=timestamp(c.recorded_at),
                            hardware_class=hardware_class_message(hardware_class(c.profile)),
                            profile=hardware(c.profile))


def hardware_class_message(c: HardwareClass, devices: int = 0) -> pb.HardwareClass:
    return pb.HardwareClass(key=c.key, name=c.name, fields=dict(c.fields), devices=devices)


def explanation(e: Explained) -> pb.Explanation:
    sel = e.selection
    return pb.Explanation(
        device_id=e.device_id, model=e.model, version=e.version,
        hardware_class=hardware_class_message(e.hardware_class) if e.hardware_class else None,
        prefer=e.policy.prefer, chosen=sel.variant.kind if sel.variant else "",
        reason=sel.reason, variants=[verdict(v) for v in sel.verdicts],
        interpreter=e.facts.interpreter, interpreter_version=e.facts.interpreter_version,
        ram_available_bytes=e.facts.ram_available_bytes,
        storage_free_bytes=e.facts.storage_free_bytes)


def verdict(v: Verdict) -> pb.VariantVerdict:
    return pb.VariantVerdict(
        kind=v.kind, eligible=v.eligible, chosen=v.chosen, reasons=list(v.reasons),
        latency_ms=v.latency_ms, latency_source=v.latency_source,
        accuracy_cosine=v.accuracy_cosine, size_bytes=v.size_bytes, memory_bytes=v.memory_bytes)


def incompatibility(mark: VariantIncompatibility, v: Variant) -> pb.Incompatibility:
    return pb.Incompatibility(
        model=v.model_version.model.name, version=v.model_version.version, variant=v.kind,
        hardware_class=pb.HardwareClass(key=mark.hardware_class, name=mark.class_name),
        reason=mark.reason,
        finding=finding(mark.finding) if mark.finding else None, device_id=mark.device_id or "",
        reports=mark.reports, created_at=timestamp(mark.created_at),
        updated_at=timestamp(mark.updated_at))


def device_view(view: DeviceView) -> pb.Device:
    """The device with its findings and metrics (GetDevice, LabelDevice, RevokeDevice)."""
    return device(view.device, view)


def operator_token(t: OperatorToken) -> pb.OperatorToken:
    return pb.OperatorToken(
        id=t.id,
        role=t.role,
        description=t.description,
        created_at=timestamp(t.created_at),
        created_by=t.created_by or "",
        revoked_at=timestamp(t.revoked_at),
        expires_at=timestamp(t.expires_at),
    )


def rollout(v: RolloutView, model: str, version: str) -> pb.Rollout:
    r = v.rollout
    return pb.Rollout(
        failed_devices=[pb.FailedDevice(device_id=t.device_id, message=t.message[:2000],
                                        state=t.state)
                        for t in v.failed],
        prefer=r.prefer,
        id=r.id,
        model=model,
        version=version,
        selector=r.selector,
        variant=r.variant or "",
        state=r.state,
        waves=[
            pb.Wave(
                index=w.index, devices=w.devices, succeeded=w.succeeded, failed=w.failed,
                skipped=w.skipped, no_compatible=w.no_compatible, state=w.wave.state,
                queued=w.queued, in_progress=w.in_progress, held=w.held,
                timed_out=w.timed_out, rolled_back=w.rolled_back, target=w.target,
                started_at=timestamp(w.wave.started_at),
                completed_at=timestamp(w.wave.completed_at),
                bake_until=timestamp(w.wave.bake_until),
                finished_at=timestamp(w.wave.finished_at),
                gates=[gate_reading(Reading.from_json(g)) for g in w.wave.gates or []],
            )
            for w in v.waves
        ],
        created_at=timestamp(r.created_at),
        updated_at=timestamp(r.updated_at),
        created_by=r.created_by or "",
        plan=plan_message(v.plan),
        reason=r.reason,
        previous_version=v.previous_version or "",
    )


def gate_reading(g: Reading) -> pb.GateReading:
    return pb.GateReading(
        gate=g.gate, hardware_class=g.hardware_class, class_name=g.class_name,
        verdict=g.verdict, observed=g.observed, limit=g.limit, baseline=g.baseline,
        new_value=g.new_value, inferences=g.inferences,
        baseline_inferences=g.baseline_inferences, baseline_source=g.baseline_source,
        detail=g.detail)


def plan_message(p: Plan) -> pb.RolloutPlan:
    g = p.gates
    return pb.RolloutPlan(
        waves=list(p.waves), bake_seconds=p.bake_seconds, success_threshold=p.success_threshold,
        max_failures=p.max_failures, min_finished=p.min_finished,
        step_timeout_seconds=p.step_timeout_seconds, max_per_minute=p.max_per_minute,
        start_at=timestamp(p.start_at),
        window=(pb.MaintenanceWindow(cron=p.window.cron,
                                     duration_seconds=p.window.duration_seconds,
                                     time_zone=p.window.time_zone) if p.window else None),
        dynamic=p.dynamic,
        gates=pb.Gates(max_p95_regression=g.max_p95_regression, max_error_rate=g.max_error_rate,
                       max_nonfinite_rate=g.max_nonfinite_rate, max_rollbacks=g.max_rollbacks,
                       min_inferences=g.min_inferences, on_breach=g.on_breach),
    )


def plan_ask(p: pb.RolloutPlan, *, now: dt.datetime) -> PlanAsk:
    """What a CreateRollout asked for (unset optional fields: None, the server's default).
    Raises InvalidArgumentError for a start time outside what a Timestamp holds."""
    def opt(msg: Any, name: str) -> Any:
        return getattr(msg, name) if msg.HasField(name) else None

    g = p.gates
    window = None
    if p.HasField("window"):
        window = Window(cron=p.window.cron, duration_seconds=p.window.duration_seconds,
                        time_zone=p.window.time_zone or "UTC")
    start = (wire_time(p.start_at).to_datetime(what="the start time", default=now)
             if p.HasField("start_at") else None)
    return PlanAsk(
        waves=tuple(p.waves), bake_seconds=opt(p, "bake_seconds"),
        success_threshold=opt(p, "success_threshold"), max_failures=opt(p, "max_failures"),
        min_finished=opt(p, "min_finished"),
        step_timeout_seconds=opt(p, "step_timeout_seconds"),
        max_per_minute=opt(p, "max_per_minute"), start_at=start, window=window,
        dynamic=opt(p, "dynamic"),
        max_p95_regression=opt(g, "max_p95_regression"),
        max_error_rate=opt(g, "max_error_rate"),
        max_nonfinite_rate=opt(g, "max_nonfinite_rate"), max_rollbacks=opt(g, "max_rollbacks"),
        min_inferences=opt(g, "min_inferences"), on_breach=g.on_breach,
    )


def audit_event(e: AuditEvent) -> pb.AuditEvent:
    return pb.AuditEvent(at=timestamp(e.at), actor=e.actor, actor_role=e.actor_role,
                         action=e.action, subject=e.subject, subject_id=e.subject_id,
                         reason=e.reason, details_json=json.dumps(e.details or {},
                                                                  sort_keys=True),
                         wave=e.wave)


def push_header(h: pb.PushModelHeader) -> PushHeader:
    return PushHeader(name=h.name, version=h.version, size=h.size, sha256=h.sha256,
                      calibration_size=h.calibration_size,
                      calibration_sha256=h.calibration_sha256,
                      tolerance=tolerance_dict(h.tolerance) if h.HasField("tolerance") else None)


def tolerance_dict(t: pb.Tolerance) -> dict[str, float]:
    return {f: getattr(t, f) for f in ("min_cosine", "min_top1") if t.HasField(f)}


def tolerance(d: dict[str, float]) -> pb.Tolerance:
    return pb.Tolerance(**d)


def enrollment_token(row: EnrollmentToken, token: str) -> pb.CreateEnrollmentTokenResponse:
    return pb.CreateEnrollmentTokenResponse(
        id=row.id,
        token=token,
        uses=row.uses_total,
        expires_at=timestamp(row.expires_at),
        labels=row.labels,
    )
