"""The rollout engine: one idempotent ``step`` that moves a rollout as far as it can go now.

A step, under the rollout's row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serialises writers), so any number of workers may step the same rollout at once:

    pending, its start time reached -> draw the matching devices into waves (queued)
    -> fold what devices reported (succeeded, failed, timed out, superseded)
    -> dynamic membership: devices that came to match join the last wave
    -> maintenance window: hold or release the started devices
    -> the failure threshold: past it the rollout has failed
    -> the waves in order: start one, start its queued devices (rate limit, batch), see it
       complete (success threshold), bake it with the metric gates, pass it; then the next
    -> every wave passed: succeeded

Invariants:
- Everything a step decides is in the database when it commits: a killed worker or server
  leaves nothing half-known, and the next step (any worker's) carries on from there.
- A device gets a new desired state only through ``fleet.services.publish_desired_state``.
- Devices of wave k+1 are started only once wave k passed its bake and gates.
- Every decision the engine takes on its own is in the audit log, actor ``engine``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.audit import services as audit
from controlplane.config import Settings
from controlplane.errors import ResourceExhaustedError
from controlplane.fleet import compat
from controlplane.fleet import services as fleet
from controlplane.fleet.models import Device, DeviceModel, HardwareProfile
from controlplane.fleet.selection import ClassLatency, DeviceFacts, select_variant, selection_policy
from controlplane.registry.models import ModelVersion, Variant
from controlplane.registry.signing import Signer
from controlplane.rollouts import gates as gating
from controlplane.rollouts.models import FAILED, FINISHED, Rollout, RolloutDevice, Wave
from controlplane.rollouts.plan import Plan
from controlplane.selectors import parse_target
from controlplane.telemetry.class_metrics import class_latencies

#: What a device reports when it will not run what it was given: it could not install it
#: (``failed``), it runs it wrongly: its golden samples were not reproduced (``incompatible``),
#: it has no room for it beside its kept versions (``insufficient_storage``; it tries again each
#: sync, but a rollout must not wait on a full disk), or it went live and broke a probation
#: limit, so the device serves its kept previous version again (``rolled_back``).
DEVICE_FAILED_STATES = frozenset({"failed", "incompatible", "insufficient_storage",
                                  "rolled_back"})
ENGINE = audit.Actor.engine()


@dataclass
class _Step:
    session: Session
    rollout: Rollout
    plan: Plan
    mv: ModelVersion
    signer: Signer
    settings: Settings
    now: dt.datetime

    @property
    def model(self) -> str:
        return self.mv.model.name

    @functools.cached_property
    def window_closed(self) -> bool:
        """Outside the plan's maintenance window now (never, without one)."""
        window = self.plan.window
        return window is not None and not window.schedule(self.settings).is_open(self.now)

    def log(self, action: str, reason: str = "", *, wave: int = -1,
            details: Mapping[str, object] | None = None) -> None:
        audit.record(self.session, ENGINE, f"rollout.{action}", subject="rollout",
                     subject_id=self.rollout.id, now=self.now, reason=reason, wave=wave,
                     details=dict(details) if details else None, settings=self.settings)


def model_version(session: Session, rollout: Rollout) -> ModelVersion:
    return session.scalars(
        sa.select(ModelVersion).where(ModelVersion.id == rollout.model_version_id)
        .options(sa.orm.selectinload(ModelVersion.variants).selectinload(Variant.measurements),
                 sa.orm.selectinload(ModelVersion.model))
    ).one()


def step(session: Session, rollout: Rollout, *, signer: Signer, settings: Settings,
         now: dt.datetime) -> Rollout:
    """Move ``rollout`` (locked by the caller) as far as it can go now; a no-op for a rollout
    that is paused or finished, or pending before its start time."""
    if rollout.state not in ("pending", "running"):
        return rollout
    plan = Plan.from_json(rollout.plan or {})
    if rollout.state == "pending" and plan.start_at is not None and now < plan.start_at:
        return rollout
    ctx = _Step(session, rollout, plan, model_version(session, rollout), signer, settings, now)
    if rollout.state == "pending" and not _draw(ctx):
        return rollout
    _fold(ctx)
    if plan.dynamic:
        _join(ctx)
    if plan.window is not None:
        _sync_holds(ctx)
    if _failures_exceeded(ctx):
        return rollout
    _advance(ctx)
    rollout.updated_at = now
    session.flush()
    return rollout


