"""Choosing the variant a device runs, with the reason for the choice.

Pure: takes the candidate variants and the device's hardware profile, returns a choice. The
foundation prefers, among ready variants whose minimum runtime the device's interpreter meets,
the one measured fastest; later issues add hardware classes and learned compatibility here.
Runtime versions are compared with the shared contract's parser (``protos.contract.versions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.registry.models import Variant
from protos.contract.interpreters import tflite_equivalent
from protos.contract.versions import at_least, is_version


@dataclass(frozen=True)
class Choice:
    variant: Variant | None
    reason: str


def runtime_satisfies(device_version: str, min_runtime: str) -> bool:
    """Whether a device whose interpreter is TFLite ``device_version`` meets ``min_runtime``.

    An unknown or unreadable device version is let through: the agent's own validation decides.
    """
    if not min_runtime or not is_version(device_version):
        return True
    return at_least(device_version, min_runtime)


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
