"""Proto messages -> the JSON documents of the CLI contract (docs/cli.md).

Invariants: every key the contract names is always present; an absent value is an explicit
``null`` (proto3 cannot tell unset from empty, so empty strings, unset messages and zero
timestamps of optional things become ``null``); sizes stay integers in bytes; times are RFC 3339
in UTC with a ``Z``. Unlike ``MessageToDict`` nothing is silently omitted and 64-bit integers stay
JSON numbers.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos import edgefleet_pb2 as pb

Doc = dict[str, Any]


def rfc3339(ts: Timestamp) -> str:
    """``2024-05-01T12:00:00Z``; sub-second digits only when the timestamp has them."""
    moment = ts.ToDatetime(tzinfo=UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def time_field(message: Message, field: str) -> str | None:
    """The timestamp ``message.<field>`` as RFC 3339, or None when it is unset or zero."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return rfc3339(ts)


def _text(value: str) -> str | None:
    return value or None


def quantization(q: pb.Quantization) -> Doc:
    return {
        "scale": list(q.scale),
        "zero_point": list(q.zero_point),
        "quantized_dimension": q.quantized_dimension,
    }


def tensor(t: pb.TensorSpec) -> Doc:
    return {
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "quantization": quantization(t.quantization) if t.HasField("quantization") else None,
    }


