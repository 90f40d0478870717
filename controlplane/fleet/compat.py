"""Learned compatibility: variants that devices of a hardware class could not run correctly.

An install event about a device's desired variant that carries a finding whose reason is a fact
about the class (``protos.contract.findings.CLASS_FACTS``: it did not load, did not validate,
or disagreed with its golden samples) marks that variant for the device's class (``learn``).
Selection avoids a marked variant on that class (``marks_for``) until an operator clears it
(``clear``); other classes are not affected.

Invariants:
- One mark per (variant, class); later reports of the same add to ``reports`` and keep the
  first device, reason and finding (what an operator reads to judge it).
- Only what the server assigned teaches: the caller passes the device's desired variant, so a
  device cannot mark variants it was never given (and a mark only ever removes choices).
- A device with no stored profile has no class and teaches nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.errors import InvalidArgumentError, NotFoundError
from controlplane.fleet.classes import CLASS_KEY
from controlplane.fleet.models import HardwareProfile, VariantIncompatibility
from controlplane.registry.models import Model, ModelVersion, Variant
from controlplane.registry.services import check_name_version, check_variant_kind
from controlplane.validation import shown
from protos.contract.findings import CLASS_FACTS


def learn(session: Session, device_id: str, variant_id: str, finding: dict[str, Any] | None,
          message: str, *, now: dt.datetime) -> VariantIncompatibility | None:
    """Mark ``variant_id`` for the device's class when ``finding`` is a class fact; the mark
    (new or updated), or None when there is nothing to learn."""
    if not finding or finding.get("reason") not in CLASS_FACTS:
        return None
    profile = session.get(HardwareProfile, device_id)
    if profile is None or not profile.hardware_class:
        return None
    mark = session.get(VariantIncompatibility, (variant_id, profile.hardware_class))
    if mark is not None:
        mark.reports += 1
        mark.updated_at = now
        return mark
    mark = VariantIncompatibility(
        variant_id=variant_id, hardware_class=profile.hardware_class,
        class_name=profile.class_name, reason=message, finding=finding, device_id=device_id,
        reports=1, created_at=now, updated_at=now)
    session.add(mark)
    session.flush()
    return mark


def marks_for(session: Session, variant_ids: Iterable[str], hardware_class: str) -> dict[str, str]:
    """variant id -> why it is marked on ``hardware_class``, for those of ``variant_ids``."""
    ids = list(variant_ids)
    if not hardware_class or not ids:
        return {}
    rows = session.execute(
        sa.select(VariantIncompatibility.variant_id, VariantIncompatibility.reason)
        .where(VariantIncompatibility.hardware_class == hardware_class,
               VariantIncompatibility.variant_id.in_(ids)))
    return {variant_id: reason or "reported incompatible" for variant_id, reason in rows}


def list_marks(session: Session, *, model: str = "", version: str = "",
               limit: int) -> list[tuple[VariantIncompatibility, Variant]]:
    """Marks (with their variants' model and version loaded), newest first, at most ``limit``."""
    query = (sa.select(VariantIncompatibility, Variant)
             .join(Variant, Variant.id == VariantIncompatibility.variant_id)
             .join(ModelVersion, ModelVersion.id == Variant.model_version_id)
             .join(Model, Model.id == ModelVersion.model_id))
    if model:
        query = query.where(Model.name == model)
    if version:
        query = query.where(ModelVersion.version == version)
    query = query.order_by(VariantIncompatibility.updated_at.desc(),
                           VariantIncompatibility.variant_id).limit(limit)
    return [(mark, variant) for mark, variant in session.execute(query)]


def clear(session: Session, model: str, version: str, kind: str, hardware_class: str) -> int:
    """Remove the mark of ``model:version``'s ``kind`` on ``hardware_class`` (every class when
    it is ""). Returns how many were removed; raises InvalidArgumentError (a malformed name,
    version, kind or class key), NotFoundError when there was none."""
    check_name_version(model, version)
    check_variant_kind(kind)
    if hardware_class and not CLASS_KEY.fullmatch(hardware_class):
        raise InvalidArgumentError(f"bad hardware class {shown(hardware_class)}: a key such as "
                                   "hc-0123456789ab (see `edgefleet fleet classes`)")
    variant_ids = sa.select(Variant.id).join(ModelVersion).join(Model).where(
        Model.name == model, ModelVersion.version == version, Variant.kind == kind)
    query = sa.delete(VariantIncompatibility).where(
        VariantIncompatibility.variant_id.in_(variant_ids.scalar_subquery()))
    if hardware_class:
        query = query.where(VariantIncompatibility.hardware_class == hardware_class)
    removed = session.execute(query).rowcount or 0  # type: ignore[attr-defined]
    if not removed:
        where = f" on class {shown(hardware_class)}" if hardware_class else ""
        raise NotFoundError(f"{model}:{version} {kind} has no incompatibility mark{where}: see "
                            "`edgefleet fleet compat list`")
    return removed
