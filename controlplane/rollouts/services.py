"""Creating rollouts, operator actions on them, and what ``rollout status`` and ``history`` read.

Invariants:
- Every change to a rollout locks its row first (``SELECT ... FOR UPDATE`` on PostgreSQL;
  SQLite serialises writers), so an operator's action and the engine's step never interleave.
- One open rollout (pending, running or paused) at a time per model and device: a rollout whose
  devices another open rollout of the model still works on is refused, naming that rollout.
- Every operator action is written to the audit log in its own transaction, with who did it.
- The engine (``rollouts.engine.step``) runs after the commit that asked for it: the step task
  is sent after creation and resume, and after a device report about a rollout's device
  (``nudge``, at most once per ``rollout_nudge_seconds`` per process); the periodic tick steps
  whatever is open in any case.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from controlplane.audit import services as audit
from controlplane.audit.models import AuditEvent
from controlplane.config import Settings
from controlplane.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from controlplane.fleet import services as fleet
from controlplane.fleet.models import DeviceModel
from controlplane.fleet.selection import PREFERENCES
from controlplane.jobs.outbox import enqueue_after_commit
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page
from controlplane.registry.services import check_variant_kind, find_version
from controlplane.registry.signing import Signer
from controlplane.rollouts import engine
from controlplane.rollouts.models import (
    FAILED,
    OPEN,
    TERMINAL,
    TRANSITIONS,
    Rollout,
    RolloutDevice,
    Wave,
)
from controlplane.rollouts.plan import Plan, PlanAsk
from controlplane.selectors import parse_target
from controlplane.validation import check_selector_text, is_uuid, shown

#: The task that steps one rollout (``engine.step``).
STEP_TASK = "rollouts.step"
ACTIONS = {"pause": "paused", "resume": "running", "abort": "aborted", "rollback": "rolled_back"}
#: How the audit log names each action once taken (``rollout.paused``, ``rollout.resumed``, ...).
ACTIONS_PAST = {"pause": "paused", "resume": "resumed", "abort": "aborted",
                "rollback": "rolled_back"}


def create_rollout(
    session: Session,
    *,
    model: str,
    version: str,
    selector: str,
    actor: audit.Actor,
    settings: Settings,
    now: dt.datetime,
    variant: str = "",
    prefer: str = "latency",
    plan: PlanAsk | None = None,
) -> Rollout:
    """A pending rollout of ``model:version`` to the devices ``selector`` names (stored as
    given), stepped after the commit.

    Raises InvalidArgumentError (no or a malformed model, version, selector or plan),
    NotFoundError, FailedPreconditionError (the version is not ready, the selector matches no
    device, ``variant`` is not a ready variant of the version, or another open rollout of the
    model has some of the devices).
    """
    if not model or not version:
        raise InvalidArgumentError("name the model as NAME:VERSION, e.g. face:1.2.0")
    prefer = prefer or "latency"
    if prefer not in PREFERENCES:
        raise InvalidArgumentError(f"bad preference {shown(prefer)}: use one of "
                                   f"{', '.join(PREFERENCES)}")
    # refuse an empty, malformed or oversized one before any write
    target = parse_target(check_selector_text(selector, settings=settings))
    built = Plan.build(plan or PlanAsk(), settings=settings, now=now)
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
    matches = {m.device_id for m in fleet.matching_devices(session, target)}
    if not matches:
        # A typo in a selector would otherwise "succeed" with nothing deployed.
        raise FailedPreconditionError(
            f"selector {selector!r} matches no device: check it with "
            f"`edgefleet device list --selector '{selector}'`"
        )
    _refuse_overlap(session, model, matches)
    rollout = Rollout(
        model_version_id=mv.id, model_name=model, selector=selector, variant=variant or None,
        prefer=prefer, state="pending", created_by=actor.id, created_at=now, updated_at=now,
        plan=built.to_json(),
    )
    for index, entry in enumerate(built.waves):
        rollout.waves.append(Wave(index=index, percent=float(entry[:-1]) if entry.endswith("%")
                                  else 0.0, state="pending"))
    session.add(rollout)
    session.flush()
    audit.record(session, actor, "rollout.created", subject="rollout", subject_id=rollout.id,
                 now=now, settings=settings,
                 details={"model": model, "version": version, "selector": selector,
                          "variant": variant, "prefer": prefer, "plan": built.to_json(),
                          "devices_matching": len(matches)})
    enqueue_after_commit(session, STEP_TASK, rollout.id)
    return rollout


def _refuse_overlap(session: Session, model: str, devices: set[str]) -> None:
    """Raises FailedPreconditionError when an open rollout of ``model`` has one of ``devices``
    (started, or a pending one whose selector matches it)."""
    owned = engine.owned_elsewhere(session, model, "")
    clash = next((d for d in sorted(devices) if d in owned), None)
    if clash is None:
        for other in session.scalars(sa.select(Rollout).where(
                Rollout.model_name == model, Rollout.state == "pending")):
            others = {m.device_id for m in fleet.matching_devices(session,
                                                                  parse_target(other.selector))}
            if shared := sorted(devices & others):
                clash, owned = shared[0], {shared[0]: other.id}
                break
    if clash is not None:
        raise FailedPreconditionError(
            f"device {clash} is in rollout {owned[clash]} of {model}, which is still open: one "
            f"rollout at a time per model and device. Wait for it to finish, or `edgefleet "
            f"rollout abort {owned[clash]}` first")


def get_rollout(session: Session, rollout_id: str, *, lock: bool = False) -> Rollout:
    """The rollout with its waves (not its targets: ``targets_of`` reads those). Raises
    NotFoundError, also for an id that is not a UUID (none can have it; it never reaches a
    query)."""
    if not is_uuid(rollout_id):
        raise NotFoundError(
            f"rollout {shown(rollout_id)} not found: see `edgefleet rollout list`")
    q = sa.select(Rollout).where(Rollout.id == rollout_id).options(selectinload(Rollout.waves))
    if lock:
        q = q.with_for_update()
    # Refresh rows already in the session: a lock is only useful on the state it returns.
    rollout = session.scalars(q.execution_options(populate_existing=True)).first()
    if rollout is None:
        raise NotFoundError(f"rollout {rollout_id} not found: see `edgefleet rollout list`")
    return rollout


def targets_of(session: Session, rollout_id: str) -> list[RolloutDevice]:
    """Every device of the rollout, in draw order."""
    return list(session.scalars(sa.select(RolloutDevice)
                                .where(RolloutDevice.rollout_id == rollout_id)
                                .order_by(RolloutDevice.wave_index, RolloutDevice.position)))


_ROLLOUTS: Order[Rollout] = Order("rollout", (
    Key(Rollout.created_at, lambda r: r.created_at, "time"),
    Key(Rollout.id, lambda r: r.id),
), descending=True)


def list_rollouts(
    session: Session, page: PageAsk, *, settings: Settings, render: Callable[[Rollout], M]
) -> Page[M]:
    """A page of the rollouts, newest first, each as ``render`` makes it. Raises
    InvalidArgumentError (page size or token)."""
    query = sa.select(Rollout).options(selectinload(Rollout.waves))
    return read_page(session, query, _ROLLOUTS, page, settings=settings, render=render)


def step(session: Session, rollout_id: str, *, signer: Signer, settings: Settings,
         now: dt.datetime) -> Rollout:
    """Lock the rollout and let the engine move it (idempotent)."""
    return engine.step(session, get_rollout(session, rollout_id, lock=True), signer=signer,
                       settings=settings, now=now)


def change(
    session: Session,
    rollout_id: str,
    action: str,
    *,
    actor: audit.Actor,
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
    reason: str = "",
) -> Rollout:
    """pause | resume | abort | rollback, along the allowed transitions, recorded with who
    asked and why. Raises InvalidArgumentError (action, reason), FailedPreconditionError."""
    target_state = ACTIONS.get(action)
    if target_state is None:
        raise InvalidArgumentError(f"unknown action {shown(action)}: use {', '.join(ACTIONS)}")
    audit.check_reason(reason, settings=settings)
    rollout = get_rollout(session, rollout_id, lock=True)
    if action == "resume" and rollout.state != "paused":
        raise FailedPreconditionError(f"cannot resume a rollout that is {rollout.state}: only "
                                      "a paused one")
    if target_state == "running" and rollout.state == "paused":
        # resume returns to where the rollout was: one never started is stepped as pending
        target_state = "running" if rollout.started_at is not None else "pending"
    elif target_state not in TRANSITIONS.get(rollout.state, frozenset()):
        raise FailedPreconditionError(
            f"cannot {action} a rollout that is {rollout.state}"
            + (" (it has finished)" if rollout.state in TERMINAL else "")
        )
    details: dict[str, object] = {"from": rollout.state}
    if action == "resume":
        details.update(_resume(session, rollout, now=now))
    if target_state == "rolled_back":
        roll_back(session, rollout, signer=signer, settings=settings, now=now, actor=actor,
                  reason=reason)
        return rollout
    if target_state == "aborted":
        # The engine stops stepping an aborted rollout, so no wave may be left saying it runs.
        # Devices already given the version keep it; `rollback` is what takes it back.
        for wave in rollout.waves:
            if wave.state in ("pending", "running", "baking", "gated"):
                wave.state, wave.finished_at = "aborted", now
    rollout.state = target_state
    rollout.reason = reason if target_state in ("paused", "aborted") else ""
    rollout.updated_at = now
    audit.record(session, actor, f"rollout.{ACTIONS_PAST[action]}", subject="rollout",
                 subject_id=rollout.id, now=now, reason=reason, settings=settings,
                 details=details)
    session.flush()
    if target_state in ("pending", "running"):
        enqueue_after_commit(session, STEP_TASK, rollout.id)
    return rollout



def _resume(session: Session, rollout: Rollout, *, now: dt.datetime) -> dict[str, object]:
    """An operator resuming a wave its gates stopped accepts it: it passes. Started devices
    get a fresh step timeout: a pause is not theirs to pay for."""
    accepted = []
    for wave in rollout.waves:
        if wave.state == "gated":
            wave.state, wave.finished_at = "succeeded", now
            accepted.append(wave.index)
    session.execute(sa.update(RolloutDevice)
                    .where(RolloutDevice.rollout_id == rollout.id,
                           RolloutDevice.state == "pending").values(step_at=now))
    return {"accepted_waves": accepted, "over": rollout.reason} if accepted else {}


def roll_back(session: Session, rollout: Rollout, *, signer: Signer, settings: Settings,
              now: dt.datetime, actor: audit.Actor, reason: str) -> None:
    """Put every device this rollout gave the version back on the variant it ran before (the
    agent swaps back to its kept copy without downloading it), and record it."""
    model_name = engine.model_version(session, rollout).model.name
    touched = 0
    for target in session.scalars(sa.select(RolloutDevice).where(
            RolloutDevice.rollout_id == rollout.id, RolloutDevice.assigned_at.is_not(None))):
        dm = session.get(DeviceModel, (target.device_id, model_name))
        if dm is None or dm.rollout_id != rollout.id:
            continue  # a later rollout owns this device's model now
        dm.desired_variant_id = target.previous_variant_id
        dm.rollout_id = None
        dm.hold = False
        dm.state = "pending"
        dm.message = f"rolled back by rollout {rollout.id}"
        dm.updated_at = now
        session.flush()
        fleet.publish_desired_state(
            session, target.device_id, signer=signer, settings=settings, now=now
        )
        target.state, target.updated_at = "rolled_back", now
        touched += 1
    for wave in rollout.waves:
        # A wave that never started has nothing to take back: it was cut short, not reverted.
        wave.state = "rolled_back" if wave.started_at is not None else "aborted"
    rollout.state, rollout.reason, rollout.updated_at = "rolled_back", reason, now
    audit.record(session, actor, "rollout.rolled_back", subject="rollout",
                 subject_id=rollout.id, now=now, reason=reason, settings=settings,
                 details={"devices": touched})
    session.flush()


# -- what status shows ------------------------------------------------------------------------

@dataclass(frozen=True)
class WaveCounts:
    index: int
    target: int
    devices: int
    succeeded: int
    failed: int       # failed and timed out
    timed_out: int
    skipped: int      # superseded: a newer rollout took the device over, or it was revoked
    no_compatible: int
    queued: int
    in_progress: int
    held: int
    rolled_back: int
    wave: Wave


@dataclass(frozen=True)
class RolloutView:
    """A rollout as ``rollout status`` shows it: counts per wave, the failed devices, the
    version it replaces."""

    rollout: Rollout
    plan: Plan
    waves: list[WaveCounts]
    failed: list[RolloutDevice]
    previous_version: str | None


def view(session: Session, rollout: Rollout, *, settings: Settings) -> RolloutView:
    counts = engine.counts_by_state(session, rollout.id)

    def n(wave: int, *states: str) -> int:
        return sum(counts.get((wave, st), 0) for st in states)

    waves = [WaveCounts(
        index=w.index, target=w.target, devices=sum(v for (i, _), v in counts.items()
                                                    if i == w.index),
        succeeded=n(w.index, "succeeded"), failed=n(w.index, *FAILED),
        timed_out=n(w.index, "timed_out"), skipped=n(w.index, "superseded"),
        no_compatible=n(w.index, "no_compatible_variant"), queued=n(w.index, "queued"),
        in_progress=n(w.index, "pending"), held=n(w.index, "held"),
        rolled_back=n(w.index, "rolled_back"), wave=w) for w in rollout.waves]
    failed = list(session.scalars(
        sa.select(RolloutDevice)
        .where(RolloutDevice.rollout_id == rollout.id,
               RolloutDevice.state.in_((*FAILED, "no_compatible_variant")))
        .order_by(RolloutDevice.state, RolloutDevice.device_id)
        .limit(settings.max_failures_shown)))
    return RolloutView(rollout, Plan.from_json(rollout.plan or {}), waves, failed,
                       engine.previous_version(session, rollout.id))


def history(session: Session, rollout_id: str, page: PageAsk, *, settings: Settings,
            render: Callable[[AuditEvent], M]) -> Page[M]:
    """The rollout's audit entries, oldest first. Raises NotFoundError, InvalidArgumentError."""
    get_rollout(session, rollout_id)
    return audit.list_events(session, page, settings=settings, render=render,
                             subject_id=rollout_id, oldest_first=True)


