"""Ingesting what agents report: install events (which move device state) and metric windows.

Invariant: a metric window is stored at most once per device ((device, window id) is the primary
key and inserts skip keys that exist), so an agent may re-send after a lost acknowledgement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from controlplane.fleet.models import DeviceModel
from controlplane.registry.models import Model, ModelVersion, Variant
from controlplane.telemetry.models import InstallEvent, MetricWindow

MAX_EVENTS = 100
MAX_WINDOWS = 1000


@dataclass(frozen=True)
class Event:
    model: str
    version: str
    variant: str
    sha256: str
    state: str
    message: str
    at: dt.datetime


def _variant_id(session: Session, model: str, version: str, kind: str, sha256: str) -> str | None:
    return session.scalar(
        sa.select(Variant.id)
        .join(ModelVersion, Variant.model_version_id == ModelVersion.id)
        .join(Model, ModelVersion.model_id == Model.id)
        .where(
            Model.name == model,
            ModelVersion.version == version,
            Variant.kind == kind,
            Variant.artifact_sha256 == sha256,
        )
    )


def record_status(
    session: Session, device_id: str, events: list[Event], *, now: dt.datetime
) -> int:
    """Store install events and move each (device, model) row to the reported state.

    Invariant: ``active_variant_id`` only ever becomes the device's desired variant.
    """
    for ev in events[:MAX_EVENTS]:
        session.add(
            InstallEvent(
                device_id=device_id,
                model_name=ev.model[:200],
                version=ev.version[:64],
                variant=ev.variant[:32],
                sha256=ev.sha256[:64],
                state=ev.state[:32],
                message=ev.message[:2000],
                at=ev.at,
                received_at=now,
            )
        )
        dm = session.get(DeviceModel, (device_id, ev.model))
        if dm is None:
            continue
        variant_id = _variant_id(session, ev.model, ev.version, ev.variant, ev.sha256)
        if variant_id is None:
            continue
        if ev.state == "removed" and variant_id == dm.active_variant_id != dm.desired_variant_id:
            dm.active_variant_id = None  # only ever clears: it cannot grant anything
        # Only events about what the device was told to run move its row. A device claiming to
        # run anything else gains nothing: "active" grants download rights and becomes the
        # rollback target, so it must be what the server assigned. A late event about an older
        # variant must not mask the current one either.
        if variant_id != dm.desired_variant_id:
            continue
        if ev.state == "active":
            dm.active_variant_id = variant_id
        dm.state = ev.state[:32]
        dm.message = ev.message[:2000]
        dm.updated_at = now
    return min(len(events), MAX_EVENTS)


def record_metrics(
    session: Session, device_id: str, windows: list[dict[str, Any]], *, now: dt.datetime
) -> tuple[int, int]:
    """Insert windows not seen before; return (accepted, duplicates)."""
    windows = windows[:MAX_WINDOWS]
    if not windows:
        return 0, 0
    rows = [{**w, "device_id": device_id, "received_at": now} for w in windows]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(MetricWindow).on_conflict_do_nothing(index_elements=["device_id", "window_id"])
    result = session.execute(stmt.returning(MetricWindow.window_id), rows)
    accepted = len(result.all())
    return accepted, len(rows) - accepted
