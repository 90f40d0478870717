"""Choosing the variant a device runs, and saying why every other one was not chosen.

Pure: reads the version's variants (with their measurements), what the device is
(``DeviceFacts``, from its hardware profile), the rollout's preference (``Policy``), what devices
of the device's hardware class reported (``ClassFigures``) and learned incompatibilities
(``marks``); returns a ``Selection``: the chosen variant (or None) and one ``Verdict`` per
variant, eligible or not, with the figures used. No session, no clock, no I/O.

A variant is eligible for a device only when every constraint holds:
- it is ready (``--variant KIND`` restricts to that kind, still subject to the rest);
- the optimization report did not reject it for the device's interpreter (``measurement_for``:
  the same version's measurement, else the nearest one of that interpreter); a device that has
  not said which interpreter it runs is offered only variants no interpreter rejected;
- its minimum runtime is met (``runtime_satisfies``, TFLite release numbers, ai-edge-litert
  mapped by the shared contract);
- it was not marked incompatible for the device's hardware class (learned from agents);
- memory fit: artifact plus arena estimate within ``memory_share`` of the device's available RAM;
- storage fit: the artifact beside the kept ones, ``storage_reserve_bytes`` left free (the
  agent's own check before a download, ``AgentStore.check_room``, uses the same reserve).
A figure the device did not report (RAM, storage: 0 or absent) is not a reason to refuse: the
agent's own checks decide, and the verdict says the figure was unknown.

Among the eligible, ``Policy.prefer`` orders: ``latency`` (default; every eligible variant is
already within the accuracy tolerance) by the latency devices of the class reported once at least
``min_class_inferences`` inferences arrived, else the latency measured for the device's
interpreter, else the reference interpreter's; ``accuracy`` by the worst output's cosine
similarity to the reference (higher first); ``size`` by artifact bytes. Ties go to the smaller
artifact, then the kind's name, so the choice is deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.config import Settings
from controlplane.fleet.classes import hardware_facts
from controlplane.registry.models import Variant, VariantMeasurement
from protos.contract.interpreters import tflite_equivalent
from protos.contract.versions import at_least, is_version, version_key

PREFERENCES = ("latency", "accuracy", "size")
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class DeviceFacts:
    """What selection reads of a device. 0 for a byte figure means "not reported"."""

    interpreter: str = ""
    interpreter_version: str = ""
    ram_available_bytes: int = 0
    storage_free_bytes: int = 0
    hardware_class: str = ""

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any] | None,
                     hardware_class: str = "") -> DeviceFacts:
        """From a stored profile (``pb.HardwareProfile`` as ``MessageToDict`` with proto field
        names makes it: int64 figures are strings, absent fields are 0)."""
        facts = hardware_facts(profile)   # the one reading of a stored profile
        return cls(interpreter=str(facts["interpreter"]),
                   interpreter_version=str(facts["interpreter_version"]),
                   ram_available_bytes=int(facts["ram_available_bytes"]),  # type: ignore[call-overload]
                   storage_free_bytes=int(facts["storage_free_bytes"]),  # type: ignore[call-overload]
                   hardware_class=hardware_class)


@dataclass(frozen=True)
class Policy:
    """The rollout's preference and the fit settings (``selection_policy`` makes one from the
    control plane's settings)."""

    memory_share: float                 # of available RAM a model (plus arena) may take
    storage_reserve_bytes: int          # left free after the download
    min_class_inferences: int           # before a class's reported latency is trusted
    prefer: str = "latency"
    variant: str | None = None          # ``--variant KIND``: only that kind

    def __post_init__(self) -> None:
        if self.prefer not in PREFERENCES:
            raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)}")


@dataclass(frozen=True)
class ClassLatency:
    """What devices of one hardware class reported for one variant."""

    latency_p50_ms: float
    inferences: int


# Figures devices of the device's class reported, by variant id.
ClassFigures = Mapping[str, ClassLatency]


