"""Staged rollouts judged on what the fleet reports, end to end: ``edgefleet server`` and
``edgefleet worker`` on PostgreSQL and Redis, 24 simulated devices of two hardware classes
(``fleetsim``, the real protocol) and one real ``edgefleet-agent run`` serving predictions,
all driven by the CLI. One fleet goes through five versions of a model:

- 1.0.0 reaches everyone (the baseline every gate compares with);
- 2.0.0 answers with NaN now and then on class A: stopped (paused) in its first wave by the
  non-finite gate, the later waves never start; rolled back by the operator;
- 3.0.0 is three times slower on class B only: the latency gate on class B rolls it back by
  itself (``--on-breach rollback``), naming the class and the figures;
- 4.0.0 cannot be installed on class B: the failure threshold stops the rollout;
- 5.0.0 gets no traffic at all on the simulated devices: at the end of the bake the rollout is
  paused as inconclusive, neither passed nor failed; ``resume`` accepts the wave and it ends
  succeeded, with who resumed it in the history.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlplane import fleetsim, modelgen
from tests.e2e.processes import Fleet, command, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PER_CLASS = 12
CLASS_A = fleetsim.hardware_profile(arch="aarch64", ram_bytes=4 * fleetsim.GiB)
CLASS_B = fleetsim.hardware_profile(arch="armv7l", ram_bytes=1 * fleetsim.GiB)
HEALTHY = fleetsim.Behaviour(latency_p50_ms=4.0, latency_spread=0.05,
                             inferences_per_second=40)
A_BEHAVIOUR = {"2.0.0": fleetsim.Behaviour(latency_p50_ms=4.0, latency_spread=0.05,
                                           inferences_per_second=40, nonfinite_rate=0.05),
               "5.0.0": fleetsim.Behaviour(inferences_per_second=0), "*": HEALTHY}
B_BEHAVIOUR = {"3.0.0": fleetsim.Behaviour(latency_p50_ms=12.0, latency_spread=0.05,
                                           inferences_per_second=40),
               "4.0.0": fleetsim.Behaviour(install_failure="load_failed"),
               "5.0.0": fleetsim.Behaviour(inferences_per_second=0), "*": HEALTHY}
SIM = fleetsim.SimSettings(poll_seconds=1.0, metrics_window_seconds=1.0, channels=2)


def _push(f: Fleet, tmp: Path, version: str, seed: int) -> Path:
    path = tmp / f"mlp-{version}.tflite"
    path.write_bytes(modelgen.build_mlp(seed=seed))
    assert f.cli("model", "push", str(path), "--name", "mlp", "--version", version,
                 "--wait")["status"] == "ready"
    return path


def _stands_still(f: Fleet, rollout_id: str) -> dict[str, Any] | None:
    doc = f.cli("rollout", "status", rollout_id)
    return doc if doc["state"] not in ("pending", "running") else None


def _create(f: Fleet, version: str, *flags: str) -> str:
    doc = f.cli("rollout", "create", f"mlp:{version}", "--selector", "fleet=gates", *flags)
    return str(doc["id"])


def _settle(f: Fleet, rollout_id: str, timeout: float = 150) -> dict[str, Any]:
    return wait_for(f"rollout {rollout_id} to stand still",
                    lambda: _stands_still(f, rollout_id), timeout=timeout, check=f.alive)


def _traffic(agent_dir: Path, stop: threading.Event) -> None:
    """Predictions on the real agent, as an application on the device makes them."""
    from agent import InferenceClient

    client = InferenceClient(str(agent_dir))
    x = {"features": np.zeros((1, 16), np.float32)}
    while not stop.wait(0.02):
        try:
            client.predict(x)
        except Exception:   # between versions, or before the first one: try again
            stop.wait(0.2)


def test_the_gates_stop_bad_versions_per_class_and_let_a_good_one_through(
        control_plane: tuple[Fleet, Path], tmp_path: Path) -> None:
    f, data = control_plane
    for i, version in enumerate(("1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0")):
        _push(f, tmp_path, version, seed=40 + i)
    enroll = f.cli("enroll-token", "create", "--labels", "fleet=gates",
                   "--uses", str(2 * PER_CLASS + 1))
    agent_dir = tmp_path / "agent"
    f.spawn("agent", [command("edgefleet-agent"), "run", "--server", f.server, "--data-dir",
                      str(agent_dir), "--enroll-token", enroll["token"], "--trust-key",
                      str(data / "signing-key.pub"), "--name", "real", "--poll-interval", "1",
                      "--set", "metrics_window_seconds=1"])
    stop = threading.Event()
    traffic = threading.Thread(target=_traffic, args=(agent_dir, stop), daemon=True)
    key = (data / "signing-key.pub").read_bytes()
    with fleetsim.FleetThread(f.server, key, SIM, seed=11) as sim:
        a = sim.enroll(enroll["token"], PER_CLASS, hardware=CLASS_A, behaviours=A_BEHAVIOUR,
                       name="a")
        b = sim.enroll(enroll["token"], PER_CLASS, hardware=CLASS_B, behaviours=B_BEHAVIOUR,
                       name="b")
        sim.start()
        traffic.start()
        try:
            first = _settle(f, _create(f, "1.0.0"))
            assert first["state"] == "succeeded", first

            # 2.0.0: NaN on class A, caught in the first wave
            nan = _settle(f, _create(f, "2.0.0", "--waves", "25%,100%", "--bake", "40s",
                                     "--min-inferences", "50"))
            assert nan["state"] == "paused", nan
            assert nan["reason"].startswith("gate nonfinite_rate breached on aarch64/"), nan
            assert [w["state"] for w in nan["waves"]] == ["gated", "pending"]
            assert nan["waves"][1]["in_progress"] == nan["waves"][1]["succeeded"] == 0
            assert f.cli("rollout", "rollback", nan["id"], "--reason",
                         "NaN on aarch64")["state"] == "rolled_back"

            # 3.0.0: three times slower on class B: rolled back on that class's reading
            slow = _settle(f, _create(f, "3.0.0", "--waves", "50%,100%", "--bake", "40s",
                                      "--min-inferences", "50", "--on-breach", "rollback"))
            assert slow["state"] == "rolled_back", slow
            assert slow["reason"].startswith("gate p95_regression breached on armv7l/"), slow
            [reading] = [g for g in slow["waves"][0]["gates"]
                         if g["gate"] == "p95_regression" and g["verdict"] == "breach"]
            assert reading["class_name"].startswith("armv7l/")
            assert reading["new_value"] > 2 * reading["baseline"] > 0, reading
            assert reading["baseline_source"] in ("previous_version_now",
                                                  "previous_version_before")
            sim.wait_active("mlp", "1.0.0", timeout=60)   # every device back on 1.0.0

            # 4.0.0: class B cannot load it: the failure threshold stops the rollout
            broken = _settle(f, _create(f, "4.0.0", "--max-failures", "2"))
            assert broken["state"] == "failed", broken
            failed = int(re.match(r"failure threshold: (\d+) of \d+ finished devices failed "
                                  r"\(max failures 2\)", broken["reason"])[1])   # type: ignore[index]
            assert 2 < failed <= PER_CLASS, broken
            assert {d["device_id"] for d in broken["failed_devices"]} <= {
                d.device_id for d in b}
            f.cli("rollout", "rollback", broken["id"])
            sim.wait_active("mlp", "1.0.0", timeout=60)

            # 5.0.0: no traffic on the simulated devices: inconclusive, then accepted
            quiet_id = _create(f, "5.0.0", "--bake", "5s", "--min-inferences", "50")
            quiet = _settle(f, quiet_id)
            assert quiet["state"] == "paused" and quiet["reason"].startswith("inconclusive")
            assert quiet["waves"][0]["state"] == "gated"
            f.cli("rollout", "resume", quiet_id, "--reason", "no traffic at night")
            done = _settle(f, quiet_id)
            assert done["state"] == "succeeded", done
            history = f.cli("rollout", "history", quiet_id)["events"]
            resumed = next(e for e in history if e["action"] == "rollout.resumed")
            assert resumed["actor_role"] == "admin" and resumed["reason"] == "no traffic at night"
            assert resumed["details"]["accepted_waves"] == [0]
            sim.wait_active("mlp", "5.0.0", timeout=60)
        finally:
            stop.set()
            traffic.join(10)
    assert len(a) == len(b) == PER_CLASS
