"""The fleet simulator against a real control plane: ``edgefleet server`` and ``edgefleet
worker`` on PostgreSQL and Redis, 50 simulated devices of two hardware classes and one real
``edgefleet-agent run`` in one rollout, driven by the CLI.

What is checked is what the server saw: every device active, the rollout's one wave with all
51, ``device show`` and ``model show --by-class`` summing exactly the windows the simulated
devices had acknowledged, per class; then a version one class cannot run (the simulated devices
say so with a ``golden_mismatch`` finding) fails the rollout on that class only and is learned
as an incompatibility of that class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from controlplane import fleetsim, modelgen
from controlplane.fleet.classes import hardware_class
from protos import edgefleet_pb2 as pb
from protos.contract.interpreters import installed_versions
from tests.e2e.processes import Fleet, command, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PER_CLASS = 25
CLASS_A = fleetsim.hardware_profile(arch="aarch64", interpreter="tflite-runtime",
                                    interpreter_version="2.14.0", ram_bytes=4 * fleetsim.GiB)
CLASS_B = fleetsim.hardware_profile(arch="armv7l", interpreter="ai-edge-litert",
                                    interpreter_version=installed_versions().get(
                                        "ai-edge-litert", "2.3.0"),
                                    ram_bytes=1 * fleetsim.GiB)
FAST = {"*": fleetsim.Behaviour(latency_p50_ms=3.0, error_rate=0.05, inferences_per_second=20)}
SLOW = {"1.0.0": fleetsim.Behaviour(latency_p50_ms=40.0, latency_spread=0.1,
                                    inferences_per_second=20),
        "2.0.0": fleetsim.Behaviour(install_failure="golden_mismatch")}
SIM = fleetsim.SimSettings(poll_seconds=0.5, metrics_window_seconds=1.0, channels=2)


def push(f: Fleet, tmp: Path, version: str, seed: int) -> None:
    path = tmp / f"mlp-{version}.tflite"
    path.write_bytes(modelgen.build_mlp(seed=seed))
    pushed = f.cli("model", "push", str(path), "--name", "mlp", "--version", version, "--wait")
    assert pushed["status"] == "ready", pushed


def class_name(profile: pb.HardwareProfile) -> str:
    return hardware_class(MessageToDict(profile, preserving_proto_field_name=True)).name


def finished(f: Fleet, rollout_id: str) -> dict[str, Any] | None:
    r = f.cli("rollout", "status", rollout_id)
    return r if r["state"] not in ("pending", "running") else None


def by_class(f: Fleet, version: str) -> dict[str, dict[str, Any]]:
    shown = f.cli("model", "show", f"mlp:{version}", "--by-class")
    return {c["hardware_class"]["name"]: c for c in shown["by_class"]}


def test_fifty_simulated_devices_and_a_real_agent_in_one_rollout(
        control_plane: tuple[Fleet, Path], tmp_path: Path) -> None:
    f, data = control_plane
    push(f, tmp_path, "1.0.0", seed=3)
    enroll = f.cli("enroll-token", "create", "--labels", "fleet=sim",
                   "--uses", str(2 * PER_CLASS + 1))
    f.spawn("agent", [
        command("edgefleet-agent"), "run", "--server", f.server, "--data-dir",
        str(tmp_path / "agent"), "--enroll-token", enroll["token"], "--trust-key",
        str(data / "signing-key.pub"), "--name", "real", "--poll-interval", "0.5",
        "--set", "metrics_window_seconds=1"])
    key = (data / "signing-key.pub").read_bytes()
    with fleetsim.FleetThread(f.server, key, SIM, seed=7) as sim:
        a = sim.enroll(enroll["token"], PER_CLASS, hardware=CLASS_A, behaviours=FAST, name="a")
        b = sim.enroll(enroll["token"], PER_CLASS, hardware=CLASS_B, behaviours=SLOW, name="b")
        real = wait_for("the real agent to enroll", lambda: next(
            (d for d in f.cli("device", "list")["devices"] if d["name"] == "real"), None),
            check=f.alive)
        sim.start()

        rollout = f.cli("rollout", "create", "mlp:1.0.0", "--selector", "fleet=sim")
        sim.wait_active("mlp", "1.0.0", timeout=120)
        final = wait_for("rollout 1 to finish", lambda: finished(f, rollout["id"]),
                         timeout=120, check=f.alive)
        assert final["state"] == "succeeded", final
        [wave] = final["waves"]
        assert (wave["devices"], wave["succeeded"], wave["failed"]) == (51, 51, 0), wave
        shown = f.cli("device", "show", real["id"])
        assert shown["models"][0]["active"]["version"] == "1.0.0", shown

        # Let every class report a few windows, then stop the simulated devices: what they had
        # acknowledged is exactly what the server must sum.
        sim.call(sim.fleet.wait_until(
            "windows from every simulated device",
            lambda ds: all(d.sent_windows >= 2 for d in ds), timeout=60), timeout=90)
        sim.stop()
        classes = by_class(f, "1.0.0")
        for devices, profile in ((a, CLASS_A), (b, CLASS_B)):
            got = classes[class_name(profile)]
            want = (PER_CLASS, sum(d.sent_inferences for d in devices),
                    sum(d.sent_errors for d in devices), sum(d.sent_windows for d in devices))
            assert (got["devices"], got["inferences"], got["errors"], got["windows"]) == want, got
            assert got["variant"] == "float32"
        fast, slow = classes[class_name(CLASS_A)], classes[class_name(CLASS_B)]
        # The figures the behaviours drew: class B 40 ms around its p50, class A ~3 ms, 5% errors.
        assert 30 < slow["latency_p50_ms"] < 55 and fast["latency_p50_ms"] < 10, classes
        assert slow["errors"] == 0 and 0 < fast["errors"] < fast["inferences"] * 0.2, classes

        one = f.cli("device", "show", b[0].device_id)
        assert one["hardware"]["arch"] == "armv7l", one
        [row] = [m for m in one["metrics"] if m["version"] == "1.0.0"]
        assert (row["inferences"], row["errors"]) == (b[0].sent_inferences, 0), row

        # 2.0.0: class B's devices cannot reproduce its golden samples.
        push(f, tmp_path, "2.0.0", seed=4)
        sim.start()
        # every device may fail (the wave then fails once all finished): the counts are whole
        rollout2 = f.cli("rollout", "create", "mlp:2.0.0", "--selector", "fleet=sim",
                         "--max-failures", "100%")
        sim.wait_active("mlp", "2.0.0", timeout=120, devices=a)
        final2 = wait_for("rollout 2 to finish", lambda: finished(f, rollout2["id"]),
                          timeout=120, check=f.alive)
        assert final2["state"] == "failed", final2
        [wave2] = final2["waves"]
        assert (wave2["succeeded"], wave2["failed"]) == (PER_CLASS + 1, PER_CLASS), wave2
        shown_failed = final2["failed_devices"]   # the first max_failures_shown of them
        assert shown_failed and {d["device_id"] for d in shown_failed} <= {d.device_id for d in b}
        assert all("golden_mismatch" in d["message"] for d in shown_failed), shown_failed
        assert all(d.states["mlp"] == "incompatible" and d.active["mlp"].version == "1.0.0"
                   for d in b)
        marks = f.cli("fleet", "compat", "list")["incompatibilities"]
        assert [(m["version"], m["hardware_class"]["name"], m["finding"]["reason"])
                for m in marks] == [("2.0.0", class_name(CLASS_B), "golden_mismatch")], marks
    assert f.stop("agent") == 0
