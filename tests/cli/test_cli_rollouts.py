"""``rollout create|list|status [--watch]|history|pause|resume|abort|rollback`` and ``audit list``
against a real gRPC server with canned answers."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.cli.commands.rollouts import CLEAR_SCREEN
from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


def _rollout(state: str, succeeded: int = 0, failed: int = 0) -> pb.Rollout:
    wave_state = {"paused": "running", "aborted": "failed", "rolled_back": "failed"}.get(state,
                                                                                          state)
    return pb.Rollout(
        id="r1", model="face", version="1.2.0", selector="site=berlin", state=state,
        waves=[pb.Wave(index=0, devices=3, succeeded=succeeded, failed=failed,
                       state=wave_state)],
    )


def test_rollout_create_sends_model_version_selector(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateRollout", _rollout("pending"))
    result = cli("rollout", "create", "face:1.2.0", "--selector", "site=berlin", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["CreateRollout"][0]
    assert (request.model, request.version, request.selector) == ("face", "1.2.0",
                                                                  "site=berlin")
    doc = result.json()
    assert (doc["id"], doc["state"]) == ("r1", "pending")
    assert "edgefleet rollout status r1 --watch" in result.err
    assert "warning" not in result.err


def test_rollout_create_for_an_unknown_version_exits_5(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("CreateRollout", grpc.StatusCode.NOT_FOUND, "no model face:9")
    assert cli("rollout", "create", "face:9", "--selector", "a=b").code == 5


def test_rollout_list(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListRollouts", pb.ListRolloutsResponse(
        rollouts=[_rollout("running", succeeded=1, failed=1)]))
    doc = cli("rollout", "list", "-o", "json").json()
    assert [r["id"] for r in doc["rollouts"]] == ["r1"]
    table = cli("rollout", "list").out.splitlines()
    assert table[1].split() == ["r1", "face:1.2.0", "site=berlin", "running", "1/3", "ok,",
                                "1", "failed", "-"]


def test_rollout_status_once(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _rollout("running", succeeded=1))
    result = cli("rollout", "status", "r1", "-o", "json")
    assert result.code == 0
    assert admin_server.service.calls("GetRollout") == 1
    doc = result.json()
    assert doc["waves"] == [{"index": 0, "target": 0, "devices": 3, "queued": 0, "in_progress": 0,
                             "held": 0, "succeeded": 1, "failed": 0, "timed_out": 0,
                             "skipped": 0, "no_compatible": 0, "rolled_back": 0,
                             "state": "running", "started_at": None, "completed_at": None,
                             "bake_until": None, "finished_at": None, "gates": []}]
    assert admin_server.service.requests["GetRollout"][0].id == "r1"


def test_watch_polls_until_terminal_and_prints_only_the_final_json(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("GetRollout", _rollout("pending"), _rollout("running", 1),
                               _rollout("running", 2), _rollout("succeeded", 3))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 0
    assert admin_server.service.calls("GetRollout") == 4
    doc = result.json()
    assert (doc["state"], doc["waves"][0]["succeeded"]) == ("succeeded", 3)


def test_watch_in_a_pipe_prints_a_table_per_change(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _rollout("running", 1), _rollout("running", 1),
                               _rollout("running", 2), _rollout("succeeded", 3))
    result = cli("rollout", "status", "r1", "--watch")
    assert result.code == 0
    states = [line.split()[1] for line in result.out.splitlines() if line.startswith("state:")]
    assert states == ["running", "running", "succeeded"]  # the unchanged poll is not repeated
    assert "\x1b[" not in result.out


@pytest.mark.parametrize("state", ["failed", "aborted", "rolled_back"])
def test_watch_ending_unsuccessfully_exits_7_after_printing_the_document(
    cli: Runner, admin_server: Any, state: str
) -> None:
    admin_server.service.reply("GetRollout", _rollout("running"), _rollout(state, failed=3))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 7
    assert result.json()["state"] == state
    assert f"rollout r1 ended {state}" in result.err


def test_watch_stops_at_paused_with_success(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _rollout("running"), _rollout("paused"),
                               _rollout("running"))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 0
    assert admin_server.service.calls("GetRollout") == 2
    assert result.json()["state"] == "paused"


def test_status_without_watch_of_a_failed_rollout_exits_0(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _rollout("failed", failed=3))
    assert cli("rollout", "status", "r1").code == 0


def test_watch_that_loses_the_server_for_good_exits_3(cli: Runner, admin_server: Any) -> None:
    """Input tried: a server that stops answering (UNAVAILABLE on every poll) for longer than
    the watch's outage allowance (0.3 s in these tests, 120 s by default)."""
    service = admin_server.service
    service.reply("GetRollout", _rollout("running"), _rollout("running"),
                  service.aborting(grpc.StatusCode.UNAVAILABLE, "shutting down"))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 3
    assert service.calls("GetRollout") > 3  # it kept trying through the allowance
    assert "shutting down" in result.err and "still watching" in result.err
    assert result.out == ""


