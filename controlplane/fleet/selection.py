"""Choosing the variant a device runs, with the reason for the choice.

Pure: takes the candidate variants and the device's hardware profile, returns a choice. The
foundation prefers, among ready variants whose minimum runtime the device's interpreter meets,
the one measured fastest; later issues add hardware classes and learned compatibility here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.registry.models import Variant


@dataclass(frozen=True)
class Choice:
    variant: Variant | None
    reason: str


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# ``min_runtime`` is a TensorFlow Lite release number (registry.tflite). tflite-runtime uses the
# same series; ai-edge-litert has its own, and every release of it was cut after TensorFlow 2.18
# (LiteRT is TFLite renamed), so its kernels are at least 2.18's. Conservative on purpose.
TFLITE_EQUIVALENT = {"ai-edge-litert": "2.18.0"}


def tflite_equivalent(name: str, version: str) -> str:
    """The TensorFlow Lite release whose kernels interpreter ``name`` ``version`` has at least."""
    return TFLITE_EQUIVALENT.get(name, version) if version else version


def runtime_satisfies(device_version: str, min_runtime: str) -> bool:
    if not min_runtime:
        return True
    if not device_version:
        return True  # unknown runtime: let the agent's own validation decide
    return _version_tuple(device_version) >= _version_tuple(min_runtime)


def choose_variant(
    variants: Sequence[Variant], hardware: dict[str, Any] | None, min_runtime: str
) -> Choice:
    ready = [v for v in variants if v.status == "ready"]
    if not ready:
        return Choice(None, "no variant is ready")
    interp = (hardware or {}).get("interpreter") or {}
    version = tflite_equivalent(str(interp.get("name", "")), str(interp.get("version", "")))
    if not runtime_satisfies(version, min_runtime):
        return Choice(
            None,
            f"interpreter {interp.get('name', '?')} {interp.get('version', '')} (TFLite {version}) "
            f"is older than the model's minimum runtime {min_runtime}",
        )
    best = min(
        ready, key=lambda v: (v.latency_ms if v.latency_ms is not None else float("inf"), v.size)
    )
    return Choice(
        best, f"fastest ready variant ({best.kind}, {best.latency_ms or 0:.2f} ms on the server)"
    )