def signed_document(doc: pb.SignedDocument) -> Doc:
    """The payload parsed (it is UTF-8 JSON), the signature in base64."""
    try:
        payload: Any = json.loads(doc.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Show what arrived rather than fail the whole listing; verification is the agent's job.
        payload = base64.b64encode(doc.payload).decode("ascii")
    return {
        "key_id": doc.key_id,
        "payload": payload,
        "signature": base64.b64encode(doc.signature).decode("ascii"),
    }


def output_accuracy(a: pb.OutputAccuracy) -> Doc:
    return {
        "name": a.name,
        "max_abs_error": a.max_abs_error,
        "mean_abs_error": a.mean_abs_error,
        "cosine": a.cosine,
        "top1": a.top1 if a.HasField("top1") else None,
    }


def measurement(m: pb.VariantMeasurement) -> Doc:
    measured = m.status != "failed"
    return {
        "interpreter": m.interpreter,
        "interpreter_version": _text(m.interpreter_version),
        "status": m.status,
        "reason": _text(m.reason),
        "latency_p50_ms": m.latency_p50_ms if measured else None,
        "latency_p95_ms": m.latency_p95_ms if measured else None,
        "accuracy": [output_accuracy(a) for a in m.accuracy],
        "inputs_source": m.inputs_source,
        "samples": m.samples,
    }


def variant(v: pb.Variant) -> Doc:
    return {
        "kind": v.kind,
        "status": v.status,
        "sha256": _text(v.sha256),
        "size": v.size if v.sha256 else None,
        "min_runtime": _text(v.min_runtime),
        "latency_ms": v.latency_ms or None,
        "measured_with": _text(v.measured_with),
        "failure": _text(v.failure),
        "inputs": [tensor(t) for t in v.inputs],
        "outputs": [tensor(t) for t in v.outputs],
        "measurements": [measurement(m) for m in v.measurements],
        "golden": ({"sha256": v.golden_sha256, "samples": v.golden_samples}
                   if v.golden_sha256 else None),
        "manifest": signed_document(v.manifest) if v.HasField("manifest") else None,
    }


def tolerance(t: pb.Tolerance) -> Doc:
    return {"min_cosine": t.min_cosine if t.HasField("min_cosine") else None,
            "min_top1": t.min_top1 if t.HasField("min_top1") else None}


def model_version(m: pb.ModelVersion) -> Doc:
    return {
        "name": m.name,
        "version": m.version,
        "status": m.status,
        "failure": _text(m.failure),
        "sha256": m.sha256,
        "size": m.size,
        "inputs": [tensor(t) for t in m.inputs],
        "outputs": [tensor(t) for t in m.outputs],
        "operators": list(m.operators),
        "min_runtime": _text(m.min_runtime),
        "created_at": time_field(m, "created_at"),
        "calibrated": m.calibrated,
        "tolerance": tolerance(m.tolerance) if m.HasField("tolerance") else None,
        "variants": [variant(v) for v in m.variants],
        # null unless asked for (model show --by-class)
        "by_class": ([class_variant_metrics(c) for c in m.class_metrics]
                     if m.HasField("class_metrics_coverage") else None),
        "by_class_coverage": (coverage(m.class_metrics_coverage)
                              if m.HasField("class_metrics_coverage") else None),
    }


def hardware(h: pb.HardwareProfile) -> Doc:
    return {
        "arch": _text(h.arch),
        "cpu_model": _text(h.cpu_model),
        "cpu_cores": h.cpu_cores or None,
        "cpu_flags": list(h.cpu_flags),
        "ram_bytes": h.ram_bytes or None,
        "ram_available_bytes": h.ram_available_bytes or None,
        "storage_free_bytes": h.storage_free_bytes or None,
        "os": _text(h.os),
        "kernel": _text(h.kernel),
        "interpreter": (
            {"name": h.interpreter.name, "version": h.interpreter.version}
            if h.HasField("interpreter") and h.interpreter.name
            else None
        ),
        "delegates": list(h.delegates),
    }


def model_ref(message: Message, field: str) -> Doc | None:
    """``{"version", "variant", "sha256"}`` of ``message.<field>``, or None when unset/empty."""
    if not message.HasField(field):
        return None
    ref: pb.ModelRef = getattr(message, field)
    if not (ref.version or ref.sha256):
        return None
    return {"version": ref.version, "variant": _text(ref.variant), "sha256": _text(ref.sha256)}


def finding(f: pb.Finding) -> Doc:
    """Why the device refused or rolled back a variant; sample and output null when none."""
    return {
        "reason": f.reason,
        "interpreter": _text(f.interpreter),
        "interpreter_version": _text(f.interpreter_version),
        "sample": f.sample if f.sample >= 0 else None,
        "output": _text(f.output),
        "observed": f.observed,
        "limit": f.limit,
    }


def device_model(dm: pb.DeviceModel) -> Doc:
    return {
        "model": dm.model,
        "desired": model_ref(dm, "desired"),
        "active": model_ref(dm, "active"),
        "state": _text(dm.state),
        "message": _text(dm.message),
        "finding": finding(dm.finding) if dm.HasField("finding") else None,
    }


def device_model_metrics(m: pb.DeviceModelMetrics) -> Doc:
    """One variant's windows summed; latencies null when they held no inference."""
    return {
        "model": m.model,
        "version": m.version,
        "variant": m.variant,
        "windows": m.windows,
        "inferences": m.inferences,
        "errors": m.errors,
        "nonfinite": m.nonfinite,
        "latency_p50_ms": m.latency_p50_ms if m.inferences else None,
        "latency_p95_ms": m.latency_p95_ms if m.inferences else None,
        "first_window_start": time_field(m, "first_window_start"),
        "last_window_end": time_field(m, "last_window_end"),
    }


def device(d: pb.Device) -> Doc:
    return {
        "id": d.id,
        "name": d.name,
        "labels": dict(sorted(d.labels.items())),
        "hardware": hardware(d.hardware) if d.HasField("hardware") else None,
        "last_seen": time_field(d, "last_seen"),
        "enrolled_at": time_field(d, "enrolled_at"),
        "desired_sequence": d.desired_sequence,
        "revoked_at": time_field(d, "revoked_at"),
        "hardware_class": hardware_class(d.hardware_class) if d.HasField("hardware_class")
        else None,
        # null (not []) when the answer did not carry it: ListDevices leaves it out.
        "hardware_history": ([{"recorded_at": time_field(c, "recorded_at"),
                               "hardware_class": hardware_class(c.hardware_class),
                               "profile": hardware(c.profile)} for c in d.hardware_history]
                             if d.HasField("metrics_coverage") else None),
        "models": [device_model(m) for m in d.models],
        # null (not []) when the answer did not carry them: ListDevices leaves them out.
        "metrics": ([device_model_metrics(m) for m in d.metrics]
                    if d.HasField("metrics_coverage") else None),
        "metrics_coverage": (coverage(d.metrics_coverage)
                             if d.HasField("metrics_coverage") else None),
    }


def coverage(c: pb.MetricsCoverage) -> Doc:
    """Which windows a set of figures sums (``device show``, ``model show --by-class``)."""
    return {"windows_considered": c.windows_considered, "truncated": c.truncated,
            "max_windows": c.max_windows}


def class_variant_metrics(c: pb.ClassVariantMetrics) -> Doc:
    return {"hardware_class": {"key": c.hardware_class.key, "name": c.hardware_class.name},
            "variant": c.variant, "devices": c.devices, "windows": c.windows,
            "inferences": c.inferences, "errors": c.errors,
            "error_rate": c.errors / c.inferences if c.inferences else None,
            "nonfinite": c.nonfinite,
            "latency_p50_ms": _optional(c, "latency_p50_ms"),
            "latency_p95_ms": _optional(c, "latency_p95_ms")}


def hardware_class(c: pb.HardwareClass) -> Doc:
    return {"key": c.key, "name": c.name, "fields": dict(sorted(c.fields.items())),
            "devices": c.devices}


def _optional(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def explanation(e: pb.Explanation) -> Doc:
    return {
        "device_id": e.device_id, "model": e.model, "version": e.version,
        "hardware_class": hardware_class(e.hardware_class) if e.HasField("hardware_class")
        else None,
        "prefer": e.prefer, "chosen": _text(e.chosen), "reason": e.reason,
        "interpreter": _text(e.interpreter), "interpreter_version": _text(e.interpreter_version),
        "ram_available_bytes": e.ram_available_bytes or None,
        "storage_free_bytes": e.storage_free_bytes or None,
        "variants": [{"kind": v.kind, "eligible": v.eligible, "chosen": v.chosen,
                      "reasons": list(v.reasons), "latency_ms": _optional(v, "latency_ms"),
                      "latency_source": v.latency_source,
                      "accuracy_cosine": _optional(v, "accuracy_cosine"),
                      "size_bytes": _optional(v, "size_bytes"),
                      "memory_bytes": _optional(v, "memory_bytes")} for v in e.variants],
    }


def incompatibility(i: pb.Incompatibility) -> Doc:
    return {"model": i.model, "version": i.version, "variant": i.variant,
            "hardware_class": {"key": i.hardware_class.key, "name": i.hardware_class.name},
            "reason": i.reason, "finding": finding(i.finding) if i.HasField("finding") else None,
            "device_id": _text(i.device_id), "reports": i.reports,
            "created_at": time_field(i, "created_at"), "updated_at": time_field(i, "updated_at")}


def gate_reading(g: pb.GateReading) -> Doc:
    """One gate on one hardware class as last judged; ``baseline``/``new_value`` (p95 in ms)
    null when the gate has none."""
    return {
        "gate": g.gate,
        "hardware_class": g.hardware_class,
        "class_name": g.class_name,
        "verdict": g.verdict,
        "observed": g.observed,
        "limit": g.limit,
        "baseline": g.baseline or None,
        "new_value": g.new_value or None,
        "inferences": g.inferences,
        "baseline_inferences": g.baseline_inferences,
        "baseline_source": g.baseline_source or "none",
        "detail": _text(g.detail),
    }


def wave(w: pb.Wave) -> Doc:
    return {
        "index": w.index,
        "target": w.target,
        "devices": w.devices,
        "queued": w.queued,
        "in_progress": w.in_progress,
        "held": w.held,
        "succeeded": w.succeeded,
        "failed": w.failed,
        "timed_out": w.timed_out,
        "skipped": w.skipped,
        "no_compatible": w.no_compatible,
        "rolled_back": w.rolled_back,
        "state": w.state,
        "started_at": time_field(w, "started_at"),
        "completed_at": time_field(w, "completed_at"),
        "bake_until": time_field(w, "bake_until"),
        "finished_at": time_field(w, "finished_at"),
        "gates": [gate_reading(g) for g in w.gates],
    }


def gates(g: pb.Gates) -> Doc:
    return {
        "max_p95_regression": _optional(g, "max_p95_regression"),
        "max_error_rate": _optional(g, "max_error_rate"),
        "max_nonfinite_rate": _optional(g, "max_nonfinite_rate"),
        "max_rollbacks": _optional(g, "max_rollbacks"),
        "min_inferences": _optional(g, "min_inferences"),
        "on_breach": _text(g.on_breach),
    }


def plan(p: pb.RolloutPlan) -> Doc:
    """The plan in force as the server reports it (every field filled); a field it left unset
    is null. Durations in seconds, shares as fractions (0.95), counts-or-shares as the wire
    spells them ("3", "5%")."""
    return {
        "waves": list(p.waves),
        "bake_seconds": _optional(p, "bake_seconds"),
        "success_threshold": _optional(p, "success_threshold"),
        "max_failures": _optional(p, "max_failures"),
        "min_finished": _optional(p, "min_finished"),
        "step_timeout_seconds": _optional(p, "step_timeout_seconds"),
        "max_per_minute": _optional(p, "max_per_minute"),
        "start_at": time_field(p, "start_at"),
        "window": ({"cron": p.window.cron, "duration_seconds": p.window.duration_seconds,
                    "time_zone": p.window.time_zone or "UTC"}
                   if p.HasField("window") and p.window.cron else None),
        "dynamic": _optional(p, "dynamic"),
        "gates": gates(p.gates) if p.HasField("gates") else None,
    }


def rollout(r: pb.Rollout) -> Doc:
    return {
        "id": r.id,
        "model": r.model,
        "version": r.version,
        "selector": r.selector,
        "variant": _text(r.variant),
        "prefer": r.prefer or "latency",
        "state": r.state,
        "reason": _text(r.reason),
        "previous_version": _text(r.previous_version),
        "plan": plan(r.plan) if r.HasField("plan") else None,
        "waves": [wave(w) for w in r.waves],
        "created_at": time_field(r, "created_at"),
        "updated_at": time_field(r, "updated_at"),
        "created_by": _text(r.created_by),
        "failed_devices": [{"device_id": d.device_id, "message": d.message,
                            "state": d.state or "failed"}
                           for d in r.failed_devices],
    }


def audit_event(e: pb.AuditEvent) -> Doc:
    """One audit entry; ``details`` is its JSON parsed (``{}`` when none, the text as it came
    when it is not JSON), ``wave`` null when it concerns none."""
    details: Any = {}
    if e.details_json:
        try:
            details = json.loads(e.details_json)
        except json.JSONDecodeError:
            details = e.details_json
    return {
        "at": time_field(e, "at"),
        "actor": e.actor,
        "actor_role": _text(e.actor_role),
        "action": e.action,
        "subject": _text(e.subject),
        "subject_id": _text(e.subject_id),
        "wave": e.wave if e.wave >= 0 else None,
        "reason": _text(e.reason),
        "details": details,
    }


def created_token(t: pb.CreateTokenResponse) -> Doc:
    return {"id": t.id, "token": t.token, "role": t.role,
            "expires_at": time_field(t, "expires_at")}


def enrollment_token(t: pb.CreateEnrollmentTokenResponse) -> Doc:
    return {
        "id": t.id,
        "token": t.token,
        "uses": t.uses,
        "expires_at": time_field(t, "expires_at"),
        "labels": dict(sorted(t.labels.items())),
    }


def operator_token(t: pb.OperatorToken) -> Doc:
    return {
        "id": t.id,
        "role": t.role,
        "description": t.description,
        "created_at": time_field(t, "created_at"),
        "created_by": _text(t.created_by),
        "revoked_at": time_field(t, "revoked_at"),
        "expires_at": time_field(t, "expires_at"),
    }


def revoked_enrollment_token(t: pb.RevokedEnrollmentToken) -> Doc:
    return {"id": t.id, "uses_left": t.uses_left, "revoked_at": time_field(t, "revoked_at")}
