"""A variant's measured latency, as its signed manifest carries it.

The control plane measures each variant in every interpreter it has (one thread, p50 and p95 of
timed invokes) and signs the figures of the interpreters that ran it within tolerance into the
manifest, so a device can hold the variant to a latency budget relative to what was measured:

    "latency_ms": {"tflite-runtime": {"p50": 0.41, "p95": 0.52}, "ai-edge-litert": {...}}

Invariants:
- Keys are interpreter names of ``protos.contract.interpreters``; figures are finite, >= 0,
  and p50 <= p95. A manifest carries at most one entry per interpreter.
- The field is optional: a manifest without it (or without the device's interpreter) has no
  measured figure, and the device falls back to its absolute budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protos.contract.documents import is_json_number
from protos.contract.errors import ContractError
from protos.contract.interpreters import INTERPRETERS


@dataclass(frozen=True)
class MeasuredLatency:
    p50_ms: float
    p95_ms: float

    def to_json(self) -> dict[str, float]:
        return {"p50": self.p50_ms, "p95": self.p95_ms}


def latency_json(figures: Mapping[str, MeasuredLatency]) -> dict[str, dict[str, float]]:
    """The manifest's ``latency_ms`` field. Raises ContractError on a figure that breaks the
    rules above."""
    doc = {name: m.to_json() for name, m in sorted(figures.items())}
    parse_latency(doc)
    return doc


def parse_latency(obj: object) -> dict[str, MeasuredLatency]:
    """The measured figures per interpreter. Raises ContractError unless ``obj`` is a
    well-formed ``latency_ms`` field."""
    if not isinstance(obj, Mapping):
        raise ContractError("latency_ms must be an object")
    found = {}
    for name, figures in obj.items():
        if name not in INTERPRETERS:
            raise ContractError(f"latency_ms names an unknown interpreter {str(name)[:40]!r}")
        if not isinstance(figures, Mapping) or set(figures) != {"p50", "p95"}:
            raise ContractError(f"latency_ms[{name!r}] must be {{\"p50\": ms, \"p95\": ms}}")
        p50, p95 = figures["p50"], figures["p95"]
        if not all(is_json_number(v) and math.isfinite(v) and v >= 0 for v in (p50, p95)):
            raise ContractError(f"latency_ms[{name!r}] figures must be non-negative numbers")
        if p50 > p95:
            raise ContractError(f"latency_ms[{name!r}]: p50 {p50} is above p95 {p95}")
        found[name] = MeasuredLatency(float(p50), float(p95))
    return found


def measured_for(manifest: Mapping[str, Any], interpreter: str) -> MeasuredLatency | None:
    """What the manifest says ``interpreter`` measured, None when it says nothing about it.
    Raises ContractError on a malformed field."""
    obj = manifest.get("latency_ms")
    if obj is None:
        return None
    return parse_latency(obj).get(interpreter)
