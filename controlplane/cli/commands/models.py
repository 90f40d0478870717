"""``model push``, ``model list``, ``model show``."""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.follow import follow
from controlplane.cli.output import human_size, render_fields, render_table
from controlplane.cli.upload import PushStream, inspect_model_file, read_calibration
from protos import edgefleet_pb2 as pb


def short_sha(sha256: str | None) -> str | None:
    return sha256[:12] if sha256 else None


def _shape(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def render_tensors(tensors: list[dict[str, Any]]) -> str:
    return render_table(
        ("name", "shape", "dtype", "quantized"),
        [(t["name"], _shape(t["shape"]), t["dtype"], t["quantization"] is not None)
         for t in tensors],
    )


def _ratio(value: float | None, base: float | None) -> str | None:
    return f"{value / base:.2f}x" if value is not None and base else None


def _worst(figures: list[dict[str, Any]], key: str, pick: Any) -> float | None:
    values = [f[key] for f in figures if f[key] is not None]
    return pick(values) if values else None


def _reference(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The variant made of the uploaded file: the one sizes and latencies are compared with."""
    return next((v for v in doc["variants"] if v["sha256"] == doc["sha256"]), None)


def variant_rows(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per variant and interpreter: size and latency as ratios to the reference's (in
    the same interpreter), the worst output's accuracy figures, and the outcome."""
    reference = _reference(doc)
    ref_size = reference["size"] if reference else None
    ref_latency = {m["interpreter"]: m["latency_p50_ms"]
                   for m in (reference["measurements"] if reference else [])}
    rows: list[tuple[Any, ...]] = []
    for v in doc["variants"]:
        head = (v["kind"], v["status"], human_size(v["size"]) if v["size"] else None,
                _ratio(v["size"], ref_size))
        if not v["measurements"]:
            rows.append((*head, None, None, None, None, None, None, v["failure"]))
        for i, m in enumerate(v["measurements"]):
            cosine = _worst(m["accuracy"], "cosine", min)
            top1 = _worst(m["accuracy"], "top1", min)
            error = _worst(m["accuracy"], "max_abs_error", max)
            p50 = m["latency_p50_ms"]
            outcome = m["status"] if not m["reason"] else f"{m['status']}: {m['reason']}"
            rows.append((
                *(head if i == 0 else (" ",) * len(head)),   # " ": blank, not "-"
                f"{m['interpreter']} {m['interpreter_version'] or ''}".strip(),
                f"{cosine:.4f}" if cosine is not None else None,
                f"{top1:.3f}" if top1 is not None else None,
                f"{error:.2g}" if error is not None else None,
                f"{p50:.3g}" if p50 is not None else None,
                _ratio(p50, ref_latency.get(m["interpreter"])),
                outcome,
            ))
    return rows


def render_variants(doc: dict[str, Any]) -> str:
    table = render_table(
        ("kind", "status", "size", "x size", "interpreter", "cosine", "top-1", "max err",
         "p50 ms", "x p50", "result"),
        variant_rows(doc))
    sources = {(m["inputs_source"], m["samples"]) for v in doc["variants"]
               for m in v["measurements"]}
    notes = []
    if sources:
        source, samples = sorted(sources)[0]
        notes.append(f"measured on {samples} {source} input sample(s) against "
                     f"{(_reference(doc) or {}).get('kind', 'the reference')}")
    if doc["tolerance"]:
        t = doc["tolerance"]
        notes.append(f"tolerance: cosine >= {t['min_cosine']}, top-1 >= {t['min_top1']} "
                     "(worst output shown)")
    return "\n".join([table, *notes])


def render_model_version(doc: dict[str, Any]) -> str:
    fields = render_fields([
        ("model", f"{doc['name']}:{doc['version']}"),
        ("status", doc["status"]),
        ("failure", doc["failure"]),
        ("size", f"{human_size(doc['size'])} ({doc['size']} bytes)"),
        ("sha256", doc["sha256"]),
        ("min runtime", doc["min_runtime"]),
        ("operators", doc["operators"]),
        ("calibrated", doc["calibrated"]),
        ("created", doc["created_at"]),
    ])
    return "\n\n".join([
        fields,
        "inputs:\n" + render_tensors(doc["inputs"]),
        "outputs:\n" + render_tensors(doc["outputs"]),
        "variants:\n" + (render_variants(doc) if doc["variants"] else "(none yet)"),
        *([_by_class(doc)] if doc["by_class"] is not None else []),
    ])


def _by_class(doc: dict[str, Any]) -> str:
    """What devices reported per hardware class and variant (``model show --by-class``)."""
    if not doc["by_class"]:
        return ("by hardware class:\n(none) no device has reported inferences of this version "
                "yet; roll it out and see again")
    table = render_table(
        ("class", "variant", "devices", "inferences", "error rate", "non-finite", "p50 ms",
         "p95 ms"),
        [(c["hardware_class"]["name"] or c["hardware_class"]["key"], c["variant"], c["devices"],
          c["inferences"], f"{c['error_rate']:.2%}" if c["error_rate"] is not None else None,
          c["nonfinite"],
          f"{c['latency_p50_ms']:.3f}" if c["latency_p50_ms"] is not None else None,
          f"{c['latency_p95_ms']:.3f}" if c["latency_p95_ms"] is not None else None)
         for c in doc["by_class"]])
    coverage = doc["by_class_coverage"]
    if coverage and coverage["truncated"]:
        table += (f"\n(from the version's most recent {coverage['windows_considered']} windows "
                  "only: server setting class_metrics_max_windows)")
    return "by hardware class:\n" + table


def _tolerance(args: argparse.Namespace) -> pb.Tolerance | None:
    given = {f: getattr(args, f) for f in ("min_cosine", "min_top1")
             if getattr(args, f) is not None}
    return pb.Tolerance(**given) if given else None


def push(args: argparse.Namespace, inv: Invocation) -> int:
    chunk_bytes = inv.settings.chunk_bytes
    model = inspect_model_file(args.file, chunk_bytes)
    calibration = read_calibration(args.calibration) if args.calibration else b""
    with inv.admin("operator") as admin:
        with inv.output.progress(f"{args.name}:{args.version}", model.size) as advance:
            stream = PushStream(model, name=args.name, version=args.version,
                                calibration=calibration, chunk_bytes=chunk_bytes,
                                on_chunk=advance, tolerance=_tolerance(args))
            try:
                response = admin.call("PushModel", iter(stream),
                                      timeout=inv.settings.push_timeout_seconds)
            except CliError:
                read_error = stream.read_error
                if read_error is not None:  # our read failed first; the server's view is moot
                    message = f"cannot read model file {args.file}: {read_error.strerror}"
                    raise CliError(message, ExitCode.INVALID) from read_error
                raise
        doc = convert.model_version(response)
        if args.wait and doc["status"] == "pending":
            doc = _wait_for_pipeline(args, inv, admin, doc)
    inv.output.result(doc, render_model_version)
    ref = f"{doc['name']}:{doc['version']}"
    if doc["status"] == "pending":
        inv.output.note(f"the server is building and measuring its variants; follow them with: "
                        f"edgefleet model show {ref}")
    if args.wait and doc["status"] == "failed":
        raise CliError(f"{ref} failed: {doc['failure']}", ExitCode.MODEL_FAILED)
    return 0


def _wait_for_pipeline(args: argparse.Namespace, inv: Invocation, admin: Any,
                       doc: dict[str, Any]) -> dict[str, Any]:
    """Follow the optimize pipeline until the version is ready or failed, with a bar of
    variants settled."""
    request = pb.GetModelRequest(name=doc["name"], version=doc["version"])
    with inv.output.steps(f"optimizing {doc['name']}:{doc['version']}") as update:
        def show(d: dict[str, Any]) -> None:
            settled = [v for v in d["variants"] if v["status"] != "pending"]
            pending = [v["kind"] for v in d["variants"] if v["status"] == "pending"]
            update(len(settled), len(d["variants"]), ", ".join(pending))

        final = follow(inv, lambda: convert.model_version(admin.call("GetModel", request)),
                       lambda d: d["status"] != "pending", show, timeout=args.timeout,
                       what=f"{doc['name']}:{doc['version']}")
        show(final)
    return final


def list_models(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("viewer") as admin:
        docs = [convert.model_version(m)
                for m in admin.items("ListModels", pb.ListModelsRequest(), "models")]
    inv.output.result({"models": docs}, lambda d: render_table(
        ("name", "version", "status", "size", "variants ready", "created"),
        [(m["name"], m["version"], m["status"], human_size(m["size"]),
          [v["kind"] for v in m["variants"] if v["status"] == "ready"], m["created_at"])
         for m in d["models"]],
    ))
    return 0


def show(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.GetModelRequest(name=args.ref.name, version=args.ref.version,
                                 by_class=args.by_class)
    with inv.admin("viewer") as admin:
        response = admin.call("GetModel", request)
    inv.output.result(convert.model_version(response), render_model_version)
    return 0
