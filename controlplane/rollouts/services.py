"""Creating rollouts, moving their devices, judging them, and operator actions.

Invariants:
- Every step that changes a rollout locks its row first (``SELECT ... FOR UPDATE`` on PostgreSQL;
  SQLite serialises writers), so two workers ticking at once cannot double-assign a device.
- A device gets a new desired state only through ``fleet.services.publish_desired_state``.
- The foundation runs a single wave of every matching device; ``Wave`` rows leave room for more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from controlplane.config import Settings
from controlplane.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from controlplane.fleet import compat
from controlplane.fleet import services as fleet
from controlplane.fleet.models import DeviceModel
from controlplane.fleet.selection import (
    PREFERENCES,
    ClassLatency,
    DeviceFacts,
    select_variant,
    selection_policy,
)
from controlplane.jobs.outbox import enqueue_after_commit
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page
from controlplane.registry.models import ModelVersion, Variant
from controlplane.registry.services import check_variant_kind, find_version
from controlplane.registry.signing import Signer
from controlplane.rollouts.models import TERMINAL, TRANSITIONS, Rollout, RolloutDevice, Wave
from controlplane.selectors import parse_target
from controlplane.telemetry.class_metrics import class_latencies
from controlplane.validation import check_selector_text, is_uuid, shown

#: The task that assigns a rollout's devices, sent after the commit that created (or resumed
#: into ``pending``) the rollout; the periodic tick starts any whose message was lost.
START_TASK = "rollouts.start"
ACTIONS = {"pause": "paused", "resume": "running", "abort": "aborted", "rollback": "rolled_back"}


@dataclass(frozen=True)
class WaveCounts:
    index: int
    devices: int
    succeeded: int
    failed: int
    skipped: int  # superseded: a newer rollout took the device over, or it was revoked
    state: str
    no_compatible: int = 0  # no variant of the version can run there (the reasons: its message)


def create_rollout(
    session: Session,
    *,
    model: str,
    version: str,
    selector: str,
    created_by: str | None,
    settings: Settings,
    now: dt.datetime,
    variant: str = "",
    prefer: str = "latency",
) -> Rollout:
    """A pending rollout of ``model:version`` to the devices ``selector`` names (stored as
    given), started after the commit.

    Raises InvalidArgumentError (no or a malformed model, version or selector, one longer than
    ``max_selector_chars``), NotFoundError, FailedPreconditionError (the version is not ready,
    or the selector matches no device, ``variant`` is not a ready variant of the version).
    """
    if not model or not version:
        raise InvalidArgumentError("name the model as NAME:VERSION, e.g. face:1.2.0")
    prefer = prefer or "latency"
    if prefer not in PREFERENCES:
        raise InvalidArgumentError(f"bad preference {shown(prefer)}: use one of "
                                   f"{', '.join(PREFERENCES)}")
    # refuse an empty, malformed or oversized one before any write
    target = parse_target(check_selector_text(selector, settings=settings))
    mv = find_version(session, model, version)
    if mv.status == "pending":
        raise FailedPreconditionError(
            f"{model}:{version} is still being measured: wait until `edgefleet model show "
            f"{model}:{version}` says ready"
        )
    if mv.status == "failed":
        raise FailedPreconditionError(f"{model}:{version} failed validation: {mv.failure}")
    if variant:
        check_variant_kind(variant)
        ready = sorted(v.kind for v in mv.variants if v.status == "ready")
        if variant not in ready:
            raise FailedPreconditionError(
                f"{model}:{version} has no ready {variant} variant (ready: "
                f"{', '.join(ready) or 'none'}): see `edgefleet model show {model}:{version}`")
    if not fleet.any_device_matches(session, target):
        # A typo in a selector would otherwise "succeed" with nothing deployed.
        raise FailedPreconditionError(
            f"selector {selector!r} matches no device: check it with "
            f"`edgefleet device list --selector '{selector}'`"
        )
    rollout = Rollout(
        model_version_id=mv.id,
        selector=selector,
        variant=variant or None,
        prefer=prefer,
        state="pending",
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    rollout.waves.append(Wave(index=0, percent=100.0, state="pending"))
    session.add(rollout)
    session.flush()
    enqueue_after_commit(session, START_TASK, rollout.id)
    return rollout


def get_rollout(session: Session, rollout_id: str, *, lock: bool = False) -> Rollout:
    """The rollout with its waves and targets. Raises NotFoundError, also for an id that is
    not a UUID (none can have it; it never reaches a query)."""
    if not is_uuid(rollout_id):
        raise NotFoundError(
            f"rollout {shown(rollout_id)} not found: see `edgefleet rollout list`")
    q = (
        sa.select(Rollout)
        .where(Rollout.id == rollout_id)
        .options(
            selectinload(Rollout.waves),
            selectinload(Rollout.targets),
        )
    )
    if lock:
        q = q.with_for_update()
    # Refresh rows already in the session: a lock is only useful on the state it returns.
    rollout = session.scalars(q.execution_options(populate_existing=True)).first()
    if rollout is None:
        raise NotFoundError(f"rollout {rollout_id} not found: see `edgefleet rollout list`")
    return rollout


_ROLLOUTS: Order[Rollout] = Order("rollout", (
    Key(Rollout.created_at, lambda r: r.created_at, "time"),
    Key(Rollout.id, lambda r: r.id),
), descending=True)


def list_rollouts(
    session: Session, page: PageAsk, *, settings: Settings, render: Callable[[Rollout], M]
) -> Page[M]:
    """A page of the rollouts, newest first, each as ``render`` makes it. Raises
    InvalidArgumentError (page size or token)."""
    query = sa.select(Rollout).options(selectinload(Rollout.waves),
                                       selectinload(Rollout.targets))
    return read_page(session, query, _ROLLOUTS, page, settings=settings, render=render)


def _model_version(session: Session, rollout: Rollout) -> ModelVersion:
    return session.scalars(
        sa.select(ModelVersion)
        .where(ModelVersion.id == rollout.model_version_id)
        .options(selectinload(ModelVersion.variants).selectinload(Variant.measurements),
                     selectinload(ModelVersion.model))
    ).one()


#: What a device reports when it will not run what it was given: it could not install it
#: (``failed``), it runs it wrongly: its golden samples were not reproduced (``incompatible``),
#: it has no room for it beside its kept versions (``insufficient_storage``; it tries again each
#: sync, but a rollout must not wait on a full disk), or it went live and broke a probation
#: limit, so the device serves its kept previous version again (``rolled_back``).
DEVICE_FAILED_STATES = frozenset({"failed", "incompatible", "insufficient_storage",
                                  "rolled_back"})


def _assign(session: Session, dm: DeviceModel | None, device_id: str, model: str,
            variant_id: str, rollout_id: str, reason: str, *, now: dt.datetime) -> bool:
    """Make ``variant_id`` the device's desired variant of ``model``; True if it runs it."""
    if dm is None:
        dm = DeviceModel(device_id=device_id, model_name=model)
        session.add(dm)
    dm.desired_variant_id = variant_id
    dm.rollout_id = rollout_id
    already = dm.active_variant_id == variant_id
    dm.state = "active" if already else "pending"
    dm.message = reason
    dm.updated_at = now
    session.flush()
    return already