@dataclass(frozen=True)
class Verdict:
    """One variant, as selection saw it."""

    kind: str
    variant_id: str
    eligible: bool
    reasons: tuple[str, ...] = ()
    latency_ms: float | None = None
    latency_source: str = ""
    accuracy_cosine: float | None = None
    size_bytes: int | None = None
    memory_bytes: int | None = None
    chosen: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "eligible": self.eligible, "chosen": self.chosen,
                "reasons": list(self.reasons), "latency_ms": self.latency_ms,
                "latency_source": self.latency_source, "accuracy_cosine": self.accuracy_cosine,
                "size_bytes": self.size_bytes, "memory_bytes": self.memory_bytes}


@dataclass(frozen=True)
class Selection:
    variant: Variant | None
    reason: str
    verdicts: tuple[Verdict, ...] = field(default_factory=tuple)


def selection_policy(settings: Settings, *, prefer: str = "latency",
                     variant: str | None = None) -> Policy:
    """The policy a rollout's flags and the control plane's settings make."""
    return Policy(prefer=prefer, variant=variant or None,
                  memory_share=settings.selection_memory_share,
                  storage_reserve_bytes=settings.selection_storage_reserve_bytes,
                  min_class_inferences=settings.selection_min_class_inferences)


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


def memory_estimate(variant: Variant) -> int | None:
    """Bytes the variant takes loaded: its artifact plus the arena measured when it was
    optimized (``arena_bytes``); None when its size is unknown."""
    if variant.size is None:
        return None
    return variant.size + (variant.arena_bytes or 0)


def select_variant(variants: Sequence[Variant], device: DeviceFacts, min_runtime: str,
                   policy: Policy, *, class_figures: ClassFigures | None = None,
                   marks: Mapping[str, str] | None = None) -> Selection:
    """The variant this device should run under ``policy``, with a verdict for every variant.

    ``marks``: variant id -> why it was found incompatible on the device's hardware class.
    """
    verdicts = [_verdict(v, device, min_runtime, policy, class_figures or {}, marks or {})
                for v in variants]
    eligible = [(v, vd) for v, vd in zip(variants, verdicts, strict=True) if vd.eligible]
    if not eligible:
        # With --variant, the other kinds' "not asked for" says nothing worth reading.
        shown = [vd for vd in verdicts if not policy.variant or vd.kind == policy.variant]
        why = "; ".join(f"{vd.kind} {', '.join(vd.reasons)}" for vd in shown) or \
            f"the version has no {policy.variant} variant"
        if not variants:
            why = "the version has no variants"
        return Selection(None, _cut(f"no variant this device can run: {why}"), tuple(verdicts))
    best, best_verdict = min(eligible, key=lambda pair: _rank(pair[1], policy.prefer))
    verdicts = [dataclasses.replace(vd, chosen=True) if vd is best_verdict else vd
                for vd in verdicts]
    return Selection(best, _cut(_explain(best_verdict, policy, verdicts)), tuple(verdicts))


def _verdict(v: Variant, device: DeviceFacts, min_runtime: str, policy: Policy,
             class_figures: ClassFigures, marks: Mapping[str, str]) -> Verdict:
    reasons: list[str] = []
    if v.status != "ready":
        reasons.append(f"not ready ({v.status})")
    if policy.variant and v.kind != policy.variant:
        reasons.append(f"the rollout asks for {policy.variant}")
    reasons.extend(_interpreter_reasons(v, device, min_runtime))
    if v.id in marks:
        reasons.append(f"marked incompatible with class {device.hardware_class}: {marks[v.id]}")
    memory = memory_estimate(v)
    room = int(device.ram_available_bytes * policy.memory_share)
    if memory is not None and device.ram_available_bytes and memory > room:
        reasons.append(f"needs {_mib(memory)} loaded, {policy.memory_share:.0%} of the "
                       f"{_mib(device.ram_available_bytes)} RAM available is {_mib(room)}")
    if v.size is not None and device.storage_free_bytes \
            and v.size + policy.storage_reserve_bytes > device.storage_free_bytes:
        reasons.append(f"needs {_mib(v.size)} of storage with {_mib(policy.storage_reserve_bytes)}"
                       f" kept free, the device has {_mib(device.storage_free_bytes)} free")
    latency, source = _latency(v, device, policy, class_figures)
    return Verdict(kind=v.kind, variant_id=v.id or "", eligible=not reasons,
                   reasons=tuple(reasons), latency_ms=latency, latency_source=source,
                   accuracy_cosine=_cosine(v, device), size_bytes=v.size, memory_bytes=memory)