# -- start ------------------------------------------------------------------------------------

def position(rollout_id: str, device_id: str) -> int:
    """Where a device is drawn in its rollout: spread over the fleet, the same on every server."""
    digest = hashlib.sha256(f"{rollout_id}/{device_id}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def owned_elsewhere(session: Session, model: str, rollout_id: str) -> dict[str, str]:
    """Device id -> the other open rollout of ``model`` that has it and is not done with it."""
    rows = session.execute(
        sa.select(RolloutDevice.device_id, RolloutDevice.rollout_id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .where(Rollout.model_name == model, Rollout.id != rollout_id,
               Rollout.state.in_(("pending", "running", "paused")),
               RolloutDevice.state.not_in(FINISHED)))
    return dict(rows.all())


def _draw(ctx: _Step) -> bool:
    """Put every matching device in its wave, queued; False when none is left to roll to."""
    r, s = ctx.rollout, ctx.session
    taken = owned_elsewhere(s, ctx.model, r.id)
    matches = [m for m in fleet.matching_devices(s, parse_target(r.selector))
               if m.device_id not in taken]
    if not matches:
        _finish(ctx, "failed", "no device matches the selector (or every match is in another "
                "open rollout of the model) at the start")
        return False
    ordered = sorted(matches, key=lambda m: position(r.id, m.device_id))
    targets = ctx.plan.targets(len(ordered))
    for wave, target in zip(r.waves, targets, strict=True):
        wave.target = target
    waves, wave_index = [], 0
    for i in range(len(ordered)):
        while i >= targets[wave_index]:
            wave_index += 1
        waves.append(wave_index)
    _queue(ctx, [m.device_id for m in ordered], waves)
    r.state, r.started_at, r.updated_at = "running", ctx.now, ctx.now
    ctx.log("started", details={"devices": len(ordered), "wave_targets": targets,
                                "skipped_in_other_rollouts": len(taken)})
    s.flush()
    return True


# -- what devices reported --------------------------------------------------------------------

def _fold(ctx: _Step) -> None:
    """Fold device outcomes into the started targets, and time out those that stalled."""
    s, r = ctx.session, ctx.rollout
    rows = s.execute(
        sa.select(RolloutDevice, DeviceModel.rollout_id, DeviceModel.desired_variant_id,
                  DeviceModel.active_variant_id, DeviceModel.state, DeviceModel.message,
                  DeviceModel.updated_at, Device.revoked_at)
        .join(Device, Device.id == RolloutDevice.device_id)
        .outerjoin(DeviceModel, sa.and_(DeviceModel.device_id == RolloutDevice.device_id,
                                        DeviceModel.model_name == ctx.model))
        .where(RolloutDevice.rollout_id == r.id,
               RolloutDevice.state.in_(("pending", "held")))).all()
    timeout = dt.timedelta(seconds=ctx.plan.step_timeout_seconds)
    for t, owner, desired, active, state, message, updated, revoked in rows:
        if owner != r.id:
            # A rollback of another rollout (or an older release's rollout) took this device's
            # model over: this one no longer waits for it, and it counts neither way.
            _target(ctx, t, "superseded", "another rollout took this device over")
            continue
        if revoked is not None:
            _target(ctx, t, "superseded", "the device was revoked")
            continue
        if desired != t.variant_id:
            continue
        if state != t.step:
            t.step, t.step_at = state, max(updated, t.step_at or updated)
        if active == t.variant_id and state == "active":
            _target(ctx, t, "succeeded", "")
        elif state in DEVICE_FAILED_STATES:
            _target(ctx, t, "failed", message)
        elif t.state == "pending" and t.step_at is not None and ctx.now - t.step_at > timeout:
            _target(ctx, t, "timed_out",
                    f"no progress for {int((ctx.now - t.step_at).total_seconds())} s (step "
                    f"timeout {ctx.plan.step_timeout_seconds} s); last step: "
                    f"{t.step or 'not started: the device has not fetched its desired state'}")


def _queue(ctx: _Step, device_ids: list[str], waves: list[int]) -> None:
    """Add ``device_ids`` as queued targets of the given waves, each with the variant it runs
    now (what a rollback returns it to), in one insert. The model's rows are read whole, not
    by an IN list of the devices: a fleet-wide draw would pass SQLite's variable limit."""
    active = dict(ctx.session.execute(
        sa.select(DeviceModel.device_id, DeviceModel.active_variant_id)
        .where(DeviceModel.model_name == ctx.model)).all())
    r = ctx.rollout
    ctx.session.execute(sa.insert(RolloutDevice), [
        dict(rollout_id=r.id, device_id=d, wave_index=w, variant_id=None,
             previous_variant_id=active.get(d), state="queued", message="",
             updated_at=ctx.now, position=position(r.id, d), step="")
        for d, w in zip(device_ids, waves, strict=True)])


def _target(ctx: _Step, t: RolloutDevice, state: str, message: str) -> None:
    t.state, t.message, t.updated_at = state, message, ctx.now


def _join(ctx: _Step) -> None:
    """Devices that came to match the selector join the last wave, queued."""
    s, r = ctx.session, ctx.rollout
    known = set(s.scalars(sa.select(RolloutDevice.device_id)
                          .where(RolloutDevice.rollout_id == r.id)))
    taken = owned_elsewhere(s, ctx.model, r.id)
    fresh = [m for m in fleet.matching_devices(s, parse_target(r.selector))
             if m.device_id not in known and m.device_id not in taken]
    if not fresh:
        return
    last = r.waves[-1]
    _queue(ctx, [m.device_id for m in fresh], [last.index] * len(fresh))
    last.target += len(fresh)
    ctx.log("devices_joined", f"{len(fresh)} devices came to match the selector",
            wave=last.index, details={"devices": [m.device_id for m in fresh[:50]],
                                      "count": len(fresh)})


def _sync_holds(ctx: _Step) -> None:
    """Inside the window release held devices; outside it hold those not yet active."""
    is_open = not ctx.window_closed
    wanted, other = ("pending", "held") if is_open else ("held", "pending")
    s = ctx.session
    moving = s.execute(
        sa.select(RolloutDevice, DeviceModel)
        .join(DeviceModel, sa.and_(DeviceModel.device_id == RolloutDevice.device_id,
                                   DeviceModel.model_name == ctx.model))
        .where(RolloutDevice.rollout_id == ctx.rollout.id, RolloutDevice.state == other,
               DeviceModel.rollout_id == ctx.rollout.id)).all()
    moved = 0
    for t, dm in moving:
        if not is_open and dm.active_variant_id == t.variant_id:
            continue   # already live: nothing left to hold
        dm.hold = not is_open
        dm.updated_at = ctx.now
        s.flush()
        fleet.publish_desired_state(s, t.device_id, signer=ctx.signer, settings=ctx.settings,
                                    now=ctx.now)
        t.state, t.step_at = wanted, ctx.now
        moved += 1
    if moved:
        ctx.log("window_opened" if is_open else "window_closed",
                f"{moved} devices {'released' if is_open else 'held'}",
                details={"devices": moved})


# -- thresholds -------------------------------------------------------------------------------

def counts_by_state(session: Session, rollout_id: str) -> dict[tuple[int, str], int]:
    """(wave index, target state) -> devices, in one grouped query."""
    rows = session.execute(
        sa.select(RolloutDevice.wave_index, RolloutDevice.state, sa.func.count())
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(RolloutDevice.wave_index, RolloutDevice.state))
    return {(w, st): n for w, st, n in rows}


def _failures_exceeded(ctx: _Step) -> bool:
    counts: Counter[str] = Counter()
    for (_, state), n in counts_by_state(ctx.session, ctx.rollout.id).items():
        counts[state] += n
    failed = sum(counts[st] for st in FAILED)
    finished = failed + counts["succeeded"]
    if not ctx.plan.failures_exceeded(failed, finished):
        return False
    reason = (f"failure threshold: {failed} of {finished} finished devices failed (max "
              f"failures {ctx.plan.max_failures}"
              + (f", judged from {ctx.plan.min_finished} finished" if
                 ctx.plan.max_failures.endswith("%") else "") + ")")
    for wave in ctx.rollout.waves:
        if wave.state in ("running", "baking"):
            wave.state, wave.finished_at = "failed", ctx.now
    _finish(ctx, "failed", reason, details={"failed": failed, "finished": finished})
    return True


def _finish(ctx: _Step, state: str, reason: str, *, wave: int = -1,
            details: Mapping[str, object] | None = None) -> None:
    r = ctx.rollout
    r.state, r.reason, r.updated_at = state, reason, ctx.now
    ctx.log(state, reason, wave=wave, details=details)
    if state == "failed":   # waves that never started will not
        for w in r.waves:
            if w.state == "pending":
                w.state = "aborted"


# -- waves ------------------------------------------------------------------------------------

def _advance(ctx: _Step) -> None:
    r = ctx.rollout
    for wave in r.waves:
        if wave.state == "succeeded":
            continue
        if wave.state == "pending":
            wave.state, wave.started_at = "running", ctx.now
            ctx.log("wave_started", wave=wave.index, details={"target": wave.target})
        _start_queued(ctx, wave.index)
        if wave.state == "running" and not _complete(ctx, wave):
            return
        if wave.state == "baking" and not _bake(ctx, wave):
            return
        if r.state != "running":
            return
    _finish(ctx, "succeeded", "")


def _complete(ctx: _Step, wave: Wave) -> bool:
    """Whether ``wave`` reached its success threshold (it then bakes, or passes with no bake);
    a wave that can no longer reach it fails the rollout."""
    counts = {st: n for (w, st), n in counts_by_state(ctx.session, ctx.rollout.id).items()
              if w == wave.index}
    eligible = sum(counts.values()) - counts.get("superseded", 0) - counts.get(
        "no_compatible_variant", 0)
    succeeded = counts.get("succeeded", 0)
    waiting = sum(counts.get(st, 0) for st in ("queued", "pending", "held"))
    if eligible == 0:
        if counts.get("no_compatible_variant", 0):
            wave.state, wave.finished_at = "failed", ctx.now
            _finish(ctx, "failed", f"wave {wave.index}: no device can run any variant of "
                    f"{ctx.model}:{ctx.mv.version} (see `edgefleet device explain`)",
                    wave=wave.index)
            return False
        _pass(ctx, wave, "nothing left to deploy")
        return True
    if succeeded / eligible >= ctx.plan.success_threshold - 1e-12:
        wave.completed_at = ctx.now
        details = {"succeeded": succeeded, "eligible": eligible}
        if ctx.plan.bake_seconds == 0:
            ctx.log("wave_completed", wave=wave.index, details=details)
            _pass(ctx, wave, "no bake")
            return True
        wave.state = "baking"
        wave.bake_until = ctx.now + dt.timedelta(seconds=ctx.plan.bake_seconds)
        ctx.log("wave_completed", f"baking until {wave.bake_until.isoformat()}",
                wave=wave.index, details=details)
        return True
    if waiting == 0:
        wave.state, wave.finished_at = "failed", ctx.now
        _finish(ctx, "failed", f"wave {wave.index}: {succeeded} of {eligible} devices active, "
                f"below the success threshold {ctx.plan.success_threshold:.0%}",
                wave=wave.index, details=dict(counts))
    return False


def _pass(ctx: _Step, wave: Wave, why: str) -> None:
    wave.state, wave.finished_at = "succeeded", ctx.now
    ctx.log("wave_passed", why, wave=wave.index)


def _bake(ctx: _Step, wave: Wave) -> bool:
    """Judge the gates over the bake; True once the wave passed."""
    readings = read_gates(ctx.session, ctx.rollout, ctx.plan, ctx.mv, wave,
                          settings=ctx.settings,
                          now=ctx.now)
    wave.gates = [g.to_json() for g in readings]
    breach = next((g for g in readings if g.verdict == gating.BREACH), None)
    if breach is not None:
        reason = (f"gate {breach.gate} breached on {breach.class_name or breach.hardware_class}: "
                  f"{breach.observed:.4g} > {breach.limit:.4g}"
                  + (f" ({breach.detail})" if breach.detail else ""))
        _gated(ctx, wave, "gate_breached", reason, breach)
        return False
    if ctx.now < (wave.bake_until or ctx.now):
        return False
    short = [g for g in readings if g.verdict == gating.INCONCLUSIVE]
    if short or not readings:
        first = short[0] if short else None
        reason = ("inconclusive: " + (f"{first.gate} on {first.class_name or first.hardware_class}"
                                      f": {first.detail}" if first else
                                      "no device on the new version reported any inference")
                  + " by the end of the bake; resume to accept the wave, or roll back")
        wave.state = "gated"
        _pause(ctx, reason, wave, details={"readings": wave.gates})
        return False
    _pass(ctx, wave, "gates passed")
    return True


def _gated(ctx: _Step, wave: Wave, action: str, reason: str, reading: gating.Reading) -> None:
    wave.state = "gated"
    ctx.log(action, reason, wave=wave.index, details=reading.to_json())
    if ctx.plan.gates.on_breach == "rollback":
        from controlplane.rollouts.services import roll_back  # the operator's path, reused
        roll_back(ctx.session, ctx.rollout, signer=ctx.signer, settings=ctx.settings,
                  now=ctx.now, actor=ENGINE, reason=reason)
        return
    _pause(ctx, reason, wave, details=None)


def _pause(ctx: _Step, reason: str, wave: Wave, *, details: dict[str, object] | None) -> None:
    r = ctx.rollout
    r.state, r.reason, r.updated_at = "paused", reason, ctx.now
    ctx.log("paused", reason, wave=wave.index, details=details)


def read_gates(session: Session, rollout: Rollout, plan: Plan, mv: ModelVersion, wave: Wave,
               *, settings: Settings, now: dt.datetime) -> list[gating.Reading]:
    """The gate readings for ``wave``'s bake so far, one list over every class that has a
    device on the new version (or one that rolled back)."""
    rows = session.execute(
        sa.select(RolloutDevice.state, RolloutDevice.step, HardwareProfile.hardware_class,
                  HardwareProfile.class_name)
        .outerjoin(HardwareProfile, HardwareProfile.device_id == RolloutDevice.device_id)
        .where(RolloutDevice.rollout_id == rollout.id,
               sa.or_(RolloutDevice.state == "succeeded",
                      RolloutDevice.step == "rolled_back"))).all()
    classes: dict[str, str] = {}
    rollbacks: Counter[str] = Counter()
    for _state, step_, hclass, name in rows:
        key = hclass or ""
        classes.setdefault(key, name or "")
        if step_ == "rolled_back":
            rollbacks[key] += 1
    sides = gating.read_sides(
        session, rollout_id=rollout.id, model=mv.model.name, version=mv.version,
        previous=previous_version(session, rollout.id), since=wave.completed_at or now,
        started=rollout.started_at or rollout.created_at, classes=classes,
        rollbacks=dict(rollbacks), min_inferences=plan.gates.min_inferences,
        settings=settings)
    return [g for side in sides for g in gating.judge(
        side, plan.gates, min_delta_ms=settings.gate_p95_min_delta_ms)]


def previous_version(session: Session, rollout_id: str) -> str | None:
    """The version most of the rollout's devices ran before it (None: none ran the model)."""
    row = session.execute(
        sa.select(ModelVersion.version, sa.func.count())
        .select_from(RolloutDevice)
        .join(Variant, Variant.id == RolloutDevice.previous_variant_id)
        .join(ModelVersion, ModelVersion.id == Variant.model_version_id)
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(ModelVersion.version).order_by(sa.func.count().desc()).limit(1)).first()
    return row[0] if row else None


# -- starting devices -------------------------------------------------------------------------

def _start_queued(ctx: _Step, upto: int) -> None:
    """Give the version to queued devices of waves up to ``upto``, in draw order, within the
    rate limit and ``rollout_assign_batch``."""
    s, r, plan = ctx.session, ctx.rollout, ctx.plan
    budget = ctx.settings.rollout_assign_batch
    if plan.max_per_minute:
        recent = s.scalar(sa.select(sa.func.count()).select_from(RolloutDevice).where(
            RolloutDevice.rollout_id == r.id,
            RolloutDevice.assigned_at > ctx.now - dt.timedelta(minutes=1))) or 0
        budget = min(budget, plan.max_per_minute - recent)
    if budget <= 0:
        return
    queued = s.scalars(
        sa.select(RolloutDevice)
        .where(RolloutDevice.rollout_id == r.id, RolloutDevice.state == "queued",
               RolloutDevice.wave_index <= upto)
        .order_by(RolloutDevice.wave_index, RolloutDevice.position).limit(budget)).all()
    if not queued:
        return
    hold = ctx.window_closed
    policy = selection_policy(ctx.settings, prefer=r.prefer, variant=r.variant)
    ids = [t.device_id for t in queued]
    profiles = {hp.device_id: hp for hp in s.scalars(
        sa.select(HardwareProfile).where(HardwareProfile.device_id.in_(ids)))}
    rows = {dm.device_id: dm for dm in s.scalars(
        sa.select(DeviceModel).where(DeviceModel.model_name == ctx.model,
                                     DeviceModel.device_id.in_(ids)))}
    per_class: dict[str, tuple[dict[str, ClassLatency], dict[str, str]]] = {}
    given: dict[str, tuple[RolloutDevice, DeviceModel, _Before | None, bool]] = {}
    for t in queued:
        hw = profiles.get(t.device_id)
        hclass = hw.hardware_class if hw is not None else ""
        if hclass not in per_class:   # what the class reported and was found to fail, once
            per_class[hclass] = (
                class_latencies(s, ctx.mv, hclass, settings=ctx.settings),
                compat.marks_for(s, (v.id for v in ctx.mv.variants), hclass))
        figures, marks = per_class[hclass]
        choice = select_variant(
            ctx.mv.variants, DeviceFacts.from_profile(hw.profile if hw else None, hclass),
            ctx.mv.min_runtime, policy, class_figures=figures, marks=marks)
        t.assigned_at = t.step_at = t.updated_at = ctx.now
        if choice.variant is None:
            t.variant_id = ctx.mv.variants[0].id
            _target(ctx, t, "no_compatible_variant", choice.reason)
            continue
        t.variant_id = choice.variant.id
        dm = rows.get(t.device_id)
        before = _Before.of(dm) if dm is not None else None
        if dm is None:
            dm = rows[t.device_id] = DeviceModel(device_id=t.device_id, model_name=ctx.model)
            s.add(dm)
        already = _assign(dm, t, hold=hold, reason=choice.reason, now=ctx.now)
        _target(ctx, t, "succeeded" if already else "held" if hold else "pending",
                "" if already else choice.reason)
        given[t.device_id] = (t, dm, before, already)
    s.flush()
    published = fleet.publish_desired_states(s, list(given), signer=ctx.signer,
                                             settings=ctx.settings, now=ctx.now)
    for device_id, outcome in published.items():
        if isinstance(outcome, ResourceExhaustedError):   # its desired state cannot grow
            t, dm, before, _ = given[device_id]
            _Before.restore(dm, before)
            _target(ctx, t, "failed", str(outcome))
    s.flush()


@dataclass(frozen=True)
class _Before:
    """A device model row as it was before a start changed it, to put back if its desired
    state could not be published."""

    desired: str | None
    rollout: str | None
    state: str
    message: str
    hold: bool
    updated_at: dt.datetime

    @classmethod
    def of(cls, dm: DeviceModel) -> _Before:
        return cls(dm.desired_variant_id, dm.rollout_id, dm.state, dm.message, dm.hold,
                   dm.updated_at)

    @staticmethod
    def restore(dm: DeviceModel, before: _Before | None) -> None:
        if before is None:   # the row was new: it asks for nothing
            dm.desired_variant_id, dm.rollout_id, dm.state, dm.hold = None, None, "pending", False
            return
        (dm.desired_variant_id, dm.rollout_id, dm.state, dm.message, dm.hold,
         dm.updated_at) = (before.desired, before.rollout, before.state, before.message,
                           before.hold, before.updated_at)


def _assign(dm: DeviceModel, t: RolloutDevice, *, hold: bool, reason: str,
            now: dt.datetime) -> bool:
    """Make the target's variant the device's desired one; True if it runs it already."""
    dm.desired_variant_id = t.variant_id
    dm.rollout_id = t.rollout_id
    already = dm.active_variant_id == t.variant_id
    dm.state = "active" if already else "pending"
    dm.hold = hold and not already
    dm.message = reason
    dm.updated_at = now
    return already
