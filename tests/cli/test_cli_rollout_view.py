"""How a staged rollout reads: the JSON of ``rollout status`` (plan, waves, gate readings), its
table, the live view of ``--watch`` and audit events, all from constructed messages."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.cli import convert
from controlplane.cli.rollout_view import bar, render_events, render_live, render_rollout
from protos import edgefleet_pb2 as pb

MAY_1 = Timestamp(seconds=1714564800)  # 2024-05-01T12:00:00Z
MAY_1_1210 = Timestamp(seconds=1714564800 + 600)

PLAN = pb.RolloutPlan(
    waves=["5", "10%", "100%"], bake_seconds=600, success_threshold=0.95, max_failures="5%",
    min_finished=10, step_timeout_seconds=1800, max_per_minute=0, dynamic=False,
    window=pb.MaintenanceWindow(cron="0 22 * * *", duration_seconds=7200,
                                time_zone="Europe/Berlin"),
    gates=pb.Gates(max_p95_regression=0.2, max_error_rate=0.01, max_nonfinite_rate=0.0,
                   max_rollbacks=0, min_inferences=100, on_breach="pause"))

P95 = pb.GateReading(gate="p95_regression", hardware_class="hc-0123456789ab",
                     class_name="aarch64/tflite-runtime-2.14/4G/cpu", verdict="breach",
                     observed=0.35, limit=0.2, baseline=10.0, new_value=13.5, inferences=340,
                     baseline_inferences=900, baseline_source="previous_version_now",
                     detail="p95 13.5 ms against 10 ms")
ERRORS = pb.GateReading(gate="error_rate", hardware_class="hc-0123456789ab",
                        class_name="aarch64/tflite-runtime-2.14/4G/cpu", verdict="inconclusive",
                        observed=0.0, limit=0.01, inferences=40, baseline_source="none")


def _rollout(state: str = "paused") -> pb.Rollout:
    return pb.Rollout(
        id="r1", model="face", version="1.2.0", selector="site=berlin", state=state,
        reason="gate p95_regression breached on aarch64/tflite-runtime-2.14/4G/cpu",
        previous_version="1.1.0", plan=PLAN, created_at=MAY_1,
        waves=[
            pb.Wave(index=0, target=5, devices=5, succeeded=5, state="succeeded",
                    started_at=MAY_1, completed_at=MAY_1, finished_at=MAY_1_1210),
            pb.Wave(index=1, target=10, devices=5, succeeded=3, failed=1, timed_out=1,
                    in_progress=1, state="gated", started_at=MAY_1_1210,
                    bake_until=MAY_1_1210, gates=[P95, ERRORS]),
            pb.Wave(index=2, target=100, devices=90, queued=88, held=2, state="pending"),
        ],
    )


def test_status_json_keeps_the_old_keys_and_adds_plan_waves_and_gates() -> None:
    doc = convert.rollout(_rollout())
    for key in ("id", "state", "waves", "model", "version", "selector", "variant", "prefer",
                "created_at", "updated_at", "created_by", "failed_devices"):
        assert key in doc
    assert (doc["reason"], doc["previous_version"]) == (
        "gate p95_regression breached on aarch64/tflite-runtime-2.14/4G/cpu", "1.1.0")
    assert doc["plan"] == {
        "waves": ["5", "10%", "100%"], "bake_seconds": 600, "success_threshold": 0.95,
        "max_failures": "5%", "min_finished": 10, "step_timeout_seconds": 1800,
        "max_per_minute": 0, "start_at": None,
        "window": {"cron": "0 22 * * *", "duration_seconds": 7200, "time_zone": "Europe/Berlin"},
        "dynamic": False,
        "gates": {"max_p95_regression": 0.2, "max_error_rate": 0.01, "max_nonfinite_rate": 0.0,
                  "max_rollbacks": 0, "min_inferences": 100, "on_breach": "pause"},
    }
    wave = doc["waves"][1]
    assert {k: wave[k] for k in ("index", "devices", "succeeded", "failed", "state")} == {
        "index": 1, "devices": 5, "succeeded": 3, "failed": 1, "state": "gated"}
    assert (wave["target"], wave["timed_out"], wave["in_progress"], wave["queued"]) == (
        10, 1, 1, 0)
    assert (wave["started_at"], wave["bake_until"], wave["completed_at"]) == (
        "2024-05-01T12:10:00Z", "2024-05-01T12:10:00Z", None)
    assert wave["gates"][0] == {
        "gate": "p95_regression", "hardware_class": "hc-0123456789ab",
        "class_name": "aarch64/tflite-runtime-2.14/4G/cpu", "verdict": "breach",
        "observed": 0.35, "limit": 0.2, "baseline": 10.0, "new_value": 13.5,
        "inferences": 340, "baseline_inferences": 900,
        "baseline_source": "previous_version_now", "detail": "p95 13.5 ms against 10 ms"}
    assert (wave["gates"][1]["baseline"], wave["gates"][1]["detail"]) == (None, None)
    assert doc["waves"][2]["held"] == 2
    json.dumps(doc)   # one JSON document, nothing a script cannot read


def test_a_rollout_without_plan_or_reason_has_explicit_nulls() -> None:
    doc = convert.rollout(pb.Rollout(id="r1", state="running"))
    assert (doc["plan"], doc["reason"], doc["previous_version"]) == (None, None, None)
    assert "plan:" not in render_rollout(doc)
    no_window = convert.plan(pb.RolloutPlan(waves=["100%"], bake_seconds=0))
    assert (no_window["window"], no_window["gates"], no_window["success_threshold"]) == (
        None, None, None)


def test_status_table_shows_plan_reason_waves_and_gate_readings() -> None:
    text = render_rollout(convert.rollout(_rollout()))
    assert "state:      paused" in text
    assert "reason:     gate p95_regression breached on aarch64" in text
    assert "replaces:   face:1.1.0" in text
    for line in ("waves:             5,10%,100%", "bake:              10m",
                 "success threshold: 95%", "max failures:      5%", "step timeout:      30m",
                 "rate:              no limit", "start:             at once",
                 "window:            '0 22 * * *' for 2h (Europe/Berlin)", "dynamic:           no",
                 "on breach:         pause"):
        assert line in text, line
    assert "p95 at most +20%, errors at most 1%, non-finite at most 0%, rollbacks at most 0; " \
           "judged from 100 inferences per class" in text
    rows = {line.split()[0]: line.split() for line in text.split("waves:\n", 1)[1].splitlines()
            if line[:1].isdigit()}
    # wave target devices queued in-progress held succeeded failed skipped no-variant rolled-back
    assert rows["1"][:10] == ["1", "10", "5", "0", "1", "0", "3", "1", "(1", "timed"]
    assert rows["1"][-2:] == ["gated", "2024-05-01T12:10:00Z"]
    assert rows["2"][:6] == ["2", "100", "90", "88", "0", "2"]
    gates = text.split("wave 1 gates:\n", 1)[1].splitlines()
    assert gates[0].split() == ["GATE", "CLASS", "VERDICT", "OBSERVED", "LIMIT",
                                "INFERENCES/MIN", "BASELINE", "DETAIL"]
    assert gates[1].split()[:9] == ["p95_regression", "aarch64/tflite-runtime-2.14/4G/cpu",
                                    "breach", "+35%", "(13.5", "vs", "10", "ms)", "+20%"]
    assert "340/100" in gates[1] and "previous_version_now (900)" in gates[1]
    assert gates[2].split()[:7] == ["error_rate", "aarch64/tflite-runtime-2.14/4G/cpu",
                                    "inconclusive", "0%", "1%", "40/100", "none"]
    assert "wave 0 gates:" not in text


def test_the_progress_bar_fills_with_the_share_done() -> None:
    assert bar(57, 100) == "[#########.......] 57/100"
    assert bar(0, 5) == "[................] 0/5"
    assert bar(5, 5) == "[################] 5/5"
    assert bar(0, 0) == "[................] 0/0"


def test_live_view_has_a_bar_per_wave_counts_by_state_gates_and_the_reason() -> None:
    text = render_live(convert.rollout(_rollout()))
    lines = text.splitlines()
    assert "state:    paused" in lines
    assert "reason:   gate p95_regression breached on aarch64/tflite-runtime-2.14/4G/cpu" in lines
    wave = {line.split()[1]: line for line in lines if line.startswith("wave ") and "[" in line}
    assert "[################] 5/5" in wave["0"] and "succeeded" in wave["0"]
    assert "[#########.......] 3/5" in wave["1"]
    assert "1 in progress, 1 failed (1 timed out)" in wave["1"]
    assert "88 queued, 2 held for window" in wave["2"] and "pending" in wave["2"]
    gates = text.split("wave 1 gates:\n", 1)[1]
    assert "breach" in gates and "+35%" in gates and "340/100" in gates
    assert "\x1b" not in text


def test_live_view_says_until_when_a_wave_bakes() -> None:
    rollout = _rollout("running")
    rollout.reason = ""
    rollout.waves[1].state = "baking"
    text = render_live(convert.rollout(rollout))
    assert "baking until 2024-05-01T12:10:00Z" in text
    assert "reason:" not in text


def test_audit_events_parse_their_details_and_null_what_is_absent() -> None:
    created = pb.AuditEvent(at=MAY_1, actor="0123456789abcdef", actor_role="operator",
                            action="rollout.created", subject="rollout", subject_id="r1",
                            details_json='{"devices_matching": 3}', wave=-1)
    paused = pb.AuditEvent(at=MAY_1_1210, actor="engine", actor_role="engine",
                           action="rollout.paused", subject="rollout", subject_id="r1",
                           reason="inconclusive: error_rate", wave=1, details_json="not json")
    docs = [convert.audit_event(created), convert.audit_event(paused)]
    assert docs[0] == {"at": "2024-05-01T12:00:00Z", "actor": "0123456789abcdef",
                       "actor_role": "operator", "action": "rollout.created",
                       "subject": "rollout", "subject_id": "r1", "wave": None, "reason": None,
                       "details": {"devices_matching": 3}}
    assert (docs[1]["wave"], docs[1]["details"]) == (1, "not json")
    assert convert.audit_event(pb.AuditEvent(action="x", wave=-1))["details"] == {}
    history = render_events(docs, subject=False).splitlines()
    assert history[0].split() == ["TIME", "ACTOR", "ROLE", "ACTION", "WAVE", "REASON"]
    assert history[1].split() == ["2024-05-01T12:00:00Z", "0123456789abcdef", "operator",
                                  "rollout.created", "-", "-"]
    assert history[2].split() == ["2024-05-01T12:10:00Z", "engine", "engine", "rollout.paused",
                                  "1", "inconclusive:", "error_rate"]
    log = render_events(docs, subject=True).splitlines()
    assert log[0].split()[4] == "SUBJECT" and log[1].split()[4] == "rollout:r1"
    assert render_events([], subject=True) == "(no events)"
