"""The rollout engine against a real database: assignment, progress, superseding, rollback, and
two workers stepping the same rollout at once on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from controlplane import modelgen
from controlplane.audit.services import Actor
from controlplane.auth.services import create_enrollment_token
from controlplane.config import Settings
from controlplane.db import make_engine, make_session_factory, transaction
from controlplane.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from controlplane.fleet import services as fleet
from controlplane.fleet.models import DesiredState, Device, DeviceModel
from controlplane.fleet.services import sequence_floor
from controlplane.registry import services as registry
from controlplane.registry.models import Variant
from controlplane.registry.signing import Signer
from controlplane.registry.tflite import inspect_model
from controlplane.rollouts import services as rollouts
from controlplane.rollouts.models import Rollout
from controlplane.telemetry.services import Event, record_status
from controlplane.validation import WireTime

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SETTINGS = Settings(data_dir=Path("/nonexistent"))
SIGNER = Signer.generate()
ACTOR = Actor("tok-test", "operator")
HW = {"arch": "x86_64", "interpreter": {"name": "tflite-runtime", "version": "2.14.0"}}


def _ready_version(s: Session, version: str, seed: int, name: str = "m") -> str:
    import hashlib

    data = modelgen.build_mlp(seed=seed)
    sha = hashlib.sha256(data).hexdigest()
    mv = registry.register_version(
        s,
        name=name,
        version=version,
        model=registry.Upload(sha256=sha, size=len(data)),
        info=inspect_model(data),
        calibration=None,
        created_by=None,
    )
    s.flush()
    (variant,) = mv.variants
    registry.mark_variant_ready(variant, signer=SIGNER, now=NOW, latency_ms=0.1,
                                measured_with="test")
    registry.settle_version(mv)
    return variant.id


def _devices(s: Session, n: int, labels: dict[str, str]) -> list[str]:
    token, _ = create_enrollment_token(
        s, labels=labels, uses=n, expires_in_seconds=3600, settings=Settings(), now=NOW
    )
    return [
        fleet.enroll(
            s, enrollment_token_id=token.id, name=f"d{i}", hardware=HW, labels={}, now=NOW,
            settings=Settings(),
        )[0].id
        for i in range(n)
    ]


def _report_active(s: Session, device_id: str, version: str, variant_id: str) -> None:
    v = s.get(Variant, variant_id)
    record_status(
        s,
        device_id,
        [
            Event(
                model="m",
                version=version,
                variant=v.kind,
                sha256=v.artifact_sha256,
                state="active",
                message="",
                at=WireTime.of(NOW),
            )
        ],
        settings=SETTINGS,
        now=NOW,
    )


def _payload(s: Session, device_id: str) -> dict:
    return json.loads(s.get(DesiredState, device_id).payload)


def test_single_wave_rollout_assigns_signs_and_succeeds(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as s:
        variant_id = _ready_version(s, "1", seed=1)
        berlin = _devices(s, 2, {"site": "berlin"})
        other = _devices(s, 1, {"site": "paris"})
        r = rollouts.create_rollout(
            s, model="m", version="1", selector="site=berlin", actor=ACTOR,
            settings=SETTINGS, now=NOW
        )
    with transaction(session_factory) as s:
        rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
    with transaction(session_factory) as s:
        for d in berlin:
            doc = _payload(s, d)
            assert doc["device_id"] == d and doc["sequence"] == sequence_floor(NOW)
            assert [e["model"] for e in doc["models"]] == ["m"]
        assert s.get(DesiredState, other[0]) is None
        assert rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW).state == "running"
        _report_active(s, berlin[0], "1", variant_id)
        assert rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW).state == "running"
        _report_active(s, berlin[1], "1", variant_id)
        done = rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert done.state == "succeeded"
        waves = rollouts.view(s, done, settings=SETTINGS).waves
        assert [(w.devices, w.succeeded, w.failed) for w in waves] == [(2, 2, 0)]


@pytest.mark.parametrize("state", ["insufficient_storage", "rolled_back"])
def test_a_device_without_room_or_that_rolled_back_fails_the_rollout_with_its_message(
    session_factory: sessionmaker[Session], state: str
) -> None:
    """Input tried: of two devices, one reports the rollout's variant active and the other
    reports it insufficient_storage (no room beside its kept versions) or, after active,
    rolled_back (it broke probation and serves its previous version): the rollout ends failed,
    naming that device with its message, rather than waiting for it, and the variant is not
    counted active on it."""
    with transaction(session_factory) as s:
        variant_id = _ready_version(s, "1", seed=1)
        good, bad = _devices(s, 2, {"site": "berlin"})
        r = rollouts.create_rollout(s, model="m", version="1", selector="site=berlin",
                                    actor=ACTOR, settings=SETTINGS, now=NOW)
    with transaction(session_factory) as s:
        rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
    with transaction(session_factory) as s:
        _report_active(s, good, "1", variant_id)
        if state == "rolled_back":   # it went live first, then broke probation
            _report_active(s, bad, "1", variant_id)
        v = s.get(Variant, variant_id)
        record_status(s, bad, [Event(model="m", version="1", variant=v.kind,
                                     sha256=v.artifact_sha256, state=state,
                                     message=f"{state} on this device", at=WireTime.of(NOW))],
                      settings=SETTINGS, now=NOW)
        rolled = rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert rolled.state == "failed"
        assert {t.device_id: (t.state, t.message) for t in rolled.targets} == {
            good: ("succeeded", ""), bad: ("failed", f"{state} on this device")}
        dm = s.get(DeviceModel, (bad, "m"))
        assert dm is not None and (dm.state, dm.active_variant_id) == (state, None)


def test_rollout_of_a_model_still_being_measured_is_refused(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a rollout for a version whose variants are still pending."""
    import hashlib

    data = modelgen.build_mlp(seed=5)
    with transaction(session_factory) as s:
        registry.register_version(
            s,
            name="m",
            version="1",
            model=registry.Upload(sha256=hashlib.sha256(data).hexdigest(), size=len(data)),
            info=inspect_model(data),
            calibration=None,
            created_by=None,
        )
    with transaction(session_factory) as s, pytest.raises(FailedPreconditionError, match="ready"):
        rollouts.create_rollout(s, model="m", version="1", selector="*", actor=ACTOR,
                                settings=SETTINGS, now=NOW)
    with transaction(session_factory) as s, pytest.raises(NotFoundError):
        rollouts.create_rollout(s, model="nope", version="1", selector="*", actor=ACTOR,
                                settings=SETTINGS, now=NOW)