def test_watch_rides_out_a_server_restart(cli: Runner, admin_server: Any) -> None:
    """Input tried: two polls answered UNAVAILABLE (the server restarting), then answers."""
    service = admin_server.service
    down = service.aborting(grpc.StatusCode.UNAVAILABLE, "restarting")
    service.reply("GetRollout", _rollout("running"), down, down, _rollout("succeeded", 3))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 0
    assert result.json()["state"] == "succeeded"
    assert result.err.count("still watching") == 2


def test_watch_does_not_retry_a_refused_token(cli: Runner, admin_server: Any) -> None:
    """Input tried: the token revoked while watching (UNAUTHENTICATED): no retry, exit 4."""
    service = admin_server.service
    service.reply("GetRollout", _rollout("running"),
                  service.aborting(grpc.StatusCode.UNAUTHENTICATED, "unknown or invalid token"))
    result = cli("rollout", "status", "r1", "--watch", "-o", "json")
    assert result.code == 4
    assert service.calls("GetRollout") == 2


@pytest.mark.parametrize("action", ["pause", "resume", "abort", "rollback"])
def test_rollout_actions_send_change_rollout(
    cli: Runner, admin_server: Any, action: str
) -> None:
    admin_server.service.reply("ChangeRollout", _rollout("paused"))
    result = cli("rollout", action, "r1", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["ChangeRollout"][0]
    assert (request.id, request.action) == ("r1", action)
    assert result.json()["state"] == "paused"


def test_rollout_action_in_the_wrong_state_exits_6(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("ChangeRollout", grpc.StatusCode.FAILED_PRECONDITION,
                              "rollout r1 has already succeeded")
    result = cli("rollout", "resume", "r1")
    assert result.code == 6
    assert "not possible now: rollout r1 has already succeeded" in result.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_watch_on_a_terminal_redraws_in_place(
    cli: Runner, admin_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("GetRollout", _rollout("running", 1), _rollout("running", 1),
                               _rollout("succeeded", 3))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    assert cli("rollout", "status", "r1", "--watch").code == 0
    screens = terminal.getvalue().split(CLEAR_SCREEN)
    assert screens[0] == ""
    assert len(screens) == 4  # one redraw per poll, unchanged or not
    assert "state:    succeeded" in screens[-1]
    assert "[################] 3/3" in screens[-1]


def test_status_says_how_many_devices_were_skipped(cli: Runner, admin_server: Any) -> None:
    """A device taken over by a newer rollout (or revoked) is neither ok nor failed: the table
    and the progress line count it, so `succeeded != devices` is explained."""
    rollout = _rollout("succeeded", succeeded=1)
    rollout.waves[0].skipped = 2
    admin_server.service.reply("GetRollout", rollout)
    out = cli("rollout", "status", "r1").out
    assert "1/3 ok, 0 failed, 2 skipped" in out
    assert cli("rollout", "status", "r1", "-o", "json").json()["waves"][0]["skipped"] == 2


def _event(action: str, *, actor: str = "engine", role: str = "engine", wave: int = -1,
           reason: str = "", subject_id: str = "r1") -> pb.AuditEvent:
    return pb.AuditEvent(at=MAY_1, actor=actor, actor_role=role, action=action,
                         subject="rollout", subject_id=subject_id, wave=wave, reason=reason,
                         details_json='{"from": "running"}')


MAY_1 = Timestamp(seconds=1714564800)


@pytest.mark.parametrize("action", ["pause", "resume", "abort", "rollback"])
def test_rollout_actions_carry_a_reason(cli: Runner, admin_server: Any, action: str) -> None:
    admin_server.service.reply("ChangeRollout", _rollout("paused"))
    assert cli("rollout", action, "r1", "--reason", "checking dashboards").code == 0
    assert cli("rollout", action, "r1").code == 0
    with_reason, without = admin_server.service.requests["ChangeRollout"]
    assert (with_reason.action, with_reason.reason) == (action, "checking dashboards")
    assert without.reason == ""


def test_rollout_history_follows_every_page_oldest_first(cli: Runner, admin_server: Any) -> None:
    service = admin_server.service
    service.reply("RolloutHistory",
                  pb.RolloutHistoryResponse(events=[_event("rollout.created", actor="ab" * 8,
                                                           role="operator")],
                                            next_page_token="p2"),
                  pb.RolloutHistoryResponse(events=[_event("rollout.paused", wave=0,
                                                           reason="inconclusive")]))
    result = cli("rollout", "history", "r1", "-o", "json")
    assert result.code == 0
    first, second = service.requests["RolloutHistory"]
    assert (first.id, first.page_token, second.id, second.page_token) == ("r1", "", "r1", "p2")
    doc = result.json()
    assert doc["id"] == "r1"
    assert [(e["action"], e["actor_role"], e["wave"]) for e in doc["events"]] == [
        ("rollout.created", "operator", None), ("rollout.paused", "engine", 0)]
    assert set(doc["events"][0]) == {"at", "actor", "actor_role", "action", "subject",
                                     "subject_id", "wave", "reason", "details"}
    assert doc["events"][1]["details"] == {"from": "running"}


def test_rollout_history_table(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("RolloutHistory", pb.RolloutHistoryResponse(
        events=[_event("rollout.paused", wave=1, reason="checking dashboards",
                       actor="ab" * 8, role="operator")]))
    lines = cli("rollout", "history", "r1").out.splitlines()
    assert lines[0].split() == ["TIME", "ACTOR", "ROLE", "ACTION", "WAVE", "REASON"]
    assert lines[1].split() == ["2024-05-01T12:00:00Z", "ab" * 8, "operator", "rollout.paused",
                                "1", "checking", "dashboards"]


def test_history_of_an_unknown_rollout_exits_5(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("RolloutHistory", grpc.StatusCode.NOT_FOUND, "no rollout r9")
    result = cli("rollout", "history", "r9", "-o", "json")
    assert (result.code, result.out) == (5, "")


def test_audit_list_sends_its_filters_and_prints_one_document(cli: Runner,
                                                              admin_server: Any) -> None:
    admin_server.service.reply("ListAudit", pb.ListAuditResponse(
        events=[_event("rollout.paused", actor="ab" * 8, role="operator")]))
    result = cli("audit", "list", "--actor", "ab" * 8, "--subject", "r1", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["ListAudit"][0]
    assert (request.actor, request.subject_id) == ("ab" * 8, "r1")
    assert [e["subject_id"] for e in result.json()["events"]] == ["r1"]
    assert cli("audit", "list").out.splitlines()[1].split()[4] == "rollout:r1"
    unfiltered = admin_server.service.requests["ListAudit"][-1]
    assert (unfiltered.actor, unfiltered.subject_id) == ("", "")


def test_audit_list_with_a_token_below_admin_exits_4(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("ListAudit", grpc.StatusCode.PERMISSION_DENIED,
                              "ListAudit needs an admin token")
    result = cli("audit", "list")
    assert result.code == 4
    assert "admin" in result.err


def _staged(state: str, succeeded: int, reason: str = "") -> pb.Rollout:
    rollout = _rollout(state, succeeded=succeeded)
    rollout.reason = reason
    rollout.waves[0].gates.append(pb.GateReading(
        gate="error_rate", class_name="aarch64/tflite-runtime-2.14/4G/cpu", verdict="pass",
        observed=0.002, limit=0.01, inferences=150, baseline_source="previous_version_now"))
    return rollout


def test_watch_in_a_pipe_shows_bars_and_gates_once_per_change(cli: Runner,
                                                              admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _staged("running", 1), _staged("running", 1),
                               _staged("running", 2),
                               _staged("paused", 2, reason="inconclusive: error_rate"))
    result = cli("rollout", "status", "r1", "--watch")
    assert result.code == 0
    bars = [line.split()[2:4] for line in result.out.splitlines()
            if line.startswith("wave 0") and "[" in line]
    assert bars == [["[#####...........]", "1/3"], ["[##########......]", "2/3"],
                    ["[##########......]", "2/3"]]
    assert sum(line.startswith("error_rate ") for line in result.out.splitlines()) == 3
    assert result.out.splitlines().count("reason:   inconclusive: error_rate") == 1
    assert "\x1b[" not in result.out


def test_watch_that_ends_rolled_back_says_why_and_exits_7(cli: Runner,
                                                          admin_server: Any) -> None:
    admin_server.service.reply("GetRollout", _staged("running", 1),
                               _staged("rolled_back", 1, reason="gate error_rate breached"))
    result = cli("rollout", "status", "r1", "--watch")
    assert result.code == 7
    assert "rollout r1 ended rolled_back: gate error_rate breached" in result.err
