"""Staged rollouts end to end, every piece its own process on PostgreSQL and Redis: ``edgefleet
server`` and ``edgefleet worker``, real ``edgefleet-agent run`` devices.

A two-wave rollout with a bake is under way when the worker and then the server are killed
with SIGKILL; restarted, the rollout goes on from where it stood (each wave started once, as
the audit log shows) and succeeds. Then ``rollout rollback``: every device serves its kept
previous version again, from disk, without downloading it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

AGENTS = 3


def _status(f: Fleet, rollout_id: str) -> dict[str, Any]:
    return f.cli("rollout", "status", rollout_id)  # type: ignore[no-any-return]


def _settled(f: Fleet, rollout_id: str) -> dict[str, Any] | None:
    doc = _status(f, rollout_id)
    return doc if doc["state"] not in ("pending", "running") else None


def _serving(f: Fleet, agent_dir: Path) -> str | None:
    out = f.agent("status", "--data-dir", str(agent_dir), "-o", "json")
    models = json.loads(out.stdout)["models"] if out.returncode == 0 else []
    return models[0]["version"] if models and models[0]["state"] == "active" else None


def test_a_staged_rollout_survives_its_worker_and_server_being_killed_and_rolls_back_from_disk(
        postgres_server_url: str, redis_db_url: str, tmp_path: Path) -> None:
    db = testdb.create_database(postgres_server_url)
    try:
        _scenario(db, redis_db_url, tmp_path)
    finally:
        testdb.drop_database(db)


def _start_server(f: Fleet, data: Path, db: str, redis: str) -> None:
    f.spawn("server", [command("edgefleet"), "server", "--data-dir", str(data), "--listen",
                       f.server, "--db", db, "--redis", redis],
            env={"EDGEFLEET_VARIANT_KINDS": "float32"})


def _start_worker(f: Fleet, data: Path, db: str, redis: str) -> None:
    f.spawn("worker", [command("edgefleet"), "worker", "--data-dir", str(data), "--db", db,
                       "--redis", redis], env={"EDGEFLEET_VARIANT_KINDS": "float32"})


def _kill(f: Fleet, label: str) -> None:
    proc = f.procs.pop(label)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)


def _scenario(db: str, redis: str, tmp: Path) -> None:
    data = tmp / "server-data"
    with fleet(tmp, f"127.0.0.1:{free_port()}") as f:
        assert f.cli("db", "upgrade", "--db", db, check=False).returncode == 0
        _start_server(f, data, db, redis)
        token_file = data / "admin-token"
        wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
        _start_worker(f, data, db, redis)
        f.env["EDGEFLEET_TOKEN"] = token = token_file.read_text().strip()
        wait_for("the server to answer",
                 lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                 check=f.alive)
        for version, seed in (("1.0.0", 1), ("2.0.0", 2)):
            path = tmp / f"mlp-{version}.tflite"
            path.write_bytes(modelgen.build_mlp(seed=seed))
            assert f.cli("model", "push", str(path), "--name", "mlp", "--version", version,
                         "--wait")["status"] == "ready"
        enroll = f.cli("enroll-token", "create", "--uses", str(AGENTS))
        dirs = [tmp / f"agent-{i}" for i in range(AGENTS)]
        for i, agent_dir in enumerate(dirs):
            f.spawn(f"agent-{i}", [
                command("edgefleet-agent"), "run", "--server", f.server, "--data-dir",
                str(agent_dir), "--enroll-token", enroll["token"], "--trust-key",
                str(data / "signing-key.pub"), "--name", f"dev-{i}", "--poll-interval", "1"])
        wait_for("the agents to enroll",
                 lambda: len(f.cli("device", "list")["devices"]) == AGENTS or None,
                 check=f.alive)
        first = f.cli("rollout", "create", "mlp:1.0.0", "--selector", "*")
        assert wait_for("mlp:1.0.0 everywhere", lambda: _settled(f, first["id"]),
                        check=f.alive)["state"] == "succeeded"

        channel = grpc.insecure_channel(f.server)
        admin = pb_grpc.AdminServiceStub(channel)
        created = admin.CreateRollout(pb.CreateRolloutRequest(
            model="mlp", version="2.0.0", selector="*",
            plan=pb.RolloutPlan(waves=["1", "100%"], bake_seconds=6,
                                gates=pb.Gates(min_inferences=0))),
            metadata=[("authorization", f"Bearer {token}")], timeout=30)
        rollout_id = created.id
        wait_for("wave 0 to bake",
                 lambda: _status(f, rollout_id)["waves"][0]["state"] == "baking" or None,
                 check=f.alive)
        _kill(f, "worker")
        _kill(f, "server")
        _start_server(f, data, db, redis)
        _start_worker(f, data, db, redis)
        final = wait_for("the rollout to finish after the restarts",
                         lambda: (lambda d: d if d and d["state"] == "succeeded" else None)(
                             f.cli("rollout", "status", rollout_id, check=False).returncode
                             == 0 and _settled(f, rollout_id)), timeout=120, check=f.alive)
        assert [(w["devices"], w["succeeded"], w["state"]) for w in final["waves"]] == [
            (1, 1, "succeeded"), (AGENTS - 1, AGENTS - 1, "succeeded")]
        history = admin.RolloutHistory(pb.RolloutHistoryRequest(id=rollout_id),
                                       metadata=[("authorization", f"Bearer {token}")],
                                       timeout=30)
        actions = [e.action for e in history.events]
        assert actions.count("rollout.wave_started") == 2, actions
        assert actions.count("rollout.started") == 1 and actions[-1] == "rollout.succeeded"
        for agent_dir in dirs:
            wait_for("2.0.0 served", lambda d=agent_dir: _serving(f, d) == "2.0.0" or None,
                     check=f.alive)

        rolled = f.cli("rollout", "rollback", rollout_id)
        assert rolled["state"] == "rolled_back"
        for i, agent_dir in enumerate(dirs):
            wait_for("1.0.0 served again", lambda d=agent_dir: _serving(f, d) == "1.0.0" or None,
                     check=f.alive)
            # the swap back took the kept copy: no download of 1.0.0 a second time
            assert any("now serving mlp:1.0.0" in line and "kept previous version, from disk"
                       in line for line in f.log(f"agent-{i}").splitlines())
        channel.close()
