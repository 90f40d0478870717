"""``device explain``, ``fleet classes``, ``fleet compat list`` and ``fleet compat clear``: what the
control plane knows of the fleet's hardware and how it chooses variants for it."""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.output import human_size, render_fields, render_table
from protos import edgefleet_pb2 as pb


def _ms(value: float | None) -> str | None:
    return f"{value:.3f}" if value is not None else None


def render_explanation(doc: dict[str, Any]) -> str:
    hclass = doc["hardware_class"]
    fields = render_fields([
        ("device", doc["device_id"]),
        ("model", f"{doc['model']}:{doc['version']}"),
        ("hardware class", f"{hclass['name']} ({hclass['key']})" if hclass else
         "(none: the device has not reported a profile)"),
        ("interpreter", " ".join(filter(None, (doc["interpreter"], doc["interpreter_version"])))
         or None),
        ("ram available", human_size(doc["ram_available_bytes"])
         if doc["ram_available_bytes"] else "(not reported)"),
        ("storage free", human_size(doc["storage_free_bytes"])
         if doc["storage_free_bytes"] else "(not reported)"),
        ("prefer", doc["prefer"]),
        ("chosen", doc["chosen"] or "none: no compatible variant"),
    ])
    table = render_table(
        ("variant", "eligible", "latency ms", "from", "cosine", "size", "memory", "why not"),
        [("* " + v["kind"] if v["chosen"] else v["kind"], "yes" if v["eligible"] else "no",
          _ms(v["latency_ms"]), v["latency_source"],
          f"{v['accuracy_cosine']:.5f}" if v["accuracy_cosine"] is not None else None,
          human_size(v["size_bytes"]) if v["size_bytes"] is not None else None,
          human_size(v["memory_bytes"]) if v["memory_bytes"] is not None else None,
          "; ".join(v["reasons"])) for v in doc["variants"]])
    return f"{fields}\n\nvariants (* chosen):\n{table}"


def explain(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ExplainDeviceRequest(device_id=args.device_id, model=args.ref.name,
                                      version=args.ref.version, prefer=args.prefer or "",
                                      variant=args.variant or "")
    with inv.admin("viewer") as admin:
        doc = convert.explanation(admin.call("ExplainDevice", request))
    inv.output.result(doc, render_explanation)
    if not doc["chosen"]:
        inv.output.note("a rollout would put this device in state no_compatible_variant; see "
                        "why above (a learned mark is cleared with `edgefleet fleet compat clear`)")
    return 0


def classes(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("viewer") as admin:
        response = admin.call("ListHardwareClasses", pb.ListHardwareClassesRequest())
    docs = [convert.hardware_class(c) for c in response.classes]
    inv.output.result({"classes": docs}, lambda d: render_table(
        ("class", "name", "devices", "arch", "interpreter", "ram", "accelerators"),
        [(c["key"], c["name"], c["devices"], c["fields"].get("arch"),
          f"{c['fields'].get('interpreter')} {c['fields'].get('series')}",
          c["fields"].get("ram"), c["fields"].get("accelerators")) for c in d["classes"]],
    ) if d["classes"] else "(none) no device has reported a hardware profile yet")
    return 0


def compat(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ListIncompatibilitiesRequest(
        model=args.ref.name if args.ref else "", version=args.ref.version if args.ref else "")
    with inv.admin("viewer") as admin:
        response = admin.call("ListIncompatibilities", request)
    docs = [convert.incompatibility(i) for i in response.incompatibilities]
    inv.output.result({"incompatibilities": docs}, lambda d: render_table(
        ("model", "variant", "class", "class name", "reason", "reports", "first device",
         "since"),
        [(f"{i['model']}:{i['version']}", i["variant"], i["hardware_class"]["key"],
          i["hardware_class"]["name"], i["reason"], i["reports"], i["device_id"],
          i["created_at"]) for i in d["incompatibilities"]],
    ) if d["incompatibilities"] else "(none) no variant was found incompatible with a class")
    return 0


def compat_clear(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ClearIncompatibilityRequest(model=args.ref.name, version=args.ref.version,
                                             variant=args.variant,
                                             hardware_class=args.hardware_class or "")
    with inv.admin("operator") as admin:
        response = admin.call("ClearIncompatibility", request)
    inv.output.result({"cleared": response.cleared},
                      lambda d: f"cleared {d['cleared']} mark(s): selection offers "
                                f"{args.variant} to that class again from the next rollout")
    return 0
