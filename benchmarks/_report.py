"""Figures and where they came from: latency summaries, machine info, and the results file.

Invariant: every results file carries the machine, the package versions, the git commit and the
exact configuration that produced it, so a figure is never separated from its context.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024

_PACKAGES = (
    "grpcio", "protobuf", "SQLAlchemy", "psycopg", "celery", "numpy", "tflite-runtime",
    "ai-edge-litert", "cryptography",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, round(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary(latencies_ns: Sequence[int], seconds: float) -> dict[str, float]:
    """p50/p99/mean in microseconds and calls per second for one closed-loop run."""
    values = sorted(latencies_ns)
    return {
        "calls": len(values),
        "seconds": round(seconds, 3),
        "throughput_per_s": round(len(values) / seconds, 1) if seconds > 0 else 0.0,
        "p50_us": round(percentile(values, 50) / 1000, 1),
        "p99_us": round(percentile(values, 99) / 1000, 1),
        "mean_us": round(sum(values) / len(values) / 1000, 1),
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpus_usable": affinity,
        "memory_bytes": _memory_bytes(),
        # Other work on the machine moves absolute figures (the ratios less): 1, 5, 15 minutes.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "git_commit": _git_commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_results(name: str, doc: dict[str, Any], *, quick: bool, suffix: str = "") -> Path:
    """Write ``doc`` plus machine info to ``results/NAME[.SUFFIX][.quick].json``; return the path.

    ``--quick`` runs go to a ``.quick.json`` file (ignored by git) so a smoke check never
    overwrites the committed figures.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = name + (f".{suffix}" if suffix else "") + (".quick" if quick else "")
    path = RESULTS_DIR / f"{stem}.json"
    full = {"benchmark": name, **doc, "machine": machine_info()}
    path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    return path


def print_table(title: str, rows: Sequence[tuple[str, ...]]) -> None:
    """A plain aligned table on stdout (the benchmarks' human-readable output)."""
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  " + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
