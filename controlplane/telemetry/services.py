"""Ingesting what agents report: install events (which move device state) and metric windows.

Invariants:
- A metric window is stored at most once per device ((device, window id) is the primary key and
  inserts skip keys that exist), so an agent may re-send after a lost acknowledgement.
- Each event and each window is checked on its own: one that is malformed is refused with its
  reason (``Outcome.rejections``) and the others of the report are stored, so one bad item never
  blocks a device's others. Agents acknowledge a report as a whole once the call succeeds, so a
  refused item is not sent again.
- A report of more items than ``max_events_per_report`` / ``max_windows_per_report`` is refused
  whole (ResourceExhaustedError) and nothing of it is stored; nothing is ever dropped silently.
- What is stored is well-formed and bounded: refs shaped as the registry names things (a window
  may claim a model the device was never told to run; it is stored, but well-formed), times in
  the years 1-9999, counts that a signed 64-bit column holds, finite histogram figures that agree
  with each other (``protos.contract.histograms.check_window``).
- An event's free-text ``message`` is never a reason to refuse it: it is cut to
  ``max_event_message_chars`` with a visible marker, and NUL shows as U+FFFD (``cut_text``),
  because the event may carry the state change a rollout waits for. Nor is its ``finding``: a
  malformed one is dropped (``telemetry.findings``) and the event stored with a note at the end
  of its message saying why, within the same bound.
- A ``rolled_back`` event about the device's desired variant leaves no variant active when that
  one was: the device serves its kept previous version again, which the server did not assign.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.db import insert_ignoring_conflicts
from controlplane.errors import InvalidArgumentError, ResourceExhaustedError
from controlplane.fleet import compat
from controlplane.fleet.models import DeviceModel, HardwareProfile
from controlplane.registry.models import Model, ModelVersion, Variant
from controlplane.registry.services import check_name_version, check_variant_kind
from controlplane.telemetry.findings import check_finding
from controlplane.telemetry.models import InstallEvent, MetricWindow
from controlplane.validation import (
    WireTime,
    check_code_word,
    check_int64,
    cut_text,
    is_uuid,
    shown,
)
from protos.contract import ContractError
from protos.contract.histograms import check_window
from protos.contract.identifiers import is_sha256


@dataclass(frozen=True)
class Event:
    """An install event as an agent sent it, not yet checked. An event about no model (a
    refused desired state) has an empty ref: model, version, variant and sha256 all "".
    ``finding``: the proto's Finding as a dict of its fields, None when the event has none."""

    model: str
    version: str
    variant: str
    sha256: str
    state: str
    message: str
    at: WireTime = field(default_factory=WireTime)  # unset: when it was received
    finding: dict[str, Any] | None = None


@dataclass(frozen=True)
class Window:
    """A metric window as an agent sent it, not yet checked."""

    window_id: str
    model: str
    version: str
    variant: str
    sha256: str
    start: WireTime
    end: WireTime
    count: int
    errors: int
    nonfinite: int = 0   # of count: inferences whose outputs held NaN or Inf
    bucket_bounds_ms: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0


@dataclass(frozen=True)
class Rejection:
    """An item of a report that was refused: its id (a window id, or an event's index in the
    report) and why."""

    id: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What became of a report: items stored, items the server had already, items refused."""

    accepted: int
    duplicates: int = 0
    rejections: tuple[Rejection, ...] = ()


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


def _check_ref(model: str, version: str, variant: str, sha256: str) -> None:
    """Raises InvalidArgumentError unless the ref names a variant the way the registry does."""
    check_name_version(model, version)
    check_variant_kind(variant)
    if not is_sha256(sha256):
        raise InvalidArgumentError(f"bad sha256 {shown(sha256)}: use 64 lower-case hex digits")


def _check_report_size(items: int, limit: int, what: str, setting: str) -> None:
    if items > limit:
        raise ResourceExhaustedError(
            f"a report of {items} {what}; at most {limit} per report (setting {setting}): "
            f"nothing of it was stored, send them in smaller reports")


def _check_event(ev: Event, *, now: dt.datetime) -> dt.datetime:
    """The event's time; raises InvalidArgumentError for anything that makes it unstorable."""
    if ev.model or ev.version or ev.variant or ev.sha256:
        _check_ref(ev.model, ev.version, ev.variant, ev.sha256)
    check_code_word(ev.state, what="state")
    return ev.at.to_datetime(what="the event's time (at)", default=now)


def _finding_and_message(ev: Event, *, settings: Settings) -> tuple[dict[str, Any] | None, str]:
    """The finding to store and the message: a malformed finding is dropped and the message
    ends in a note saying why, the two together within ``max_event_message_chars``."""
    limit = settings.max_event_message_chars
    if ev.finding is None:
        return None, cut_text(ev.message, limit)
    try:
        return check_finding(ev.finding, settings=settings), cut_text(ev.message, limit)
    except InvalidArgumentError as exc:
        note = f"[finding dropped: {exc}]"
    if not ev.message:
        return None, cut_text(note, limit)
    room = limit - len(note) - 1
    if room <= 0:   # a bound too small for both: the note, which says what is missing, wins
        return None, cut_text(note, limit)
    return None, f"{cut_text(ev.message, room)} {note}"


