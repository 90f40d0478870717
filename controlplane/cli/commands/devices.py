"""``device list``, ``device show``, ``device label``, ``device revoke``."""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.output import human_size, render_fields, render_table
from protos import edgefleet_pb2 as pb


def _ref(ref: dict[str, Any] | None) -> str | None:
    """``1.2.0/float16`` for a table cell."""
    if ref is None:
        return None
    return f"{ref['version']}/{ref['variant']}" if ref["variant"] else ref["version"]


def _interpreter(hardware: dict[str, Any] | None) -> str | None:
    if hardware is None or hardware["interpreter"] is None:
        return None
    return f"{hardware['interpreter']['name']} {hardware['interpreter']['version']}"


def render_device(doc: dict[str, Any]) -> str:
    hw = doc["hardware"] or {}
    fields = render_fields([
        ("id", doc["id"]),
        ("name", doc["name"]),
        ("labels", doc["labels"]),
        ("last seen", doc["last_seen"]),
        ("enrolled", doc["enrolled_at"]),
        ("desired sequence", doc["desired_sequence"]),
        ("revoked", doc["revoked_at"]),
        ("hardware class", f"{doc['hardware_class']['name']} ({doc['hardware_class']['key']})"
         if doc["hardware_class"] else None),
        ("arch", hw.get("arch")),
        ("cpu", f"{hw.get('cpu_model') or '?'} ({hw.get('cpu_cores') or '?'} cores)"
         if hw else None),
        ("cpu flags", hw.get("cpu_flags")),
        ("ram", human_size(hw.get("ram_bytes")) if hw.get("ram_bytes") else None),
        ("storage free",
         human_size(hw.get("storage_free_bytes")) if hw.get("storage_free_bytes") else None),
        ("os", " ".join(filter(None, (hw.get("os"), hw.get("kernel")))) or None),
        ("interpreter", _interpreter(doc["hardware"])),
        ("delegates", hw.get("delegates")),
    ])
    models = render_table(
        ("model", "desired", "active", "state", "message"),
        [(m["model"], _ref(m["desired"]), _ref(m["active"]), m["state"], m["message"])
         for m in doc["models"]],
    )
    return "\n\n".join(filter(None, (
        fields,
        "models:\n" + (models if doc["models"] else "(none)"),
        _findings(doc),
        _history(doc),
        "metrics received:\n" + _metrics(doc),
    )))


def _history(doc: dict[str, Any]) -> str | None:
    """The profiles the device reported, newest first; nothing when it reported one only."""
    history = doc["hardware_history"] or []
    if len(history) < 2:
        return None
    return "hardware history:\n" + render_table(
        ("recorded", "class", "interpreter", "ram available", "storage free", "delegates"),
        [(c["recorded_at"], c["hardware_class"]["name"], _interpreter(c["profile"]),
          human_size(c["profile"]["ram_available_bytes"])
          if c["profile"]["ram_available_bytes"] else None,
          human_size(c["profile"]["storage_free_bytes"])
          if c["profile"]["storage_free_bytes"] else None,
          c["profile"]["delegates"]) for c in history])


def _figure(value: float | None) -> str | None:
    return f"{value:.4g}" if value is not None else None


def _findings(doc: dict[str, Any]) -> str | None:
    """Why the device refused or rolled back its desired variants; nothing when it did not."""
    rows = [(m["model"], f["reason"], " ".join(filter(None, (f["interpreter"],
                                                             f["interpreter_version"]))),
             _figure(f["observed"]), _figure(f["limit"]), f["sample"], f["output"])
            for m in doc["models"] if (f := m["finding"]) is not None]
    if not rows:
        return None
    return "findings:\n" + render_table(
        ("model", "reason", "interpreter", "observed", "limit", "sample", "output"), rows)


def _metrics(doc: dict[str, Any]) -> str:
    """The "metrics received" table, or what to do when there is none."""
    metrics, coverage = doc["metrics"], doc["metrics_coverage"]
    if metrics is None:
        return "(not told by this server: upgrade it to see what the device reported)"
    if not metrics:
        return ("(none) no metrics received yet: a device reports a window of its inferences "
                "while it serves a model; see `edgefleet-agent status` on the device")
    table = render_table(
        ("model", "version", "variant", "inferences", "errors", "non-finite", "p50 ms",
         "p95 ms", "last window"),
        [(m["model"], m["version"], m["variant"], m["inferences"], m["errors"], m["nonfinite"],
          _figure(m["latency_p50_ms"]), _figure(m["latency_p95_ms"]), m["last_window_end"])
         for m in metrics])
    if coverage["truncated"]:
        table += (f"\n(from the device's most recent {coverage['windows_considered']} windows "
                  f"only: older ones are not counted; server setting device_metrics_max_windows "
                  f"is {coverage['max_windows']})")
    return table


def list_devices(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ListDevicesRequest(selector=args.selector or "")
    with inv.admin("viewer") as admin:
        docs = [convert.device(d) for d in admin.items("ListDevices", request, "devices")]
    inv.output.result({"devices": docs}, lambda d: render_table(
        ("id", "name", "labels", "arch", "class", "interpreter", "last seen", "active models",
         "revoked"),
        [(x["id"], x["name"], x["labels"], (x["hardware"] or {}).get("arch"),
          x["hardware_class"]["name"] if x["hardware_class"] else None,
          _interpreter(x["hardware"]), x["last_seen"],
          [f"{m['model']}:{_ref(m['active'])}" for m in x["models"] if m["active"]],
          x["revoked_at"])
         for x in d["devices"]],
    ))
    return 0


def show(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("viewer") as admin:
        response = admin.call("GetDevice", pb.GetDeviceRequest(id=args.device_id))
    inv.output.result(convert.device(response), render_device)
    return 0


def label(args: argparse.Namespace, inv: Invocation) -> int:
    labels: dict[str, str] = {}
    for key, value in args.labels:
        if key in labels:
            raise CliError(f"label {key!r} given twice", ExitCode.USAGE)
        labels[key] = value  # an empty value asks the server to remove the label
    with inv.admin("operator") as admin:
        response = admin.call("LabelDevice", pb.LabelDeviceRequest(id=args.device_id,
                                                                   labels=labels))
    inv.output.result(convert.device(response), render_device)
    return 0


def revoke(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("operator") as admin:
        response = admin.call("RevokeDevice", pb.RevokeDeviceRequest(id=args.device_id))
    doc = convert.device(response)
    inv.output.result(doc, render_device)
    inv.output.note(f"revoked at {doc['revoked_at']}: its credential is refused (by other servers "
                    "within 120 s); to bring the device back, enroll it anew with a new "
                    "enrollment token and an empty data dir")
    return 0
