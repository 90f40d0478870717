"""The optimize pipeline on the generated MobileNet-like CNN: what each variant costs and keeps,
in every interpreter, and how long the pipeline takes per MB of model.

Setup (through the public API): a control plane with the pipeline's every kind; the generated
``modelgen.build_mobilenet`` (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, FULLY_CONNECTED,
SOFTMAX) with ``--samples`` calibration inputs, pushed with ``PushModel`` and followed with
``GetModel`` until ready.

Reported:
- per variant: size and its ratio to float32; per interpreter, top-1 agreement and cosine
  similarity with float32 on the calibration inputs, p50 latency and its ratio to float32's p50
  in the same interpreter (the baseline, measured in the same run by the same pipeline);
- the targets: the int8 variant at most 0.3x the float32 size with top-1 agreement of at least
  98% on the calibration inputs (printed as met or not; nothing asserts);
- the pipeline's wall time from the push's answer to ``ready``, per MB of model, for models of
  ``--widths``: once with the embedded server's in-process worker (no worker of its own), once
  with a separate ``edgefleet worker`` process on Redis (``--redis``, default the local server
  when it answers; skipped otherwise), and their ratio.

Run: ``python -m benchmarks.optimize [--widths 48,144,288] [--samples 32] [--redis URL] [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._controlplane import ControlPlaneUnderTest, wait_for
from benchmarks._report import MiB, print_table, ratio, write_results
from controlplane import modelgen
from controlplane.config import VARIANT_KINDS
from controlplane.registry.tflite import inspect_model
from protos import edgefleet_pb2 as pb

NAME = "optimize"
FULL = {"widths": "48,144,288", "samples": 32, "repeats": 2}
QUICK = {"widths": "16", "samples": 8, "repeats": 1}
INT8_MAX_SIZE_RATIO = 0.3
INT8_MIN_TOP1 = 0.98


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", help="build_mobilenet widths for the time-per-MB runs; the "
                                    "variants table uses 144, the default model")
    p.add_argument("--samples", type=int, help="calibration samples (default 32)")
    p.add_argument("--repeats", type=int, help="pushes per width and worker kind (default 2)")
    p.add_argument("--redis", help="Redis for the separate-worker runs (default: "
                                   "EDGEFLEET_TEST_REDIS_URL or redis://127.0.0.1:6379/0)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.widths = [int(w) for w in str(args.widths).split(",")]
    return args


def calibration_npz(model: bytes, samples: int) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **modelgen.calibration_samples(inspect_model(model).inputs,
                                                    samples=samples))
    return buffer.getvalue()


def push_timed(cp: ControlPlaneUnderTest, name: str, version: str, model: bytes,
               calibration: bytes) -> tuple[pb.ModelVersion, float]:
    """Push, and the seconds from the push's answer to ``ready`` (the pipeline's own time)."""
    started = time.monotonic()
    mv = cp.push_model(name, version, model, timeout=600, calibration=calibration)
    return mv, time.monotonic() - started


def variant_figures(mv: pb.ModelVersion) -> list[dict[str, Any]]:
    reference = mv.variants[0]
    ref_p50 = {m.interpreter: m.latency_p50_ms for m in reference.measurements}
    rows = []
    for v in mv.variants:
        rows.append({
            "kind": v.kind, "status": v.status, "failure": v.failure or None,
            "size_bytes": v.size or None,
            "size_ratio": ratio(v.size, reference.size) if v.size else None,
            "interpreters": {
                m.interpreter: {
                    "version": m.interpreter_version, "status": m.status,
                    "reason": m.reason or None,
                    "top1": min(a.top1 for a in m.accuracy) if m.accuracy else None,
                    "cosine": min(a.cosine for a in m.accuracy) if m.accuracy else None,
                    "max_abs_error": max(a.max_abs_error for a in m.accuracy)
                    if m.accuracy else None,
                    "latency_p50_ms": m.latency_p50_ms, "latency_p95_ms": m.latency_p95_ms,
                    "latency_ratio": ratio(m.latency_p50_ms, ref_p50.get(m.interpreter, 0.0)),
                } for m in v.measurements
            },
        })
    return rows


def redis_url(asked: str | None) -> str | None:
    """The Redis to run a separate worker on, when one answers."""
    url = asked or os.environ.get("EDGEFLEET_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        print(f"no Redis at {url} ({exc}): skipping the separate-worker runs", file=sys.stderr)
        return None
    return url


@contextmanager
def separate_worker(root: Path, redis: str) -> Iterator[ControlPlaneUnderTest]:
    """``edgefleet server`` (which runs no task itself) and ``edgefleet worker``, each a process
    of its own, on one SQLite file and data dir and on Redis, as scaled out on one host."""
    cp = ControlPlaneUnderTest(root, variant_kinds=VARIANT_KINDS)
    data = cp.settings.data_dir
    db = f"sqlite:///{data / 'edgefleet.db'}"
    exe = str(Path(sys.executable).parent / "edgefleet")
    # Scaled out, nobody starts the fleet but `edgefleet init` (schema, key, first token).
    init = subprocess.run([exe, "init", "--db", db, "--data-dir", str(data), "-o", "json"],
                          check=True, capture_output=True, timeout=120)
    token = json.loads(init.stdout)["admin_token"]
    common = ["--db", db, "--redis", redis, "--data-dir", str(data)]
    procs = []
    try:
        for label, args in (("server", ["--listen", cp.address]), ("worker", [])):
            log = (root / f"{label}.log").open("wb")
            procs.append(subprocess.Popen([exe, label, *args, *common], stdout=log,
                                          stderr=subprocess.STDOUT))
        try:
            wait_for("the worker to start",
                     lambda: b"ready" in (root / "worker.log").read_bytes() or None, timeout=60)
            cp.connect(token)
            wait_for("the server to answer", cp.answers, timeout=60)
        except RuntimeError as exc:
            logs = "\n".join(f"--- {label}.log\n" + (root / f"{label}.log").read_text()[-1500:]
                             for label in ("server", "worker"))
            raise RuntimeError(f"{exc}\n{logs}") from exc
        yield cp
    finally:
        cp.stop()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def time_per_mb(cp: ControlPlaneUnderTest, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    runs = {}
    for width in args.widths:
        model = modelgen.build_mobilenet(width=width)
        calibration = calibration_npz(model, args.samples)
        seconds = [push_timed(cp, f"bench-{tag}-{width}", str(i), model, calibration)[1]
                   for i in range(args.repeats)]
        median = statistics.median(seconds)
        runs[str(width)] = {"model_bytes": len(model), "seconds": [round(s, 2) for s in seconds],
                            "median_seconds": round(median, 2),
                            "seconds_per_mb": round(median / (len(model) / MiB), 2)}
    return runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": "the optimize pipeline on the generated MobileNet-like CNN",
        "config": {"widths": args.widths, "samples": args.samples, "repeats": args.repeats,
                   "variant_kinds": list(VARIANT_KINDS)},
    }
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        with ControlPlaneUnderTest(Path(tmp) / "embedded", variant_kinds=VARIANT_KINDS) as cp:
            width = 16 if args.quick else 144
            model = modelgen.build_mobilenet(width=width)
            mv, seconds = push_timed(cp, "bench-mobilenet", "1", model,
                                     calibration_npz(model, args.samples))
            doc["model"] = {"width": width, "bytes": len(model),
                            "operators": list(mv.operators), "pipeline_seconds": round(seconds, 2)}
            doc["variants"] = variant_figures(mv)
            doc["embedded_worker"] = time_per_mb(cp, args, "embedded")
        redis = redis_url(args.redis)
        if redis is not None:
            with separate_worker(Path(tmp) / "scaled", redis) as cp:
                doc["separate_worker"] = time_per_mb(cp, args, "worker")
    int8 = next(v for v in doc["variants"] if v["kind"] == "int8")
    top1 = {name: m["top1"] for name, m in int8["interpreters"].items()}
    doc["targets"] = {
        "int8_size_ratio": int8["size_ratio"],
        "int8_size_ratio_at_most": INT8_MAX_SIZE_RATIO,
        "int8_top1": top1,
        "int8_top1_at_least": INT8_MIN_TOP1,
        "met": bool(int8["size_ratio"] is not None and int8["size_ratio"] <= INT8_MAX_SIZE_RATIO
                    and top1 and all(t is not None and t >= INT8_MIN_TOP1
                                     for t in top1.values())),
    }
    if "separate_worker" in doc:
        doc["separate_over_embedded_seconds"] = {
            w: ratio(doc["separate_worker"][w]["median_seconds"],
                     doc["embedded_worker"][w]["median_seconds"]) for w in doc["embedded_worker"]}
    return doc


def report(doc: dict[str, Any]) -> None:
    m = doc["model"]
    print(f"Optimize pipeline: build_mobilenet(width={m['width']}), {m['bytes'] / MiB:.2f} MiB, "
          f"{doc['config']['samples']} calibration samples; ready in {m['pipeline_seconds']} s")
    interpreters = sorted({i for v in doc["variants"] for i in v["interpreters"]})
    rows: list[tuple[str, ...]] = [("variant", "size", "x size", "interpreter", "top-1",
                                    "cosine", "p50 ms", "x p50", "result")]
    for v in doc["variants"]:
        first = True
        for name in interpreters or [""]:
            f = v["interpreters"].get(name)
            head = (v["kind"], f"{(v['size_bytes'] or 0) / 1024:.0f} KiB",
                    f"{v['size_ratio']}" if v["size_ratio"] is not None else "-") if first \
                else ("", "", "")
            first = False
            if f is None:
                rows.append((*head, name or "-", "-", "-", "-", "-", v["status"]))
                continue
            rows.append((*head, f"{name} {f['version']}",
                         f"{f['top1']:.3f}" if f["top1"] is not None else "-",
                         f"{f['cosine']:.4f}" if f["cosine"] is not None else "-",
                         f"{f['latency_p50_ms']:.3f}", f"{f['latency_ratio']}",
                         f["status"] + (f": {f['reason']}" if f["reason"] else "")))
    print_table("variants against float32 (same run, same inputs)", rows)
    t = doc["targets"]
    print(f"\nint8: {t['int8_size_ratio']}x the float32 size (target <= "
          f"{t['int8_size_ratio_at_most']}), top-1 {t['int8_top1']} (target >= "
          f"{t['int8_top1_at_least']}): {'met' if t['met'] else 'NOT met'}")
    kinds = [k for k in ("embedded_worker", "separate_worker") if k in doc]
    print_table("pipeline seconds per MB of model (push answered -> ready)", [
        ("width", "MiB", *kinds),
        *((w, f"{doc['embedded_worker'][w]['model_bytes'] / MiB:.2f}",
           *(f"{doc[k][w]['seconds_per_mb']}" for k in kinds))
          for w in doc["embedded_worker"]),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
