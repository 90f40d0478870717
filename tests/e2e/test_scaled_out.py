"""The whole path with every piece its own process: ``edgefleet db upgrade``, ``edgefleet server``
and ``edgefleet worker`` on PostgreSQL and Redis, an ``edgefleet-agent run`` device, and the CLI.

Then an artifact altered on the server's disk: the agent refuses it, reports the failure, and
keeps serving what it had.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from controlplane import modelgen
from controlplane.registry.measure import reference_outputs
from protos.contract.interpreters import installed_versions
from tests.e2e.processes import command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _model_state(f, device_id: str, model: str) -> dict | None:  # type: ignore[no-untyped-def]
    dev = f.cli("device", "show", device_id)
    return next((m for m in dev["models"] if m["model"] == model), None)


def test_server_and_worker_as_separate_processes_on_postgres_and_redis(
    postgres_server_url: str, redis_db_url: str, tmp_path: Path
) -> None:
    db = testdb.create_database(postgres_server_url)
    try:
        _scenario(db, redis_db_url, tmp_path)
    finally:
        testdb.drop_database(db)


def _scenario(db: str, redis: str, tmp: Path) -> None:
    addr = f"127.0.0.1:{free_port()}"
    data = tmp / "server-data"  # shared by server and worker: artifact store and signing key
    with fleet(tmp, addr) as f:
        up = f.cli("db", "upgrade", "--db", db, check=False)
        assert up.returncode == 0, up.stderr.decode()

        f.spawn(
            "server",
            [
                command("edgefleet"),
                "server",
                "--data-dir",
                str(data),
                "--listen",
                addr,
                "--db",
                db,
                "--redis",
                redis,
            ],
        )
        token_file = data / "admin-token"
        wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
        # The first server of a new fleet creates the signing key (before the admin token); a
        # worker only ever uses the fleet's key, so it starts once the key is there.
        assert (data / "signing-key").exists()
        f.spawn(
            "worker",
            [command("edgefleet"), "worker", "--data-dir", str(data), "--db", db, "--redis", redis],
        )
        assert token_file.stat().st_mode & 0o777 == 0o600
        f.env["EDGEFLEET_TOKEN"] = token_file.read_text().strip()
        wait_for(
            "the server to answer",
            lambda: f.cli("model", "list", check=False).returncode == 0 or None,
            check=f.alive,
        )

        # push: the worker process builds, measures (in both interpreters) and signs variants
        model = tmp / "cnn.tflite"
        model.write_bytes(modelgen.build_cnn(seed=11))
        cal = tmp / "cal.npz"
        modelgen.write_calibration(model, cal, samples=8, seed=11)
        shown = f.cli(
            "model",
            "push",
            str(model),
            "--name",
            "cnn",
            "--version",
            "1.0.0",
            "--calibration",
            str(cal),
            "--wait",
        )
        assert shown["status"] == "ready", shown
        kinds = [v["kind"] for v in shown["variants"]]
        assert kinds == ["float32", "float16", "dynamic_int8", "weight_only_int8", "int8"]
        for v in shown["variants"]:
            assert v["status"] == "ready", v
            assert {m["interpreter"] for m in v["measurements"]} == set(installed_versions())
        assert "optimize.run_pipeline" in f.log("worker")

        # a device, as its own process
        enroll = f.cli("enroll-token", "create", "--labels", "site=berlin", "--uses", "1")
        agent_dir = tmp / "agent"
        f.spawn(
            "agent",
            [
                command("edgefleet-agent"),
                "run",
                "--server",
                addr,
                "--data-dir",
                str(agent_dir),
                "--enroll-token",
                enroll["token"],
                "--trust-key",
                str(data / "signing-key.pub"),
                "--name",
                "berlin-1",
                "--poll-interval",
                "1",
            ],
        )
        devices = wait_for(
            "the agent to enroll",
            lambda: (lambda d: d if d else None)(
                f.cli("device", "list", "--selector", "site=berlin")["devices"]
            ),
            check=f.alive,
        )
        device_id = devices[0]["id"]
        assert (agent_dir / "credential.json").stat().st_mode & 0o777 == 0o600

        # deploy and wait for the rollout to finish
        rollout = f.cli("rollout", "create", "cnn:1.0.0", "--selector", "site=berlin")
        final = wait_for(
            "rollout 1 to finish",
            lambda: (lambda r: r if r["state"] not in ("pending", "running") else None)(
                f.cli("rollout", "status", rollout["id"])
            ),
            check=f.alive,
        )
        assert final["state"] == "succeeded", final
        assert final["waves"][0]["devices"] == 1 and final["waves"][0]["succeeded"] == 1
        m = _model_state(f, device_id, "cnn")
        assert m is not None and m["active"]["sha256"] == m["desired"]["sha256"]

        # predict through the agent and compare with the server's own interpreter
        with np.load(cal) as npz:
            sample = {k: npz[k][0] for k in npz.files}
        np.savez(tmp / "in.npz", **sample)
        out = f.agent(
            "predict",
            "--data-dir",
            str(agent_dir),
            "--input",
            str(tmp / "in.npz"),
            "--output",
            str(tmp / "out.npz"),
            "-o",
            "json",
        )
        assert out.returncode == 0, out.stderr.decode()
        # the variant the device runs gives what it gives on the server, in its interpreter,
        # and (float in, float out) stays close to the float32 reference
        active = m["active"]["variant"]
        variant_sha = next(v["sha256"] for v in shown["variants"] if v["kind"] == active)
        variant_file = next(p for p in (data / "artifacts").rglob(variant_sha) if p.is_file())
        exact = reference_outputs(variant_file, sample, interpreter="tflite-runtime"
                                  if "tflite-runtime" in installed_versions() else "auto")
        close = reference_outputs(model, sample, interpreter="ai-edge-litert")
        with np.load(tmp / "out.npz") as got:
            for name, want in exact.items():
                np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(got[name], close[name], atol=0.08)

        # an artifact altered on the server's disk: refused, reported, old model keeps serving
        model2 = tmp / "cnn2.tflite"
        model2.write_bytes(modelgen.build_cnn(seed=12))
        v2 = f.cli("model", "push", str(model2), "--name", "cnn", "--version", "2.0.0")
        wait_for(
            "v2 to be ready",
            lambda: (lambda m: m if m["status"] == "ready" else None)(
                f.cli("model", "show", "cnn:2.0.0")
            ),
            check=f.alive,
        )
        blob = next(p for p in (data / "artifacts").rglob(v2["sha256"]) if p.is_file())
        raw = bytearray(blob.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        blob.write_bytes(bytes(raw))
        rollout2 = f.cli("rollout", "create", "cnn:2.0.0", "--selector", "site=berlin",
                         "--variant", "float32")   # the file altered above
        final2 = wait_for(
            "rollout 2 to finish",
            lambda: (lambda r: r if r["state"] not in ("pending", "running") else None)(
                f.cli("rollout", "status", rollout2["id"])
            ),
            check=f.alive,
        )
        assert final2["state"] == "failed" and final2["waves"][0]["failed"] == 1, final2
        m = _model_state(f, device_id, "cnn")
        assert m["active"]["version"] == "1.0.0" and m["desired"]["version"] == "2.0.0"
        assert m["state"] == "failed" and "sha256" in (m["message"] or ""), m
        status = json.loads(f.agent("status", "--data-dir", str(agent_dir), "-o", "json").stdout)
        assert [(x["model"], x["version"]) for x in status["models"]] == [("cnn", "1.0.0")]
        again = f.agent(
            "predict",
            "--data-dir",
            str(agent_dir),
            "--input",
            str(tmp / "in.npz"),
            "--output",
            str(tmp / "out2.npz"),
            "-o",
            "json",
        )
        assert again.returncode == 0, again.stderr.decode()

        # graceful shutdown of every process
        assert f.stop("agent") == 0
        assert f.stop("worker") == 0
        assert f.stop("server") == 0
        assert "edgefleet server stopped" in f.log("server")
