"""Push: a desired-state change reaches a watching agent without waiting for its poll.

Scaled out, two ``edgefleet server`` replicas share PostgreSQL and Redis with an ``edgefleet
worker`` (the rollout engine runs there): a rollout made through replica A reaches the agent
connected to replica B (and the one on A). Embedded, one ``edgefleet server`` without Redis
pushes too (its worker runs inside it). The agents poll every 600 s, so only the push can have
brought the change within the test; each agent's log says it heard it on its watch stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane import modelgen
from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e]

PUSHED = "watch: the server announced desired state"
LONG_POLL = "600"


def _agent(f: Fleet, label: str, server: str, data: Path, site: str) -> Path:
    enroll = f.cli("enroll-token", "create", "--labels", f"fleet=push,site={site}", "--uses", "1")
    agent_dir = f.root / label
    f.spawn(label, [command("edgefleet-agent"), "run", "--server", server,
                    "--data-dir", str(agent_dir), "--enroll-token", enroll["token"],
                    "--trust-key", str(data / "signing-key.pub"), "--name", label,
                    "--poll-interval", LONG_POLL])
    wait_for(f"{label} to enroll",
             lambda: f.cli("device", "list", "--selector", f"site={site}")["devices"] or None,
             check=f.alive)
    return agent_dir


def _push_model(f: Fleet) -> None:
    model = f.root / "cnn.tflite"
    model.write_bytes(modelgen.build_cnn(seed=31))
    shown = f.cli("model", "push", str(model), "--name", "cnn", "--version", "1.0.0", "--wait")
    assert shown["status"] == "ready", shown


def _roll_out_and_finish(f: Fleet, selector: str) -> None:
    rollout = f.cli("rollout", "create", "cnn:1.0.0", "--selector", selector)
    final = wait_for(
        f"the rollout to {selector} to finish",
        lambda: (lambda r: r if r["state"] not in ("pending", "running") else None)(
            f.cli("rollout", "status", rollout["id"])),
        timeout=120, check=f.alive)
    assert final["state"] == "succeeded", final


def _status(f: Fleet, agent_dir: Path) -> dict:  # type: ignore[type-arg]
    import json

    out = f.agent("status", "--data-dir", str(agent_dir), "-o", "json")
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.postgres
def test_a_change_made_through_one_replica_reaches_the_agent_on_the_other(
    postgres_server_url: str, redis_db_url: str, tmp_path: Path,
) -> None:
    db = testdb.create_database(postgres_server_url)
    try:
        a, b = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        data = tmp_path / "server-data"   # shared: artifact store and signing key
        with fleet(tmp_path, a) as f:
            f.env["EDGEFLEET_VARIANT_KINDS"] = "float32"
            up = f.cli("db", "upgrade", "--db", db, check=False)
            assert up.returncode == 0, up.stderr.decode()
            backing = ["--data-dir", str(data), "--db", db, "--redis", redis_db_url]
            f.spawn("server-a", [command("edgefleet"), "server", "--listen", a, *backing])
            token = data / "admin-token"
            wait_for("the admin token", lambda: token.exists() or None, check=f.alive)
            f.spawn("server-b", [command("edgefleet"), "server", "--listen", b, *backing])
            f.spawn("worker", [command("edgefleet"), "worker", *backing])
            f.env["EDGEFLEET_TOKEN"] = token.read_text().strip()
            for addr in (a, b):
                wait_for(f"{addr} to answer", lambda addr=addr: f.cli(   # type: ignore[misc]
                    "model", "list", "--server", addr, check=False).returncode == 0 or None,
                    check=f.alive)
            _push_model(f)
            on_b = _agent(f, "agent-b", b, data, "b")
            on_a = _agent(f, "agent-a", a, data, "a")
            _roll_out_and_finish(f, "fleet=push")   # through replica A (EDGEFLEET_SERVER)
            for label, agent_dir in (("agent-b", on_b), ("agent-a", on_a)):
                assert PUSHED in f.log(label), f.log(label)[-3000:]
                models = _status(f, agent_dir)["models"]
                assert [(m["model"], m["state"]) for m in models] == [("cnn", "active")]
            assert "subscribed to desired-state changes" in f.log("server-b")
    finally:
        testdb.drop_database(db)


def test_the_embedded_server_pushes_without_redis(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_port()}"
    data = tmp_path / "server-data"
    with fleet(tmp_path, addr) as f:
        f.env["EDGEFLEET_VARIANT_KINDS"] = "float32"
        f.spawn("server", [command("edgefleet"), "server", "--listen", addr,
                           "--data-dir", str(data)])
        token = data / "admin-token"
        wait_for("the admin token", lambda: token.exists() or None, check=f.alive)
        f.env["EDGEFLEET_TOKEN"] = token.read_text().strip()
        wait_for("the server to answer",
                 lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                 check=f.alive)
        _push_model(f)
        agent_dir = _agent(f, "agent", addr, data, "solo")
        _roll_out_and_finish(f, "fleet=push")
        assert PUSHED in f.log("agent"), f.log("agent")[-3000:]
        assert [m["state"] for m in _status(f, agent_dir)["models"]] == ["active"]