def start(
    session: Session, rollout_id: str, *, signer: Signer, settings: Settings, now: dt.datetime
) -> Rollout:
    """Assign every matching device to wave 0 and publish their desired states (idempotent)."""
    rollout = get_rollout(session, rollout_id, lock=True)
    if rollout.state != "pending":
        return rollout
    mv = _model_version(session, rollout)
    selector = parse_target(rollout.selector)
    wave = rollout.waves[0]
    policy = selection_policy(settings, prefer=rollout.prefer, variant=rollout.variant)
    per_class: dict[str, tuple[dict[str, ClassLatency], dict[str, str]]] = {}
    for device in fleet.devices_matching(session, selector):
        hardware, hclass = ((device.hardware.profile, device.hardware.hardware_class)
                            if device.hardware else (None, ""))
        if hclass not in per_class:   # what the class reported and was found to fail, once
            per_class[hclass] = (
                class_latencies(session, mv, hclass, settings=settings),
                compat.marks_for(session, (v.id for v in mv.variants), hclass))
        figures, marks = per_class[hclass]
        choice = select_variant(
            mv.variants, DeviceFacts.from_profile(hardware, hclass), mv.min_runtime, policy,
            class_figures=figures, marks=marks)
        dm = session.get(DeviceModel, (device.id, mv.model.name))
        previous = dm.active_variant_id if dm else None
        already = False
        failure = choice.reason if choice.variant is None else None
        if choice.variant is not None:
            try:
                with session.begin_nested():
                    already = _assign(session, dm, device.id, mv.model.name, choice.variant.id,
                                      rollout.id, choice.reason, now=now)
                    fleet.publish_desired_state(session, device.id, signer=signer,
                                                settings=settings, now=now)
            except ResourceExhaustedError as exc:   # the device's desired state cannot grow
                failure = str(exc)
        rollout.targets.append(
            RolloutDevice(
                rollout_id=rollout.id,
                device_id=device.id,
                wave_index=0,
                variant_id=(choice.variant or mv.variants[0]).id,
                previous_variant_id=previous,
                state=("no_compatible_variant" if choice.variant is None else "failed" if failure
                       else "succeeded" if already else "pending"),
                message=failure or choice.reason,
                updated_at=now,
            )
        )
        session.flush()
    rollout.state = "running"
    rollout.updated_at = now
    wave.state = "running"
    wave.started_at = now
    session.flush()
    return rollout