@pytest.mark.parametrize("selector", ["", "  "])
def test_an_empty_selector_is_refused_rather_than_taken_as_the_whole_fleet(
    session_factory: sessionmaker[Session], selector: str
) -> None:
    """Input tried: a rollout with an empty (and a blank) selector; '*' is how to mean all."""
    with transaction(session_factory) as s:
        _ready_version(s, "1", seed=1)
    with transaction(session_factory) as s, pytest.raises(InvalidArgumentError, match="'\\*'"):
        rollouts.create_rollout(s, model="m", version="1", selector=selector, actor=ACTOR,
                                settings=SETTINGS, now=NOW)
    with transaction(session_factory) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Rollout)) == 0


def test_newer_rollout_supersedes_and_rollback_restores(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as s:
        v1 = _ready_version(s, "1", seed=1)
        v2 = _ready_version(s, "2", seed=2)
        (device,) = _devices(s, 1, {"site": "x"})
        r1 = rollouts.create_rollout(
            s, model="m", version="1", selector="*", actor=ACTOR, settings=SETTINGS, now=NOW
        )
        rollouts.step(s, r1.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        _report_active(s, device, "1", v1)
        done = rollouts.step(s, r1.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert done.state == "succeeded"
        r2 = rollouts.create_rollout(
            s, model="m", version="2", selector="*", actor=ACTOR, settings=SETTINGS, now=NOW
        )
        rollouts.step(s, r2.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        doc = _payload(s, device)
        assert doc["sequence"] == sequence_floor(NOW) + 1 and doc["models"][0]["version"] == "2"
        # rollback of r2 puts the device back on v1 with a newer sequence
        rolled = rollouts.change(s, r2.id, "rollback", actor=ACTOR, signer=SIGNER,
                        settings=SETTINGS, now=NOW)
        assert rolled.state == "rolled_back"
        doc = _payload(s, device)
        assert doc["sequence"] == sequence_floor(NOW) + 2 and doc["models"][0]["version"] == "1"
        assert s.get(DeviceModel, (device, "m")).desired_variant_id == v1
        assert v2 != v1
        with pytest.raises(FailedPreconditionError):
            rollouts.change(s, r2.id, "resume", actor=ACTOR, signer=SIGNER,
                        settings=SETTINGS, now=NOW)


def test_abort_leaves_no_wave_running_and_keeps_what_devices_were_given(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as s:
        v1 = _ready_version(s, "1", seed=1)
        (device,) = _devices(s, 1, {})
        r = rollouts.create_rollout(s, model="m", version="1", selector="*", actor=ACTOR,
                                    settings=SETTINGS, now=NOW)
        rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert [w.state for w in r.waves] == ["running"]
        aborted = rollouts.change(s, r.id, "abort", actor=ACTOR, signer=SIGNER,
                        settings=SETTINGS, now=NOW)
        assert aborted.state == "aborted"
        assert [(w.state, w.finished_at is not None) for w in aborted.waves] == [("aborted", True)]
        # abort stops the rollout; it does not take back what a device was already given
        assert s.get(DeviceModel, (device, "m")).desired_variant_id == v1
        assert rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW).state == "aborted"
        with pytest.raises(FailedPreconditionError):
            rollouts.change(s, r.id, "resume", actor=ACTOR, signer=SIGNER,
                        settings=SETTINGS, now=NOW)
        # an aborted rollout can still be rolled back: the wave that ran is then rolled back
        rolled = rollouts.change(s, r.id, "rollback", actor=ACTOR, signer=SIGNER,
                        settings=SETTINGS, now=NOW)
        assert [w.state for w in rolled.waves] == ["rolled_back"]
        assert s.get(DeviceModel, (device, "m")).desired_variant_id is None


def test_revoked_devices_get_no_rollout_and_a_running_one_stops_waiting_for_them(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as s:
        v1 = _ready_version(s, "1", seed=1)
        _ready_version(s, "2", seed=2)
        kept, revoked = _devices(s, 2, {})
        r1 = rollouts.create_rollout(s, model="m", version="1", selector="*", actor=ACTOR,
                                     settings=SETTINGS, now=NOW)
        rollouts.step(s, r1.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        fleet.revoke_device(s, revoked, now=NOW)
        _report_active(s, kept, "1", v1)
        done = rollouts.step(s, r1.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert done.state == "succeeded"
        assert {t.device_id: (t.state, t.message) for t in done.targets}[revoked] == (
            "superseded", "the device was revoked")
        (counts,) = rollouts.view(s, done, settings=SETTINGS).waves
        assert (counts.devices, counts.succeeded, counts.failed, counts.skipped) == (2, 1, 0, 1)
        r2 = rollouts.create_rollout(s, model="m", version="2", selector="*", actor=ACTOR,
                                     settings=SETTINGS, now=NOW)
        started = rollouts.step(s, r2.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        assert [t.device_id for t in started.targets] == [kept]


def test_a_second_open_rollout_of_the_model_on_the_same_devices_is_refused_with_the_reason(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a rollout of m:2 to a device that m:1's rollout still runs on (and, once
    that one is aborted, the same again): refused while the first is open, naming it; allowed
    after. A rollout of m:2 to other devices was never refused."""
    with transaction(session_factory) as s:
        _ready_version(s, "1", seed=1)
        _ready_version(s, "2", seed=2)
        (device,) = _devices(s, 1, {"site": "a"})
        (elsewhere,) = _devices(s, 1, {"site": "b"})
        r1 = rollouts.create_rollout(
            s, model="m", version="1", selector="site=a", actor=ACTOR, settings=SETTINGS, now=NOW
        )
        with pytest.raises(FailedPreconditionError, match=f"{device}.*{r1.id}.*one rollout"):
            rollouts.create_rollout(
                s, model="m", version="2", selector="*", actor=ACTOR, settings=SETTINGS, now=NOW
            )  # r1 pending: its selector
        rollouts.step(s, r1.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        with pytest.raises(FailedPreconditionError, match=r1.id):
            rollouts.create_rollout(
                s,
                model="m",
                version="2",
                selector="site=a",
                actor=ACTOR,
                settings=SETTINGS,
                now=NOW,
            )  # r1 running: its targets
        other = rollouts.create_rollout(
            s, model="m", version="2", selector="site=b", actor=ACTOR, settings=SETTINGS, now=NOW
        )
        assert other.state == "pending" and elsewhere
        rollouts.change(s, r1.id, "abort", actor=ACTOR, signer=SIGNER, settings=SETTINGS, now=NOW)
        rollouts.change(
            s, other.id, "abort", actor=ACTOR, signer=SIGNER, settings=SETTINGS, now=NOW
        )
        assert (
            rollouts.create_rollout(
                s, model="m", version="2", selector="*", actor=ACTOR, settings=SETTINGS, now=NOW
            ).state
            == "pending"
        )


def test_two_workers_start_the_same_rollout_at_once_on_postgres(pg_clean_url: str) -> None:
    """Two threads with their own connections run ``start`` together: every device is assigned
    once and its desired-state sequence moves exactly once."""
    engine = make_engine(pg_clean_url, pool_size=4)
    factory = make_session_factory(engine)
    with transaction(factory) as s:
        _ready_version(s, "1", seed=1)
        devices = _devices(s, 5, {})
        r = rollouts.create_rollout(
            s, model="m", version="1", selector="*", actor=ACTOR, settings=SETTINGS, now=NOW
        )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def step() -> None:
        barrier.wait()
        try:
            with transaction(factory) as s:
                rollouts.step(s, r.id, signer=SIGNER, settings=SETTINGS, now=NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=step) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with transaction(factory) as s:
        assert {s.get(Device, d).desired_sequence for d in devices} == {sequence_floor(NOW)}
        got = rollouts.get_rollout(s, r.id)
        assert got.state == "running" and len(got.targets) == 5
    engine.dispose()


def test_a_device_whose_desired_state_would_outgrow_its_messages_fails_alone(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried (M2): a fleet capped at one model per device; a rollout of a second model to
    two devices, one of which already runs the first. That device's target fails with the
    setting named and keeps its desired state; the other device gets the model."""
    capped = SETTINGS.replace(max_models_per_device=1)
    with transaction(session_factory) as s:
        _ready_version(s, "1", seed=1, name="m")
        _ready_version(s, "1", seed=2, name="n")
        (busy,) = _devices(s, 1, {"site": "x"})
        first = rollouts.create_rollout(s, model="m", version="1", selector="site=x",
                                        actor=ACTOR, settings=SETTINGS, now=NOW)
        rollouts.step(s, first.id, signer=SIGNER, settings=capped, now=NOW)
        (free,) = _devices(s, 1, {"site": "x"})
        before = _payload(s, busy)
        second = rollouts.create_rollout(s, model="n", version="1", selector="site=x",
                                         actor=ACTOR, settings=SETTINGS, now=NOW)
        started = rollouts.step(s, second.id, signer=SIGNER, settings=capped, now=NOW)
        by_device = {t.device_id: t for t in started.targets}
        assert by_device[busy].state == "failed"
        assert "max_models_per_device" in by_device[busy].message
        assert _payload(s, busy) == before
        assert by_device[free].state == "pending"
        assert [e["model"] for e in _payload(s, free)["models"]] == ["n"]


def test_a_desired_state_past_its_byte_limit_is_refused_before_it_is_stored(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried (M2): max_desired_state_bytes smaller than one signed entry: publishing
    refuses with the setting named and stores no document the device could never receive."""
    tiny = SETTINGS.replace(max_desired_state_bytes=200)
    with transaction(session_factory) as s:
        _ready_version(s, "1", seed=1)
        (device,) = _devices(s, 1, {"site": "y"})
        r = rollouts.create_rollout(s, model="m", version="1", selector="site=y",
                                    actor=ACTOR, settings=SETTINGS, now=NOW)
        started = rollouts.step(s, r.id, signer=SIGNER, settings=tiny, now=NOW)
        (target,) = started.targets
        assert target.state == "failed" and "max_desired_state_bytes" in target.message
        assert s.get(DesiredState, device) is None
        dm = s.get(DeviceModel, (device, "m"))
        assert dm is None or dm.desired_variant_id is None   # the assignment was undone too
