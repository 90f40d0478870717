"""``device explain``: which variant of a version a device would get now, and why not the others.

The same inputs a rollout's start gives selection (``rollouts.services.start``): the device's
stored profile and class, the version's variants and measurements, the class's learned marks,
the policy the rollout flags and the settings make. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError
from controlplane.fleet import compat
from controlplane.fleet.classes import HardwareClass, hardware_class
from controlplane.fleet.selection import (
    DeviceFacts,
    Policy,
    Selection,
    select_variant,
    selection_policy,
)
from controlplane.fleet.services import get_device
from controlplane.registry.services import check_variant_kind, find_version
from controlplane.telemetry.class_metrics import class_latencies


@dataclass(frozen=True)
class Explained:
    device_id: str
    model: str
    version: str
    hardware_class: HardwareClass | None
    facts: DeviceFacts
    policy: Policy
    selection: Selection


def explain(session: Session, device_id: str, model: str, version: str, *, prefer: str,
            variant: str, settings: Settings) -> Explained:
    """Raises NotFoundError (device, model or version), InvalidArgumentError (a malformed
    name, version, kind or preference)."""
    device = get_device(session, device_id)
    mv = find_version(session, model, version)
    if variant:
        check_variant_kind(variant)
    try:
        policy = selection_policy(settings, prefer=prefer or "latency", variant=variant)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from exc
    profile = device.hardware.profile if device.hardware else None
    hclass = hardware_class(profile) if profile is not None else None
    key = hclass.key if hclass else ""
    facts = DeviceFacts.from_profile(profile, key)
    selection = select_variant(mv.variants, facts, mv.min_runtime, policy,
                               class_figures=class_latencies(session, mv, key, settings=settings),
                               marks=compat.marks_for(session, (v.id for v in mv.variants), key))
    return Explained(device.id, mv.model.name, mv.version, hclass, facts, policy, selection)
