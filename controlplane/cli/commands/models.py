"""``model push``, ``model list``, ``model show``."""

from __future__ import annotations

import argparse
from typing import Any

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
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


def render_model_version(doc: dict[str, Any]) -> str:
    fields = render_fields([
        ("model", f"{doc['name']}:{doc['version']}"),
        ("status", doc["status"]),
        ("failure", doc["failure"]),
        ("size", f"{human_size(doc['size'])} ({doc['size']} bytes)"),
        ("sha256", doc["sha256"]),
        ("min runtime", doc["min_runtime"]),
        ("operators", doc["operators"]),
        ("created", doc["created_at"]),
    ])
    variants = render_table(
        ("kind", "status", "size", "latency ms", "sha256", "failure"),
        [(v["kind"], v["status"], human_size(v["size"]) if v["size"] is not None else None,
          f"{v['latency_ms']:.2f}" if v["latency_ms"] is not None else None,
          short_sha(v["sha256"]), v["failure"]) for v in doc["variants"]],
    )
    return "\n\n".join([
        fields,
        "inputs:\n" + render_tensors(doc["inputs"]),
        "outputs:\n" + render_tensors(doc["outputs"]),
        "variants:\n" + (variants if doc["variants"] else "(none yet)"),
    ])


def push(args: argparse.Namespace, inv: Invocation) -> int:
    chunk_bytes = inv.settings.chunk_bytes
    model = inspect_model_file(args.file, chunk_bytes)
    calibration = read_calibration(args.calibration) if args.calibration else b""
    with inv.admin("operator") as admin, \
            inv.output.progress(f"{args.name}:{args.version}", model.size) as advance:
        stream = PushStream(model, name=args.name, version=args.version,
                            calibration=calibration, chunk_bytes=chunk_bytes, on_chunk=advance)
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
    inv.output.result(doc, render_model_version)
    if doc["status"] == "pending":
        inv.output.note(f"the server is measuring its variants; follow them with: "
                        f"edgefleet model show {doc['name']}:{doc['version']}")
    return 0


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
    request = pb.GetModelRequest(name=args.ref.name, version=args.ref.version)
    with inv.admin("viewer") as admin:
        response = admin.call("GetModel", request)
    inv.output.result(convert.model_version(response), render_model_version)
    return 0