def record_status(
    session: Session, device_id: str, events: list[Event], *, settings: Settings,
    now: dt.datetime,
) -> Outcome:
    """Store install events and move each (device, model) row to the reported state; refused
    events are named by their index in ``events``.

    Invariant: ``active_variant_id`` only ever becomes the device's desired variant.
    A malformed finding does not refuse its event (see the module's invariants).
    Raises ResourceExhaustedError for more than ``max_events_per_report`` events.
    """
    _check_report_size(len(events), settings.max_events_per_report, "install events",
                       "max_events_per_report")
    accepted, rejections = 0, []
    for index, ev in enumerate(events):
        try:
            at = _check_event(ev, now=now)
        except InvalidArgumentError as exc:
            rejections.append(Rejection(str(index), str(exc)))
            continue
        finding, message = _finding_and_message(ev, settings=settings)
        session.add(
            InstallEvent(
                device_id=device_id,
                model_name=ev.model,
                version=ev.version,
                variant=ev.variant,
                sha256=ev.sha256,
                state=ev.state,
                message=message,
                finding=finding,
                at=at,
                received_at=now,
            )
        )
        accepted += 1
        if ev.model:
            _move_device_model(session, device_id, ev, message, finding, now=now)
    return Outcome(accepted=accepted, rejections=tuple(rejections))


def _move_device_model(
    session: Session, device_id: str, ev: Event, message: str,
    finding: dict[str, Any] | None, *, now: dt.datetime
) -> None:
    dm = session.get(DeviceModel, (device_id, ev.model))
    if dm is None:
        return
    variant_id = _variant_id(session, ev.model, ev.version, ev.variant, ev.sha256)
    if variant_id is None:
        return
    if ev.state == "removed" and variant_id == dm.active_variant_id != dm.desired_variant_id:
        dm.active_variant_id = None  # only ever clears: it cannot grant anything
    # Only events about what the device was told to run move its row. A device claiming to
    # run anything else gains nothing: "active" grants download rights and becomes the
    # rollback target, so it must be what the server assigned. A late event about an older
    # variant must not mask the current one either.
    if variant_id != dm.desired_variant_id:
        return
    compat.learn(session, device_id, variant_id, finding, message, now=now)
    if ev.state == "active":
        dm.active_variant_id = variant_id
    elif ev.state == "rolled_back" and dm.active_variant_id == variant_id:
        dm.active_variant_id = None  # back on its kept version, which the server did not assign
    dm.state = ev.state
    dm.message = message
    dm.updated_at = now


def _window_row(w: Window, *, settings: Settings, now: dt.datetime) -> dict[str, object]:
    """The row to insert for ``w``; raises InvalidArgumentError naming the first problem."""
    if not is_uuid(w.window_id):
        raise InvalidArgumentError(
            f"window_id {shown(w.window_id)} is not a UUID (lower-case, with hyphens)")
    _check_ref(w.model, w.version, w.variant, w.sha256)
    if len(w.bucket_bounds_ms) > settings.max_window_buckets:
        raise InvalidArgumentError(
            f"the window has {len(w.bucket_bounds_ms)} bucket bounds; at most "
            f"{settings.max_window_buckets} (setting max_window_buckets)")
    check_int64(w.count, what="count")
    check_int64(w.errors, what="errors")
    check_int64(w.nonfinite, what="nonfinite")
    try:
        check_window(w.bucket_bounds_ms, w.bucket_counts, count=w.count, errors=w.errors,
                     nonfinite=w.nonfinite, latency_sum_ms=w.latency_sum_ms,
                     latency_max_ms=w.latency_max_ms)
    except ContractError as exc:
        raise InvalidArgumentError(str(exc)) from exc
    start = w.start.to_datetime(what="the window's start", default=now)
    end = w.end.to_datetime(what="the window's end", default=now)
    if end < start:
        raise InvalidArgumentError(f"the window ends ({end:%Y-%m-%dT%H:%M:%S}Z) before it "
                                   f"starts ({start:%Y-%m-%dT%H:%M:%S}Z)")
    return {
        "window_id": w.window_id,
        "model_name": w.model,
        "version": w.version,
        "variant": w.variant,
        "sha256": w.sha256,
        "start": start,
        "end": end,
        "count": w.count,
        "errors": w.errors,
        "nonfinite": w.nonfinite,
        "bucket_bounds_ms": list(w.bucket_bounds_ms),
        "bucket_counts": list(w.bucket_counts),
        "latency_sum_ms": w.latency_sum_ms,
        "latency_max_ms": w.latency_max_ms,
    }


def _rejected_id(window_id: str) -> str:
    # Echoed back in the acknowledgement: bounded, so a report of long ids cannot make the
    # answer outgrow its message (1000 windows x (36 + a reason of some 200 characters)).
    return window_id if len(window_id) <= 36 else window_id[:36] + "..."


def record_metrics(
    session: Session, device_id: str, windows: list[Window], *, settings: Settings,
    now: dt.datetime,
) -> Outcome:
    """Insert the well-formed windows not seen before; refuse the others one by one.

    Raises ResourceExhaustedError for more than ``max_windows_per_report`` windows.
    """
    _check_report_size(len(windows), settings.max_windows_per_report, "metric windows",
                       "max_windows_per_report")
    rows, rejections = [], []
    for w in windows:
        try:
            rows.append(_window_row(w, settings=settings, now=now))
        except InvalidArgumentError as exc:
            rejections.append(Rejection(_rejected_id(w.window_id), str(exc)))
    if not rows:
        return Outcome(accepted=0, rejections=tuple(rejections))
    profile = session.get(HardwareProfile, device_id)
    hclass = profile.hardware_class if profile is not None else ""
    rows = [{**row, "device_id": device_id, "received_at": now, "hardware_class": hclass}
            for row in rows]
    result = insert_ignoring_conflicts(session, MetricWindow, rows,
                                       key=["device_id", "window_id"],
                                       returning=MetricWindow.window_id)
    accepted = len(result.all())
    return Outcome(accepted=accepted, duplicates=len(rows) - accepted,
                   rejections=tuple(rejections))
