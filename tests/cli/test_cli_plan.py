"""``rollout create``'s plan flags: each one lands in its ``RolloutPlan`` field, a flag not given
stays unset (the server's default), and bad input is a usage error (exit 2) naming the flag."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controlplane.cli.commands.rollouts import plan_request
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.main import build_parser
from protos import edgefleet_pb2 as pb
from tests.cli.conftest import Runner

parse = build_parser().parse_args
CREATE = ["rollout", "create", "face:1.2.0", "--selector", "site=berlin"]


def _plan(*flags: str) -> pb.RolloutPlan:
    return plan_request(parse([*CREATE, *flags]))


def test_no_plan_flags_send_an_empty_plan() -> None:
    plan = _plan()
    assert plan == pb.RolloutPlan()
    for field in ("bake_seconds", "success_threshold", "max_failures", "min_finished",
                  "step_timeout_seconds", "max_per_minute", "start_at", "window", "dynamic",
                  "gates"):
        assert not plan.HasField(field), field


def test_every_plan_flag_lands_in_its_field() -> None:
    plan = _plan("--waves", "5,10%,50%,100%", "--bake", "10m", "--success-threshold", "95%",
                 "--max-failures", "5%", "--min-finished", "20", "--step-timeout", "15m",
                 "--max-per-minute", "60", "--start-at", "2026-05-01T22:00:00Z",
                 "--window", "0 22 * * mon-fri", "--window-duration", "2h",
                 "--window-tz", "Europe/Berlin", "--dynamic")
    assert list(plan.waves) == ["5", "10%", "50%", "100%"]
    assert (plan.bake_seconds, plan.success_threshold, plan.max_failures) == (600, 0.95, "5%")
    assert (plan.min_finished, plan.step_timeout_seconds, plan.max_per_minute) == (20, 900, 60)
    assert plan.start_at.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2026, 5, 1, 22,
                                                                  tzinfo=dt.UTC)
    assert plan.window == pb.MaintenanceWindow(cron="0 22 * * mon-fri", duration_seconds=7200,
                                               time_zone="Europe/Berlin")
    assert plan.HasField("dynamic") and plan.dynamic is True
    assert not plan.HasField("gates")


def test_zero_values_are_sent_not_dropped() -> None:
    """``--bake 0s`` or ``--max-per-minute 0`` are asked for, not the default."""
    plan = _plan("--bake", "0s", "--max-per-minute", "0", "--max-failures", "0",
                 "--min-finished", "0", "--no-dynamic")
    assert plan.HasField("bake_seconds") and plan.bake_seconds == 0
    assert plan.HasField("max_per_minute") and plan.HasField("min_finished")
    assert plan.max_failures == "0"
    assert plan.HasField("dynamic") and plan.dynamic is False


def test_gate_flags_land_in_gates_and_unset_ones_stay_unset() -> None:
    plan = _plan("--max-p95-regression", "20%", "--max-error-rate", "1%",
                 "--max-nonfinite-rate", "0", "--max-rollbacks", "2", "--min-inferences",
                 "500", "--on-breach", "rollback")
    g = plan.gates
    assert (g.max_p95_regression, g.max_error_rate, g.max_nonfinite_rate) == (
        pytest.approx(0.2), pytest.approx(0.01), 0.0)
    assert g.HasField("max_nonfinite_rate")
    assert (g.max_rollbacks, g.min_inferences, g.on_breach) == (2, 500, "rollback")
    only = _plan("--max-error-rate", "0.02").gates
    assert only.max_error_rate == pytest.approx(0.02)
    assert not any(only.HasField(f) for f in ("max_p95_regression", "max_nonfinite_rate",
                                              "max_rollbacks", "min_inferences"))
    assert only.on_breach == ""


def test_start_in_thirty_minutes_is_thirty_minutes_from_now() -> None:
    before = dt.datetime.now(dt.UTC)
    start = _plan("--start-at", "+30m").start_at.ToDatetime(tzinfo=dt.UTC)
    after = dt.datetime.now(dt.UTC)
    assert before + dt.timedelta(minutes=30) <= start <= after + dt.timedelta(minutes=30)


def test_a_window_regression_above_100_percent_is_allowed() -> None:
    assert _plan("--max-p95-regression", "150%").gates.max_p95_regression == pytest.approx(1.5)


@pytest.mark.parametrize(("flags", "complaint"), [
    (["--window", "0 22 * * *"], "--window needs --window-duration"),
    (["--window-duration", "2h"], "go with --window CRON"),
    (["--window-tz", "UTC"], "go with --window CRON"),
])
def test_window_flags_must_come_together(flags: list[str], complaint: str) -> None:
    with pytest.raises(CliError, match=complaint) as exc:
        _plan(*flags)
    assert exc.value.code == ExitCode.USAGE


@pytest.mark.parametrize(("flags", "complaint"), [
    (["--waves", "10%,50%"], "argument --waves: the last wave in '10%,50%' must be 100%"),
    (["--waves", "5,3,100%"], "argument --waves: waves in '5,3,100%' must increase"),
    (["--waves", "five,100%"], "argument --waves: wave 'five'"),
    (["--bake", "10"], "argument --bake: duration '10' has no unit"),
    (["--bake", "9999999d"], "argument --bake: duration '9999999d' is too long"),
    (["--success-threshold", "120%"], "argument --success-threshold: '120%' must be from 0 to "
                                      "100%, e.g. 95%"),
    (["--success-threshold", "most"], "argument --success-threshold: 'most' is not a share"),
    (["--max-failures", "a few"], "argument --max-failures: 'a few' is not a device count "
                                  "like 3 or a percentage like 5%"),
    (["--min-finished", "-1"], "argument --min-finished: '-1' must be from 0"),
    (["--step-timeout", "0s"], "argument --step-timeout: duration '0s' must be at least 1s"),
    (["--max-per-minute", "many"], "argument --max-per-minute: 'many' is not a whole number"),
    (["--start-at", "tomorrow"], "argument --start-at: start time 'tomorrow' is not an RFC "
                                 "3339 time like 2026-05-01T22:00:00Z or a delay like +30m"),
    (["--start-at", "2026-05-01T22:00"], "has no time zone"),
    (["--window", "22 * * *", "--window-duration", "2h"], "argument --window: maintenance "
                                                          "window '22 * * *' has 4 fields"),
    (["--window", "0 22 * * *", "--window-duration", "2"], "argument --window-duration"),
    (["--window", "0 22 * * *", "--window-duration", "2h", "--window-tz", "Berlin time"],
     "argument --window-tz: time zone 'Berlin time' is not an IANA name like Europe/Berlin"),
    (["--max-p95-regression", "x"], "argument --max-p95-regression: 'x' is not a share: give "
                                    "e.g. 20%"),
    (["--max-error-rate", "2"], "argument --max-error-rate: '2' must be from 0 to 100%"),
    (["--max-nonfinite-rate", "-0.1"], "argument --max-nonfinite-rate"),
    (["--max-rollbacks", "1.5"], "argument --max-rollbacks: '1.5' is not a whole number"),
    (["--min-inferences", "lots"], "argument --min-inferences"),
    (["--on-breach", "panic"], "argument --on-breach: invalid choice: 'panic'"),
    (["--dynamic=yes"], "--dynamic"),
])
def test_bad_plan_flags_are_usage_errors_naming_the_flag(
    run: Runner, flags: list[str], complaint: str
) -> None:
    """Input tried: each malformed flag in the parameters; nothing is sent (no server given)."""
    result = run(*CREATE, *flags, "--server", "127.0.0.1:1", "--token", "t")
    assert result.code == ExitCode.USAGE
    assert complaint in result.err
    assert result.out == ""


def test_create_sends_the_plan_and_says_nothing_is_ignored(cli: Runner,
                                                           admin_server: Any) -> None:
    admin_server.service.reply("CreateRollout", pb.Rollout(id="r1", state="pending"))
    result = cli(*CREATE, "--waves", "1%,10%,100%", "--bake", "10m", "--on-breach", "rollback",
                 "-o", "json")
    assert result.code == 0
    assert "ignored" not in result.err and "warning" not in result.err
    request = admin_server.service.requests["CreateRollout"][0]
    assert list(request.plan.waves) == ["1%", "10%", "100%"]
    assert request.plan.bake_seconds == 600
    assert request.plan.gates.on_breach == "rollback"
    assert result.json()["id"] == "r1"
