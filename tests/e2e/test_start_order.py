"""Start order does not matter: a worker started before the fleet exists waits for the database
schema, `edgefleet init` and Redis, then does its work; a server started before `init` waits too.

Real processes on PostgreSQL and Redis, as under systemd, compose or Kubernetes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane import modelgen
from tests.e2e.processes import command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_a_worker_and_a_server_started_before_init_converge(
    postgres_server_url: str, redis_db_url: str, tmp_path: Path
) -> None:
    """Input tried: worker first, then server, on an empty database; `edgefleet init` last."""
    db = testdb.create_database(postgres_server_url)
    addr = f"127.0.0.1:{free_port()}"
    data = tmp_path / "shared"
    store = ["--db", db, "--redis", redis_db_url, "--data-dir", str(data), "--wait", "2m"]
    try:
        with fleet(tmp_path, addr) as f:
            f.spawn("worker", [command("edgefleet"), "worker", *store])
            f.spawn("server", [command("edgefleet"), "server", "--listen", addr, *store])
            wait_for("the worker to say what it waits for",
                     lambda: "waiting for the database schema" in f.log("worker") or None,
                     check=f.alive)
            wait_for("the server to say what it waits for",
                     lambda: "waiting for the database schema" in f.log("server") or None,
                     check=f.alive)
            time.sleep(1)
            f.alive()   # still waiting, not exited
            init = f.cli("init", "--db", db, "--data-dir", str(data))
            assert init["admin_token"] and init["schema"]["from"] is None
            f.env["EDGEFLEET_TOKEN"] = init["admin_token"]
            wait_for("the worker to be ready", lambda: "worker ready" in f.log("worker") or None,
                     timeout=90, check=f.alive)
            wait_for("the server to answer",
                     lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                     timeout=90, check=f.alive)
            assert "admin token" not in f.log("server")   # init issued it; nobody issues two

            model = tmp_path / "mlp.tflite"
            model.write_bytes(modelgen.build_mlp(seed=5))
            f.cli("model", "push", str(model), "--name", "mlp", "--version", "1.0.0")
            shown = wait_for("the worker to measure the model",
                             lambda: (lambda m: m if m["status"] != "pending" else None)(
                                 f.cli("model", "show", "mlp:1.0.0")), check=f.alive)
            assert shown["status"] == "ready", shown
            again = f.cli("init", "--db", db, "--data-dir", str(data))
            assert again["admin_token"] is None   # idempotent
            assert f.stop("worker") == 0 and f.stop("server") == 0
    finally:
        testdb.drop_database(db)
