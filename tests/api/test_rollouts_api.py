"""Staged rollouts over a real socket: the plan as asked and as shown, its refusals, operator
actions with their reasons in the rollout's history and the audit log, and who may read them."""

from __future__ import annotations

import json

import grpc
import pytest

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push, wait_for, wait_ready


def _token(server: RunningServer, role: str) -> str:
    return server.admin().CreateToken(pb.CreateTokenRequest(role=role),
                                      metadata=bearer(server.admin_token)).token


def test_a_plan_travels_with_defaults_filled_and_actions_land_in_history_and_audit(
        server: RunningServer) -> None:
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=31))
    wait_ready(server, "cnn", "1.0.0")
    for _ in range(3):
        enroll(server, labels={"site": "plan"})
    operator, viewer = _token(server, "operator"), _token(server, "viewer")
    admin = server.admin()
    created = admin.CreateRollout(pb.CreateRolloutRequest(
        model="cnn", version="1.0.0", selector="site=plan",
        plan=pb.RolloutPlan(waves=["1", "50%", "100%"], max_failures="10%",
                            gates=pb.Gates(max_p95_regression=0.5, on_breach="rollback"))),
        metadata=bearer(operator))
    plan = created.plan
    assert list(plan.waves) == ["1", "50%", "100%"]
    assert plan.bake_seconds == 600 and plan.success_threshold == 1.0   # the defaults
    assert plan.max_failures == "10%" and plan.step_timeout_seconds == 1800
    assert plan.gates.max_p95_regression == 0.5 and plan.gates.on_breach == "rollback"
    assert plan.gates.min_inferences == 100 and plan.gates.max_error_rate == 0.01
    got = wait_for("wave 0 started", lambda: (lambda r: r if r.waves[0].state == "running"
                                              else None)(admin.GetRollout(
        pb.GetRolloutRequest(id=created.id), metadata=bearer(viewer))))
    assert [w.target for w in got.waves] == [1, 2, 3]
    assert (got.waves[0].in_progress, got.waves[1].queued, got.waves[2].queued) == (1, 1, 1)
    admin.ChangeRollout(pb.ChangeRolloutRequest(id=created.id, action="pause",
                                                reason="checking dashboards"),
                        metadata=bearer(operator))
    history = admin.RolloutHistory(pb.RolloutHistoryRequest(id=created.id),
                                   metadata=bearer(viewer))
    actions = [(e.action, e.actor_role) for e in history.events]
    assert actions[0] == ("rollout.created", "operator")
    assert ("rollout.started", "engine") in actions
    assert actions[-1] == ("rollout.paused", "operator")
    paused = history.events[-1]
    assert paused.reason == "checking dashboards"
    assert json.loads(paused.details_json) == {"from": "running"}
    assert json.loads(history.events[0].details_json)["devices_matching"] == 3
    log = admin.ListAudit(pb.ListAuditRequest(subject_id=created.id),
                          metadata=bearer(server.admin_token))
    assert [e.action for e in log.events] == [e.action for e in reversed(history.events)]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_read_the_whole_audit_log(server: RunningServer, role: str) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        server.admin().ListAudit(pb.ListAuditRequest(), metadata=bearer(_token(server, role)))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(("plan", "fragment"), [
    (pb.RolloutPlan(waves=["50%"]), "end the waves with 100%"),
    (pb.RolloutPlan(waves=["x" * 5000, "100%"]), "bad wave"),
    (pb.RolloutPlan(max_failures="lots"), "bad max failures"),
    (pb.RolloutPlan(gates=pb.Gates(on_breach="panic")), "pause or rollback"),
    (pb.RolloutPlan(gates=pb.Gates(max_error_rate=-0.5)), "out of range"),
])
def test_a_malformed_plan_is_invalid_argument_and_nothing_is_created(
        server: RunningServer, plan: pb.RolloutPlan, fragment: str) -> None:
    """Input tried: each plan in the parameters, over the wire."""
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=32))
    wait_ready(server, "cnn", "1.0.0")
    enroll(server, labels={"site": "bad"})
    with pytest.raises(grpc.RpcError) as exc:
        server.admin().CreateRollout(pb.CreateRolloutRequest(
            model="cnn", version="1.0.0", selector="site=bad", plan=plan),
            metadata=bearer(server.admin_token))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in exc.value.details()
    listed = server.admin().ListRollouts(pb.ListRolloutsRequest(),
                                         metadata=bearer(server.admin_token))
    assert list(listed.rollouts) == []


def test_a_device_token_reads_no_rollout_history(server: RunningServer) -> None:
    _, device_token = enroll(server)
    with pytest.raises(grpc.RpcError) as exc:
        server.admin().RolloutHistory(pb.RolloutHistoryRequest(id="x"),
                                      metadata=bearer(device_token))
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
