"""An update a device cannot be hurt by, end to end on the embedded default: ``edgefleet server``,
``model push --wait``, ``rollout create``, a real ``edgefleet-agent run``, ``edgefleet-agent
predict``, and what an operator reads back with ``device show``.

Version 2 of the model is an MLP whose hidden layer overflows on the field's data (inputs of
magnitude 1e9; ``modelgen.build_mlp(hidden_scale=1e30)``) while it passes every check the
control plane and the agent run on inputs in [-1, 1]. It goes live, answers field data with
NaN, and probation swaps the device back to version 1 from disk; the server hears
``rolled_back`` with the finding, and shows it in ``device show`` beside the metrics it
received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlplane import modelgen
from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e]


def agent_status(f: Fleet, agent_dir: Path) -> dict[str, Any]:
    return json.loads(f.agent("status", "--data-dir", str(agent_dir), "-o", "json").stdout)


def serving(f: Fleet, agent_dir: Path) -> str | None:
    models = agent_status(f, agent_dir)["models"]
    return models[0]["version"] if models and models[0]["state"] == "active" else None


def test_a_version_that_gives_nan_on_field_data_is_rolled_back_by_the_device_and_reported(
        tmp_path: Path) -> None:
    with fleet(tmp_path, f"127.0.0.1:{free_port()}") as f:
        data = tmp_path / "server"
        f.spawn("server", [command("edgefleet"), "server", "--data-dir", str(data),
                           "--listen", f.server], env={"EDGEFLEET_VARIANT_KINDS": "float32"})
        token_file = data / "admin-token"
        wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
        f.env["EDGEFLEET_TOKEN"] = token_file.read_text().strip()
        wait_for("the server to answer",
                 lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                 check=f.alive)
        for version, scale in (("1.0.0", 1.0), ("2.0.0", 1e30)):
            path = tmp_path / f"mlp-{version}.tflite"
            path.write_bytes(modelgen.build_mlp(seed=3, hidden_scale=scale))
            pushed = f.cli("model", "push", str(path), "--name", "mlp", "--version", version,
                           "--wait")
            assert pushed["status"] == "ready", pushed

        enroll = f.cli("enroll-token", "create")
        agent_dir = tmp_path / "agent"
        f.spawn("agent", [
            command("edgefleet-agent"), "run", "--server", f.server, "--data-dir",
            str(agent_dir), "--enroll-token", enroll["token"], "--trust-key",
            str(data / "signing-key.pub"), "--name", "gateway", "--poll-interval", "0.5",
            "--set", "probation_seconds=300", "--set", "probation_check_seconds=0.2",
            "--set", "metrics_window_seconds=1"])
        wait_for("the agent to enroll",
                 lambda: f.cli("device", "list")["devices"] or None, check=f.alive)
        for version in ("1.0.0", "2.0.0"):
            f.cli("rollout", "create", f"mlp:{version}", "--selector", "*")
            wait_for(f"{version} live", lambda v=version: serving(f, agent_dir) == v or None,
                     timeout=60, check=f.alive)

        field_data, out = tmp_path / "field.npz", tmp_path / "out.npz"
        np.savez(field_data, features=np.full((1, 16), 1e9, np.float32))
        answered = f.agent("predict", "--data-dir", str(agent_dir), "--input", str(field_data),
                           "--output", str(out), "-o", "json")
        assert answered.returncode == 0, answered.stderr.decode()
        assert json.loads(answered.stdout)["version"] == "2.0.0"
        with np.load(out) as npz:
            assert np.isnan(npz["scores"]).all()

        wait_for("the rollback", lambda: serving(f, agent_dir) == "1.0.0" or None,
                 timeout=30, check=f.alive)
        [model] = agent_status(f, agent_dir)["models"]
        assert "rolled back from 2.0.0" in model["message"]
        assert f.agent("predict", "--data-dir", str(agent_dir), "--input", str(field_data),
                       "--output", str(out)).returncode == 0
        with np.load(out) as npz:
            assert np.isfinite(npz["scores"]).all()          # 1.0.0 answers it

        [device] = f.cli("device", "list")["devices"]

        def rolled_back() -> dict[str, Any] | None:
            [dm] = f.cli("device", "show", device["id"])["models"]
            return dm if dm["state"] == "rolled_back" else None

        dm = wait_for("the rollback on the server", rolled_back, timeout=30, check=f.alive)
        assert "NaN or Inf" in dm["message"], dm
        # The server kept the device's finding, and no longer counts 2.0.0 active on it.
        assert dm["finding"]["reason"] == "probation_nonfinite", dm
        assert dm["finding"]["interpreter"] in ("tflite-runtime", "ai-edge-litert"), dm
        assert dm["active"] is None, dm

        def received(version: str, nonfinite: int) -> dict[str, Any] | None:
            rows = f.cli("device", "show", device["id"])["metrics"]
            return next((m for m in rows if m["version"] == version and m["inferences"]
                         and m["nonfinite"] == nonfinite), None)

        # What arrived: 2.0.0's one answer, counted against it as non-finite; 1.0.0's answer
        # after the rollback, finite.
        seen = wait_for("2.0.0's answer among the metrics received",
                        lambda: received("2.0.0", 1), timeout=30, check=f.alive)
        assert (seen["inferences"], seen["errors"], seen["nonfinite"]) == (1, 0, 1), seen
        back = wait_for("1.0.0's answer among the metrics received",
                        lambda: received("1.0.0", 0), timeout=30, check=f.alive)
        assert back["inferences"] >= 1 and back["errors"] == 0, back
        assert f.stop("agent") == 0 and f.stop("server") == 0