def open_rollout_ids(session: Session) -> list[str]:
    """The rollouts the periodic tick steps: pending (their start may have come) and running."""
    return list(session.scalars(
        sa.select(Rollout.id).where(Rollout.state.in_(("pending", "running")))
        .order_by(Rollout.created_at)))


# -- stepping on device reports ---------------------------------------------------------------

_nudged: dict[str, float] = {}
_nudged_lock = threading.Lock()


def nudge(session: Session, device_id: str, models: Iterable[str], *,
          settings: Settings) -> None:
    """After a device's report commits, step the open rollouts it is part of: an install
    outcome moves its rollout at once, not at the next tick. At most once per rollout per
    ``rollout_nudge_seconds`` in this process: a wave of 10,000 devices reporting together
    sends a handful of steps, not 10,000 (the tick catches what a skipped nudge left)."""
    names = sorted(set(models))
    if not names:
        return
    ids: set[str] = set(session.scalars(
        sa.select(Rollout.id)
        .join(DeviceModel, DeviceModel.rollout_id == Rollout.id)
        .where(DeviceModel.device_id == device_id, DeviceModel.model_name.in_(names),
               Rollout.state.in_(tuple(OPEN - {"paused"})))))
    clock = time.monotonic()
    with _nudged_lock:
        due = [r for r in ids if clock - _nudged.get(r, -1e9) >= settings.rollout_nudge_seconds]
        for r in due:
            _nudged[r] = clock
        if len(_nudged) > 10_000:   # forget rollouts nudged long ago
            for r, at in list(_nudged.items()):
                if clock - at > 60:
                    del _nudged[r]
    for rollout_id in due:
        enqueue_after_commit(session, STEP_TASK, rollout_id)