def _interpreter_reasons(v: Variant, device: DeviceFacts, min_runtime: str) -> list[str]:
    name, version = device.interpreter, device.interpreter_version
    reasons = []
    if name:
        m = measurement_for(v, name, version)
        if m is not None and m.status != "ok":
            reasons.append(f"{m.status} for {name} {m.interpreter_version}: {m.reason}")
    else:
        bad = [m for m in v.measurements if m.status != "ok"]
        if bad:
            reasons.append(f"{bad[0].status} for {bad[0].interpreter} "
                           f"{bad[0].interpreter_version}, and the device has not said which "
                           "interpreter it runs")
    needed = v.min_runtime or min_runtime
    tflite = tflite_equivalent(name, version)
    if not runtime_satisfies(tflite, needed):
        reasons.append(f"needs TFLite {needed}, the device's {name} {version} is TFLite {tflite}")
    return reasons


def _latency(v: Variant, device: DeviceFacts, policy: Policy,
             class_figures: ClassFigures) -> tuple[float | None, str]:
    reported = class_figures.get(v.id or "")
    if reported is not None and reported.inferences >= policy.min_class_inferences:
        return reported.latency_p50_ms, (f"p50 reported by class {device.hardware_class} "
                                         f"({reported.inferences} inferences)")
    m = measurement_for(v, device.interpreter, device.interpreter_version) \
        if device.interpreter else None
    if m is not None and m.latency_p50_ms is not None:
        return m.latency_p50_ms, f"p50 measured in {m.interpreter} {m.interpreter_version}"
    if v.latency_ms is not None:
        return v.latency_ms, f"p50 measured in {v.measured_with or 'the reference interpreter'}"
    return None, "not measured"


def _cosine(v: Variant, device: DeviceFacts) -> float | None:
    m = measurement_for(v, device.interpreter, device.interpreter_version) \
        if device.interpreter else None
    rows = [m] if m is not None else [r for r in v.measurements if r.status == "ok"][:1]
    figures = [float(a["cosine"]) for r in rows for a in (r.accuracy or []) if "cosine" in a]
    return min(figures) if figures else None


def _rank(vd: Verdict, prefer: str) -> tuple[float, int, str]:
    size = vd.size_bytes if vd.size_bytes is not None else 2**62
    latency = vd.latency_ms if vd.latency_ms is not None else math.inf
    if prefer == "accuracy":
        first = -(vd.accuracy_cosine if vd.accuracy_cosine is not None else -math.inf)
    elif prefer == "size":
        first = float(size)
    else:
        first = latency
    return first, size, vd.kind


def _explain(best: Verdict, policy: Policy, verdicts: list[Verdict]) -> str:
    if policy.prefer == "accuracy":
        figure = f"cosine {best.accuracy_cosine}"
    elif policy.prefer == "size":
        figure = f"{best.size_bytes} bytes"
    else:
        figure = (f"{best.latency_ms:.3f} ms, {best.latency_source}"
                  if best.latency_ms is not None else "not measured")
    text = f"{best.kind}: preferred by {policy.prefer} ({figure})"
    others = [f"{vd.kind} {', '.join(vd.reasons)}" for vd in verdicts if vd.reasons]
    if others:
        text += "; not offered: " + "; ".join(others)
    return text


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 3] + "..."


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"
