"""Choosing the variant a device runs, with the reason for the choice.

Pure: takes the candidate variants (with their measurements) and the device's hardware profile,
returns a choice. Among ready variants, a device is offered only those
- its interpreter ran within the accuracy tolerance when the control plane measured them
  (``measurement_for``); a variant rejected for its interpreter is never offered to it, and a
  device whose interpreter is unknown is offered only variants no interpreter rejected;
- whose own minimum runtime its interpreter meets (quantized kernels need newer operator
  versions than the float model);
and of those it gets the one measured fastest in its own interpreter (the reference
interpreter's figure where its own was not measured). Later issues add hardware classes,
memory and storage fit and learned compatibility here. Runtime versions are compared with the
shared contract's parser (``protos.contract.versions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.registry.models import Variant, VariantMeasurement
from protos.contract.interpreters import tflite_equivalent
from protos.contract.versions import at_least, is_version, version_key


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


def measurement_for(variant: Variant, name: str, version: str) -> VariantMeasurement | None:
    """The measurement that speaks for interpreter ``name`` ``version``: the same version's, or
    else the nearest measured one of that interpreter (the newest not newer than the device's,
    else the oldest newer one); None when ``name`` was never measured."""
    same = [m for m in variant.measurements if m.interpreter == name]
    exact = [m for m in same if m.interpreter_version == version]
    if exact or not same:
        return exact[0] if exact else None
    if not is_version(version):
        return same[0]
    known = sorted((m for m in same if is_version(m.interpreter_version)),
                   key=lambda m: version_key(m.interpreter_version))
    older = [m for m in known if at_least(version, m.interpreter_version)]
    if older:
        return older[-1]
    return known[0] if known else same[0]


def _excluded(variant: Variant, name: str, version: str, min_runtime: str) -> str:
    """Why ``variant`` is not offered to this interpreter, or ""."""
    if name:
        m = measurement_for(variant, name, version)
        if m is not None and m.status != "ok":
            return f"{m.status} for {name} {m.interpreter_version}: {m.reason}"
    else:
        bad = [m for m in variant.measurements if m.status != "ok"]
        if bad:
            return (f"{bad[0].status} for {bad[0].interpreter} {bad[0].interpreter_version}, "
                    "and the device has not said which interpreter it runs")
    needed = variant.min_runtime or min_runtime
    tflite = tflite_equivalent(name, version)
    if not runtime_satisfies(tflite, needed):
        return f"needs TFLite {needed}, the device's {name} {version} is TFLite {tflite}"
    return ""


def _latency(variant: Variant, name: str, version: str) -> float:
    m = measurement_for(variant, name, version) if name else None
    if m is not None and m.latency_p50_ms is not None:
        return m.latency_p50_ms
    return variant.latency_ms if variant.latency_ms is not None else float("inf")


def choose_variant(
    variants: Sequence[Variant], hardware: dict[str, Any] | None, min_runtime: str,
    *, only: str | None = None,
) -> Choice:
    """The fastest variant this device may run, or None with every variant's reason.
    ``only`` restricts the choice to that kind (``rollout create --variant``)."""
    ready = [v for v in variants if v.status == "ready" and (not only or v.kind == only)]
    if not ready:
        return Choice(None, f"no {only} variant is ready" if only else "no variant is ready")
    interp = (hardware or {}).get("interpreter") or {}
    name, version = str(interp.get("name", "")), str(interp.get("version", ""))
    reasons = {v.kind: _excluded(v, name, version, min_runtime) for v in ready}
    eligible = [v for v in ready if not reasons[v.kind]]
    if not eligible:
        return Choice(None, "no variant this device can run: " + "; ".join(
            f"{kind} {why}" for kind, why in reasons.items()))
    best = min(eligible, key=lambda v: (_latency(v, name, version), v.size or 0))
    where = f"{name} {version}".strip() or "the reference interpreter"
    reason = f"fastest variant for {where} ({best.kind}, {_latency(best, name, version):.3f} ms)"
    passed_over = [f"{kind} {why}" for kind, why in reasons.items() if why]
    if passed_over:
        reason += "; not offered: " + "; ".join(passed_over)
    return Choice(best, reason[:2000])