def progress(session: Session, rollout_id: str, *, now: dt.datetime) -> Rollout:
    """Fold device outcomes into the rollout: wave and rollout finish when every device has."""
    rollout = get_rollout(session, rollout_id, lock=True)
    if rollout.state != "running":
        return rollout
    model_name = _model_version(session, rollout).model.name
    pending = [t for t in rollout.targets if t.state == "pending"]
    revoked = fleet.revoked_device_ids(session) if pending else set()
    for target in pending:
        dm = session.get(DeviceModel, (target.device_id, model_name))
        if dm is None or dm.rollout_id != rollout.id:
            # A newer rollout (or a rollback) took this device's model over: this rollout no
            # longer waits for it, and it counts neither as a success nor as a failure.
            target.state, target.updated_at = "superseded", now
            target.message = "a newer rollout took this device over"
            continue
        if target.device_id in revoked:
            # A revoked device will never report again: waiting for it would stall the rollout.
            target.state, target.updated_at = "superseded", now
            target.message = "the device was revoked"
            continue
        if dm.desired_variant_id != target.variant_id:
            continue
        if dm.active_variant_id == target.variant_id and dm.state == "active":
            target.state, target.message, target.updated_at = "succeeded", "", now
        elif dm.state in DEVICE_FAILED_STATES:
            target.state, target.message, target.updated_at = "failed", dm.message, now
    for wave in rollout.waves:
        members = [t for t in rollout.targets if t.wave_index == wave.index]
        if wave.state == "running" and all(t.state != "pending" for t in members):
            # Failed when a device failed, or when the wave deployed nothing because no device
            # could run any variant: nothing to build the next wave's confidence on.
            nothing = (not any(t.state == "succeeded" for t in members)
                       and any(t.state == "no_compatible_variant" for t in members))
            wave.state = ("failed" if nothing or any(t.state == "failed" for t in members)
                          else "succeeded")
            wave.finished_at = now
    if all(w.state in ("succeeded", "failed") for w in rollout.waves):
        rollout.state = "failed" if any(w.state == "failed" for w in rollout.waves) else "succeeded"
        rollout.updated_at = now
    return rollout


def change(
    session: Session,
    rollout_id: str,
    action: str,
    *,
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
) -> Rollout:
    """pause | resume | abort | rollback, along the allowed transitions."""
    target_state = ACTIONS.get(action)
    if target_state is None:
        raise InvalidArgumentError(f"unknown action {shown(action)}: use {', '.join(ACTIONS)}")
    rollout = get_rollout(session, rollout_id, lock=True)
    if target_state == "running" and rollout.state == "paused":
        # resume returns to where the rollout was: pending rollouts start on the next tick
        target_state = "running" if any(w.state != "pending" for w in rollout.waves) else "pending"
    elif target_state not in TRANSITIONS.get(rollout.state, frozenset()):
        raise FailedPreconditionError(
            f"cannot {action} a rollout that is {rollout.state}"
            + (" (it has finished)" if rollout.state in TERMINAL else "")
        )
    if target_state == "rolled_back":
        _roll_back(session, rollout, signer=signer, settings=settings, now=now)
    if target_state == "aborted":
        # The engine stops stepping an aborted rollout, so no wave may be left saying it runs.
        # Devices already given the version keep it; `rollback` is what takes it back.
        for wave in rollout.waves:
            if wave.state in ("pending", "running"):
                wave.state, wave.finished_at = "aborted", now
    rollout.state = target_state
    rollout.updated_at = now
    session.flush()
    if target_state == "pending":
        enqueue_after_commit(session, START_TASK, rollout.id)
    return rollout


def _roll_back(
    session: Session, rollout: Rollout, *, signer: Signer, settings: Settings, now: dt.datetime
) -> None:
    """Put every device this rollout touched back on the variant it ran before."""
    model_name = _model_version(session, rollout).model.name
    for target in rollout.targets:
        dm = session.get(DeviceModel, (target.device_id, model_name))
        if dm is None or dm.rollout_id != rollout.id:
            continue  # a later rollout owns this device's model now
        dm.desired_variant_id = target.previous_variant_id
        dm.rollout_id = None
        dm.state = "pending"
        dm.message = f"rolled back by rollout {rollout.id}"
        dm.updated_at = now
        session.flush()
        fleet.publish_desired_state(
            session, target.device_id, signer=signer, settings=settings, now=now
        )
        target.state = "rolled_back"
    for wave in rollout.waves:
        # A wave that never started has nothing to take back: it was cut short, not reverted.
        wave.state = "rolled_back" if wave.started_at is not None else "aborted"


def wave_counts(rollout: Rollout) -> list[WaveCounts]:
    out = []
    for wave in rollout.waves:
        members = [t for t in rollout.targets if t.wave_index == wave.index]
        out.append(
            WaveCounts(
                index=wave.index,
                devices=len(members),
                succeeded=sum(t.state == "succeeded" for t in members),
                failed=sum(t.state == "failed" for t in members),
                skipped=sum(t.state == "superseded" for t in members),
                no_compatible=sum(t.state == "no_compatible_variant" for t in members),
                state=wave.state,
            )
        )
    return out


def active_rollout_ids(session: Session) -> list[str]:
    return list(
        session.scalars(
            sa.select(Rollout.id)
            .where(Rollout.state.in_(("pending", "running")))
            .order_by(Rollout.created_at)
        )
    )
