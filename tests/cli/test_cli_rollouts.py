"""``rollout create|list|status [--watch]|pause|resume|abort|rollback`` against a real server."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import grpc
import pytest

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


def test_rollout_create_with_waves_and_bake_warns_they_are_ignored(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("CreateRollout", _rollout("pending"))
    result = cli("rollout", "create", "face:1.2.0", "--selector", "site=berlin",
                 "--waves", "1%,10%,100%", "--bake", "10m", "-o", "json")
    assert result.code == 0
    assert "--waves is ignored" in result.err
    assert "--bake is ignored" in result.err
    assert result.json()["id"] == "r1"  # warnings stay off stdout


def test_rollout_create_with_a_single_full_wave_does_not_warn(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("CreateRollout", _rollout("pending"))
    result = cli("rollout", "create", "face:1.2.0", "--selector", "a=b", "--waves", "100%")
    assert result.code == 0
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
    assert doc["waves"] == [{"index": 0, "devices": 3, "succeeded": 1, "failed": 0, "skipped": 0,
                             "no_compatible": 0, "state": "running"}]
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
    assert "state:      succeeded" in screens[-1]


def test_status_says_how_many_devices_were_skipped(cli: Runner, admin_server: Any) -> None:
    """A device taken over by a newer rollout (or revoked) is neither ok nor failed: the table
    and the progress line count it, so `succeeded != devices` is explained."""
    rollout = _rollout("succeeded", succeeded=1)
    rollout.waves[0].skipped = 2
    admin_server.service.reply("GetRollout", rollout)
    out = cli("rollout", "status", "r1").out
    assert "1/3 ok, 0 failed, 2 skipped" in out
    assert cli("rollout", "status", "r1", "-o", "json").json()["waves"][0]["skipped"] == 2
