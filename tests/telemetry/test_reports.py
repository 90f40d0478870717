"""Install events and metric windows checked one by one against a real database (SQLite and
PostgreSQL): a malformed item is refused with its reason, the others of its report are stored,
and a report past its size setting is refused whole."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from agent.settings import AgentSettings
from controlplane.config import Settings
from controlplane.db import new_id, transaction
from controlplane.errors import ResourceExhaustedError
from controlplane.fleet.models import Device, DeviceModel
from controlplane.registry.models import Artifact, Model, ModelVersion, Variant
from controlplane.telemetry import services as telemetry
from controlplane.telemetry.models import InstallEvent, MetricWindow
from controlplane.validation import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, WireTime

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SETTINGS = Settings(data_dir=Path("/nonexistent"))
SHA = "a" * 64
START, END = WireTime.of(NOW - dt.timedelta(seconds=10)), WireTime.of(NOW)


def _device(s: Session) -> str:
    device = Device(id=new_id(), name="cam", labels={}, secret_hash="0" * 64, enrolled_at=NOW)
    s.add(device)
    s.flush()
    return device.id


def _window(**changes: Any) -> telemetry.Window:
    good = telemetry.Window(
        window_id=str(uuid.uuid4()), model="m", version="1.0.0", variant="float32", sha256=SHA,
        start=START, end=END, count=10, errors=1, bucket_bounds_ms=[1.0, 5.0],
        bucket_counts=[6, 3, 1], latency_sum_ms=20.0, latency_max_ms=7.5)
    return dataclasses.replace(good, **changes)


def _stored_windows(s: Session) -> set[str]:
    return set(s.scalars(sa.select(MetricWindow.window_id)))


BAD_WINDOWS = {
    "unsorted bounds": dict(bucket_bounds_ms=[5.0, 1.0]),
    "NaN bound": dict(bucket_bounds_ms=[1.0, math.nan]),
    "infinite bound": dict(bucket_bounds_ms=[1.0, math.inf]),
    "counts not summing to count": dict(bucket_counts=[6, 3, 2]),
    "a count short": dict(bucket_counts=[6, 4]),
    "errors above count": dict(errors=11),
    "nonfinite above count": dict(nonfinite=11),
    "nonfinite 2^63": dict(nonfinite=2**63),
    "negative nonfinite": dict(nonfinite=-1),
    "NaN latency_sum_ms": dict(latency_sum_ms=math.nan),
    "infinite latency_max_ms": dict(latency_max_ms=math.inf),
    "-inf latency_max_ms": dict(latency_max_ms=-math.inf),
    "count 2^63": dict(count=2**63, bucket_counts=[2**63, 0, 0]),
    "count 2^64-1": dict(count=2**64 - 1, errors=0, bucket_counts=[2**64 - 1, 0, 0]),
    "errors 2^63": dict(errors=2**63),
    "end before start": dict(start=END, end=START),
    "start past year 9999": dict(start=WireTime(MAX_TIMESTAMP_SECONDS + 1)),
    "end before year 1": dict(end=WireTime(MIN_TIMESTAMP_SECONDS - 1)),
    "nanos 1e9": dict(end=WireTime(END.seconds, 1_000_000_000)),
    "negative nanos": dict(start=WireTime(START.seconds, -1)),
    "window id not a UUID": dict(window_id="x"),
    "window id with NUL": dict(window_id="\x00" * 36),
    "window id of 1 MB": dict(window_id="w" * 1_000_000),
    "NUL in the model name": dict(model="m\x00"),
    "upper-case sha256": dict(sha256="A" * 64),
    "empty variant": dict(variant=""),
    "version of 1000 characters": dict(version="1" * 1000),
    "65 bucket bounds": dict(bucket_bounds_ms=[float(i) for i in range(65)],
                             bucket_counts=[10] + [0] * 65),
}


@pytest.mark.parametrize("case", BAD_WINDOWS)
def test_a_malformed_window_is_refused_alone_and_the_others_are_stored(
    session_factory: sessionmaker[Session], case: str
) -> None:
    """Input tried: one good window, one window with the named defect, one more good window."""
    bad = _window(**BAD_WINDOWS[case])
    before, after = _window(), _window()
    with transaction(session_factory) as s:
        device_id = _device(s)
        outcome = telemetry.record_metrics(s, device_id, [before, bad, after], settings=SETTINGS,
                                           now=NOW)
    assert (outcome.accepted, outcome.duplicates) == (2, 0)
    (rejection,) = outcome.rejections
    assert rejection.id == bad.window_id[:36] + ("..." if len(bad.window_id) > 36 else "")
    assert rejection.reason and len(rejection.reason) < 300
    with transaction(session_factory) as s:
        assert _stored_windows(s) == {before.window_id, after.window_id}


def test_a_windows_nonfinite_count_is_stored(session_factory: sessionmaker[Session]) -> None:
    """Input tried: a window of 10 inferences, 4 of whose outputs held NaN or Inf, and one
    where every inference did (nonfinite == count, the largest allowed)."""
    some, every = _window(nonfinite=4), _window(nonfinite=10)
    with transaction(session_factory) as s:
        outcome = telemetry.record_metrics(s, _device(s), [some, every], settings=SETTINGS,
                                           now=NOW)
    assert (outcome.accepted, outcome.rejections) == (2, ())
    with transaction(session_factory) as s:
        stored = dict(s.execute(sa.select(MetricWindow.window_id, MetricWindow.nonfinite)).all())
    assert stored == {some.window_id: 4, every.window_id: 10}


def test_nonfinite_above_count_is_refused_with_the_reason(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a window of 10 inferences claiming 11 with non-finite outputs."""
    bad = _window(nonfinite=11)
    with transaction(session_factory) as s:
        outcome = telemetry.record_metrics(s, _device(s), [bad], settings=SETTINGS, now=NOW)
    assert outcome.accepted == 0
    (rejection,) = outcome.rejections
    assert rejection.id == bad.window_id
    assert "11 inferences with non-finite outputs (nonfinite) in a window of 10" in \
        rejection.reason


