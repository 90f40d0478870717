"""The staged-rollout commands against the real control plane (``tests.api``'s running server):
a plan asked for with flags comes back in force with the server's defaults, a reason given to
``rollout pause`` lands in ``rollout history`` and ``audit list``, a maintenance window and a
start time travel as asked."""

from __future__ import annotations

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer, server, server_settings
from tests.api.helpers import enroll, push, wait_for, wait_ready
from tests.cli.conftest import Result, Runner

__all__ = ["server", "server_settings"]   # the fixtures, imported to be found here


def test_plan_flags_history_and_audit_through_the_real_server(run: Runner,
                                                              server: RunningServer) -> None:
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=41))
    wait_ready(server, "cnn", "1.0.0")
    for _ in range(3):
        enroll(server, labels={"site": "cli"})
    operator = server.admin().CreateToken(pb.CreateTokenRequest(role="operator"),
                                          metadata=bearer(server.admin_token)).token

    def cli(*argv: str, token: str = operator) -> Result:
        return run(*argv, "--server", server.addr, "--token", token)

    created = cli("rollout", "create", "cnn:1.0.0", "--selector", "site=cli", "--waves",
                  "1,50%,100%", "--max-failures", "10%", "--max-p95-regression", "50%",
                  "--on-breach", "rollback", "-o", "json")
    assert created.code == 0, created.err
    rollout_id = created.json()["id"]
    plan = created.json()["plan"]
    assert plan["waves"] == ["1", "50%", "100%"]
    assert (plan["max_failures"], plan["gates"]["max_p95_regression"],
            plan["gates"]["on_breach"]) == ("10%", 0.5, "rollback")
    # what the flags left out, as the server fills it in
    assert (plan["bake_seconds"], plan["success_threshold"], plan["step_timeout_seconds"]) == (
        600, 1.0, 1800)
    assert plan["gates"]["min_inferences"] == 100

    def started() -> dict[str, object] | None:
        doc = cli("rollout", "status", rollout_id, "-o", "json").json()
        return doc if doc["waves"] and doc["waves"][0]["state"] == "running" else None

    status = wait_for("wave 0 to start", started)
    assert [w["target"] for w in status["waves"]] == [1, 2, 3]   # type: ignore[index]
    paused = cli("rollout", "pause", rollout_id, "--reason", "checking dashboards", "-o", "json")
    assert (paused.code, paused.json()["state"]) == (0, "paused")

    history = cli("rollout", "history", rollout_id, "-o", "json")
    assert history.code == 0, history.err
    events = history.json()["events"]
    assert (events[0]["action"], events[0]["actor_role"]) == ("rollout.created", "operator")
    assert (events[-1]["action"], events[-1]["reason"], events[-1]["details"]) == (
        "rollout.paused", "checking dashboards", {"from": "running"})
    assert "checking dashboards" in cli("rollout", "history", rollout_id).out

    assert cli("audit", "list").code == 4            # an operator token: admins only
    log = cli("audit", "list", "--subject", rollout_id, "-o", "json", token=server.admin_token)
    assert log.code == 0, log.err
    assert [e["action"] for e in log.json()["events"]] == [e["action"]
                                                           for e in reversed(events)]

    assert cli("rollout", "abort", rollout_id, "--reason", "next one").code == 0
    windowed = cli("rollout", "create", "cnn:1.0.0", "--selector", "site=cli", "--window",
                   "0 22 * * mon-fri", "--window-duration", "2h", "--window-tz",
                   "Europe/Berlin", "--start-at", "+1h", "-o", "json")
    assert windowed.code == 0, windowed.err
    plan = windowed.json()["plan"]
    assert plan["window"] == {"cron": "0 22 * * mon-fri", "duration_seconds": 7200,
                              "time_zone": "Europe/Berlin"}
    assert plan["start_at"] is not None and plan["start_at"].endswith("Z")
    refused = cli("rollout", "create", "cnn:1.0.0", "--selector", "site=cli", "--window",
                  "0 25 * * *", "--window-duration", "2h")
    assert refused.code == 6, refused.err   # the shape passes the CLI; the server knows better
    assert "25" in refused.err, refused.err