def test_the_first_and_last_instants_of_the_timestamp_range_are_stored(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a window from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z."""
    window = _window(start=WireTime(MIN_TIMESTAMP_SECONDS, 0),
                     end=WireTime(MAX_TIMESTAMP_SECONDS, 999_999_999))
    with transaction(session_factory) as s:
        outcome = telemetry.record_metrics(s, _device(s), [window], settings=SETTINGS, now=NOW)
    assert (outcome.accepted, outcome.rejections) == (1, ())
    with transaction(session_factory) as s:
        row = s.scalars(sa.select(MetricWindow)).one()
        assert (row.start.year, row.end.year, row.end.microsecond) == (1, 9999, 999_999)


def test_a_window_for_a_model_the_device_was_never_told_to_run_is_stored_when_well_formed(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a well-formed window naming model "elsewhere", which no rollout gave the
    device and the registry does not hold."""
    window = _window(model="elsewhere")
    with transaction(session_factory) as s:
        outcome = telemetry.record_metrics(s, _device(s), [window], settings=SETTINGS, now=NOW)
    assert outcome.accepted == 1


def test_duplicates_are_counted_beside_rejections(session_factory: sessionmaker[Session]) -> None:
    """Input tried: a report re-sent with a malformed window added."""
    windows = [_window(), _window()]
    with transaction(session_factory) as s:
        device_id = _device(s)
        telemetry.record_metrics(s, device_id, windows, settings=SETTINGS, now=NOW)
        again = telemetry.record_metrics(s, device_id, [*windows, _window(count=3)],
                                         settings=SETTINGS, now=NOW)
    assert (again.accepted, again.duplicates, len(again.rejections)) == (0, 2, 1)


@pytest.mark.parametrize("n", [1001, 5000])
def test_a_report_of_more_windows_than_the_setting_is_refused_whole(
    session_factory: sessionmaker[Session], n: int
) -> None:
    """Input tried: a report of 1,001 and of 5,000 windows (max_windows_per_report is 1,000):
    refused naming the setting, nothing stored (never the first 1,000 kept silently)."""
    with transaction(session_factory) as s:
        device_id = _device(s)
        with pytest.raises(ResourceExhaustedError, match="max_windows_per_report"):
            telemetry.record_metrics(s, device_id, [_window() for _ in range(n)],
                                     settings=SETTINGS, now=NOW)
        assert _stored_windows(s) == set()


def test_a_report_of_as_many_windows_as_the_setting_allows_is_stored_whole(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a report of exactly 1,000 windows."""
    with transaction(session_factory) as s:
        outcome = telemetry.record_metrics(s, _device(s), [_window() for _ in range(1000)],
                                           settings=SETTINGS, now=NOW)
    assert outcome.accepted == 1000


def test_the_agents_report_sizes_stay_below_the_servers() -> None:
    """Input tried: the two sides' default settings; an agent is never refused for the size of
    its reports."""
    agent = AgentSettings()
    assert agent.max_windows_per_report <= SETTINGS.max_windows_per_report
    assert agent.max_events_per_report <= SETTINGS.max_events_per_report
    assert len(agent.latency_buckets_ms) <= SETTINGS.max_window_buckets


# -- install events -----------------------------------------------------------------------------


def _event(**changes: Any) -> telemetry.Event:
    good = telemetry.Event(model="m", version="1.0.0", variant="float32", sha256=SHA,
                           state="downloading", message="100 bytes", at=START)
    return dataclasses.replace(good, **changes)


BAD_EVENTS = {
    "time past year 9999": dict(at=WireTime(MAX_TIMESTAMP_SECONDS + 1)),
    "time before year 1": dict(at=WireTime(MIN_TIMESTAMP_SECONDS - 1)),
    "nanos 1e9": dict(at=WireTime(START.seconds, 1_000_000_000)),
    "negative nanos": dict(at=WireTime(START.seconds, -5)),
    "NUL in the model name": dict(model="\x00"),
    "a model of 1 MB": dict(model="m" * 1_000_000),
    "a ref without sha256": dict(sha256=""),
    "a sha256 of 63 digits": dict(sha256="a" * 63),
    "NUL in the state": dict(state="active\x00"),
    "an empty state": dict(state=""),
    "a state of 33 letters": dict(state="a" * 33),
}


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_a_malformed_event_is_refused_by_its_index_and_the_others_are_stored(
    session_factory: sessionmaker[Session], case: str
) -> None:
    """Input tried: a good event, one with the named defect, an event about no model (empty
    ref, as an agent sends for a refused desired state)."""
    events = [_event(), _event(**BAD_EVENTS[case]),
              _event(model="", version="", variant="", sha256="", state="failed")]
    with transaction(session_factory) as s:
        outcome = telemetry.record_status(s, _device(s), events, settings=SETTINGS, now=NOW)
    assert outcome.accepted == 2
    assert [r.id for r in outcome.rejections] == ["1"]
    with transaction(session_factory) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(InstallEvent)) == 2


def _desired(s: Session, device_id: str) -> None:
    """Make the device's desired variant of model "m" the one ``_event`` names."""
    s.add(Artifact(sha256=SHA, size=1))
    model = Model(name="m")
    version = ModelVersion(model=model, version="1.0.0", source_sha256=SHA, size=1, inputs=[],
                           outputs=[], operators=[], min_runtime="2.14.0", status="ready")
    variant = Variant(model_version=version, kind="float32", artifact_sha256=SHA, size=1,
                      inputs=[], outputs=[], status="ready")
    s.add_all([model, version, variant])
    s.flush()
    s.add(DeviceModel(device_id=device_id, model_name="m", desired_variant_id=variant.id))
    s.flush()


def test_an_event_message_past_its_bound_is_cut_with_a_marker_and_still_moves_the_device(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a "failed" event about the device's desired variant whose message is
    10,000 characters holding NUL: stored cut to max_event_message_chars with a visible
    marker, NUL shown as U+FFFD, and the device's model row moves to failed (a rollout
    waiting for it is not left waiting)."""
    message = "bad tensor \x00 " + "x" * 10_000
    with transaction(session_factory) as s:
        device_id = _device(s)
        _desired(s, device_id)
        outcome = telemetry.record_status(s, device_id, [_event(state="failed", message=message)],
                                          settings=SETTINGS, now=NOW)
    assert (outcome.accepted, outcome.rejections) == (1, ())
    with transaction(session_factory) as s:
        stored = s.scalars(sa.select(InstallEvent.message)).one()
        dm = s.get(DeviceModel, (device_id, "m"))
        assert dm is not None and dm.state == "failed" and dm.message == stored
    assert len(stored) == SETTINGS.max_event_message_chars
    assert stored.startswith("bad tensor \ufffd x") and stored.endswith("characters]")
    assert "cut from 10013 characters" in stored


def test_a_staged_event_moves_the_device_to_staged_and_grants_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: "staged" (proven, held outside the maintenance window) about the device's
    desired variant while another variant is active: stored, the row reads staged, the active
    variant stays, and a rollout counts it neither failed nor active."""
    from controlplane.rollouts.engine import DEVICE_FAILED_STATES

    with transaction(session_factory) as s:
        device_id, dm, previous = _desired_while_another_is_active(s)
        outcome = telemetry.record_status(s, device_id, [_event(state="staged")],
                                          settings=SETTINGS, now=NOW)
        assert (outcome.accepted, outcome.rejections) == (1, ())
        s.flush()
        s.refresh(dm)
        assert (dm.state, dm.active_variant_id) == ("staged", previous.id)
    assert "staged" not in DEVICE_FAILED_STATES


def test_a_report_of_more_events_than_the_setting_is_refused_whole(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a report of 101 events (max_events_per_report is 100)."""
    with transaction(session_factory) as s:
        device_id = _device(s)
        with pytest.raises(ResourceExhaustedError, match="max_events_per_report"):
            telemetry.record_status(s, device_id, [_event() for _ in range(101)],
                                    settings=SETTINGS, now=NOW)
        assert s.scalar(sa.select(sa.func.count()).select_from(InstallEvent)) == 0


# -- findings -----------------------------------------------------------------------------------

GOOD_FINDING = {"reason": "probation_nonfinite", "interpreter": "tflite-runtime",
                "interpreter_version": "2.14.0", "sample": -1, "output": "scores",
                "observed": 1.7976931348623157e308, "limit": 0.0}


def _stored_event(session_factory: sessionmaker[Session]) -> InstallEvent:
    with transaction(session_factory) as s:
        event = s.scalars(sa.select(InstallEvent)).one()
        s.expunge(event)
        return event


def test_a_finding_is_stored_with_its_event_and_moves_the_device_to_rolled_back(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: "active" then "rolled_back" with a finding (observed sent as the largest
    double, as an agent sends NaN) about the device's desired variant: the finding is stored as
    sent, the row reads rolled_back and no variant is active any more (the device went back to
    its kept version)."""
    with transaction(session_factory) as s:
        device_id = _device(s)
        _desired(s, device_id)
        telemetry.record_status(s, device_id, [_event(state="active")], settings=SETTINGS,
                                now=NOW)
        dm = s.get(DeviceModel, (device_id, "m"))
        assert dm is not None and dm.active_variant_id == dm.desired_variant_id
        outcome = telemetry.record_status(
            s, device_id, [_event(state="rolled_back", message="NaN or Inf in 1 of 3 outputs",
                                  finding=dict(GOOD_FINDING))], settings=SETTINGS, now=NOW)
    assert (outcome.accepted, outcome.rejections) == (1, ())
    with transaction(session_factory) as s:
        event = s.scalars(sa.select(InstallEvent).where(InstallEvent.state == "rolled_back")).one()
        assert event.finding == GOOD_FINDING
        assert event.message == "NaN or Inf in 1 of 3 outputs"
        dm = s.get(DeviceModel, (device_id, "m"))
        assert dm is not None and (dm.state, dm.active_variant_id) == ("rolled_back", None)
        assert dm.desired_variant_id is not None


def _desired_while_another_is_active(s: Session) -> tuple[str, DeviceModel, Variant]:
    """A device whose desired variant of "m" is ``_event``'s while another variant of the same
    version (its previous one, still serving) is active: the device, its row, that variant."""
    device_id = _device(s)
    _desired(s, device_id)
    dm = s.get(DeviceModel, (device_id, "m"))
    assert dm is not None
    previous = Variant(model_version=dm.desired_variant.model_version, kind="float16",
                       artifact_sha256=SHA, size=1, inputs=[], outputs=[], status="ready")
    s.add(previous)
    s.flush()
    dm.active_variant_id = previous.id
    return device_id, dm, previous


def test_a_rolled_back_event_about_a_variant_not_active_leaves_the_active_one(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: "rolled_back" about the desired variant while the device's active variant
    is another (its previous version, still serving): the active variant stays."""
    with transaction(session_factory) as s:
        device_id, dm, previous = _desired_while_another_is_active(s)
        telemetry.record_status(s, device_id, [_event(state="rolled_back")], settings=SETTINGS,
                                now=NOW)
        s.flush()
        s.refresh(dm)
        assert (dm.state, dm.active_variant_id) == ("rolled_back", previous.id)


BAD_FINDINGS = {
    "no reason": ({k: v for k, v in GOOD_FINDING.items() if k != "reason"}, "has no reason"),
    "an unknown field": ({**GOOD_FINDING, "colour": "red"}, "unknown fields 'colour'"),
    "a reason with a space": ({**GOOD_FINDING, "reason": "golden mismatch"},
                              "bad finding reason 'golden mismatch'"),
    "a reason of 1 MB": ({**GOOD_FINDING, "reason": "r" * 1_000_000}, "bad finding reason"),
    "an upper-case reason": ({**GOOD_FINDING, "reason": "LOAD_FAILED"}, "bad finding reason"),
    "a NaN observed": ({**GOOD_FINDING, "observed": math.nan}, "observed must be a finite"),
    "an infinite limit": ({**GOOD_FINDING, "limit": -math.inf}, "limit must be a finite"),
    "a sample of -2": ({**GOOD_FINDING, "sample": -2}, "sample '-2' is not"),
    "a sample of 2^31": ({**GOOD_FINDING, "sample": 2**31}, "is not a golden sample's index"),
    "a sample that is text": ({**GOOD_FINDING, "sample": "3"}, "is not a golden sample's index"),
    "an observed that is text": ({**GOOD_FINDING, "observed": "1.0"}, "observed is str"),
    "an observed that is a bool": ({**GOOD_FINDING, "observed": True}, "observed is bool"),
    "an interpreter that is a number": ({**GOOD_FINDING, "interpreter": 3},
                                        "interpreter is int, not text"),
}


@pytest.mark.parametrize("case", BAD_FINDINGS)
def test_a_malformed_finding_is_dropped_and_its_event_kept_with_a_note(
    session_factory: sessionmaker[Session], case: str
) -> None:
    """Input tried: a "failed" event about the device's desired variant carrying a finding with
    the named defect: the event is stored and moves the device to failed (a rollout waits for
    it), without the finding, and its message ends in a note saying it was dropped and why."""
    finding, says = BAD_FINDINGS[case]
    with transaction(session_factory) as s:
        device_id = _device(s)
        _desired(s, device_id)
        outcome = telemetry.record_status(
            s, device_id, [_event(state="failed", message="load failed", finding=finding)],
            settings=SETTINGS, now=NOW)
    assert (outcome.accepted, outcome.rejections) == (1, ())
    event = _stored_event(session_factory)
    assert event.finding is None
    assert event.message.startswith("load failed [finding dropped: ")
    assert says in event.message and event.message.endswith("]")
    assert len(event.message) < 300
    with transaction(session_factory) as s:
        dm = s.get(DeviceModel, (device_id, "m"))
        assert dm is not None and (dm.state, dm.message) == ("failed", event.message)
        assert s.scalar(sa.select(sa.func.count()).select_from(InstallEvent)
                        .where(InstallEvent.finding.is_not(None))) == 0


def test_the_note_on_a_dropped_finding_fits_beside_a_message_at_its_bound(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a message of 10,000 characters and a finding with a NaN limit: the message
    is cut (with its marker) to leave room, and the note is whole at the end, all within
    max_event_message_chars."""
    with transaction(session_factory) as s:
        telemetry.record_status(
            s, _device(s), [_event(state="failed", message="x" * 10_000,
                                   finding={**GOOD_FINDING, "limit": math.nan})],
            settings=SETTINGS, now=NOW)
    message = _stored_event(session_factory).message
    assert len(message) <= SETTINGS.max_event_message_chars
    assert "[cut from 10000 characters] [finding dropped: " in message
    assert message.endswith("limit must be a finite number, got nan]")


def test_a_findings_over_long_text_is_cut_to_its_bound_and_kept(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a finding whose interpreter version is 100,000 characters, whose output
    name holds NUL and is 1,000 characters, and whose interpreter is 257: each stored cut to
    max_finding_text_chars with a visible marker (NUL as U+FFFD); the rest as sent."""
    finding = {**GOOD_FINDING, "interpreter": "i" * 257, "interpreter_version": "9" * 100_000,
               "output": "out\x00" + "o" * 996, "sample": 3, "reason": "golden_mismatch"}
    with transaction(session_factory) as s:
        telemetry.record_status(s, _device(s), [_event(state="incompatible", finding=finding)],
                                settings=SETTINGS, now=NOW)
    stored = _stored_event(session_factory).finding
    assert stored is not None
    bound = SETTINGS.max_finding_text_chars
    for name, length in (("interpreter", 257), ("interpreter_version", 100_000),
                         ("output", 1000)):
        assert len(stored[name]) == bound
        assert stored[name].endswith(f"[cut from {length} characters]")
    assert stored["output"].startswith("out\ufffdo")
    assert (stored["reason"], stored["sample"], stored["limit"]) == ("golden_mismatch", 3, 0.0)
