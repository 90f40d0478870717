"""Optimized variants end to end on the embedded default: ``edgefleet server`` (its own Celery
worker inside), ``model push --wait`` of the generated CNN with calibration data, and two real
agents, one on tflite-runtime and one on ai-edge-litert.

The CNN's dynamic-range variant runs without an error in tflite-runtime 2.14 and gives the same
near-uniform scores for every input; it is rejected for tflite-runtime, still offered to the
ai-edge-litert device, and every device answers ``predict`` on float inputs close to the float
reference whatever variant it runs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlplane import modelgen
from controlplane.registry.measure import reference_outputs
from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support.interpreters import needs_tflite_runtime
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, needs_tflite_runtime,
              pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")]

KINDS = ["float32", "float16", "dynamic_int8", "weight_only_int8", "int8"]


def start_agent(f: Fleet, tmp: Path, data: Path, token: str, name: str,
                interpreter: str, *extra: str) -> Path:
    agent_dir = tmp / name
    f.spawn(name, [
        command("edgefleet-agent"), "run", "--server", f.server, "--data-dir", str(agent_dir),
        "--enroll-token", token, "--trust-key", str(data / "signing-key.pub"),
        "--name", name, "--labels", f"runs={interpreter}", "--poll-interval", "1", *extra,
    ], env={"EDGEFLEET_AGENT_INTERPRETER": interpreter})
    return agent_dir


def roll_out(f: Fleet, ref: str, selector: str, *extra: str) -> dict[str, Any]:
    rollout = f.cli("rollout", "create", ref, "--selector", selector, *extra)
    return wait_for(f"rollout of {ref} to {selector}", lambda: (
        lambda r: r if r["state"] not in ("pending", "running") else None)(
            f.cli("rollout", "status", rollout["id"])), timeout=90, check=f.alive)


def predict(f: Fleet, agent_dir: Path, inputs: Path, out: Path) -> dict[str, np.ndarray]:
    done = f.agent("predict", "--data-dir", str(agent_dir), "--input", str(inputs),
                   "--output", str(out), "-o", "json")
    assert done.returncode == 0, done.stderr.decode()
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}


def device_model(f: Fleet, name: str) -> dict[str, Any]:
    (device,) = [d for d in f.cli("device", "list")["devices"] if d["name"] == name]
    shown = f.cli("device", "show", device["id"])
    return next(m for m in shown["models"] if m["model"] == "cnn")


def serve_and_push(f: Fleet, tmp: Path, *, seed: int, samples: int,
                   env: dict[str, str] | None = None) -> tuple[Path, Path, Path, dict[str, Any]]:
    """An embedded ``edgefleet server`` (``env`` for it alone), the operator's token, and the
    generated CNN pushed with ``samples`` calibration inputs and ``--wait``: (server data dir,
    model, calibration, the settled version's document)."""
    data = tmp / "server"
    f.spawn("server", [command("edgefleet"), "server", "--data-dir", str(data),
                       "--listen", f.server], env=env)
    token_file = data / "admin-token"
    wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
    f.env["EDGEFLEET_TOKEN"] = token_file.read_text().strip()
    model, cal = tmp / "cnn.tflite", tmp / "cal.npz"
    model.write_bytes(modelgen.build_cnn(seed=seed))
    modelgen.write_calibration(model, cal, samples=samples, seed=seed)
    wait_for("the server to answer",
             lambda: f.cli("model", "list", check=False).returncode == 0 or None, check=f.alive)
    pushed = f.cli("model", "push", str(model), "--name", "cnn", "--version", "1.0.0",
                   "--calibration", str(cal), "--wait")
    return data, model, cal, pushed


def test_variants_are_measured_per_interpreter_and_each_device_gets_what_it_runs_right(
        tmp_path: Path) -> None:
    with fleet(tmp_path, f"127.0.0.1:{free_port()}") as f:
        data, model, cal, pushed = serve_and_push(f, tmp_path, seed=5, samples=32)
        assert pushed["status"] == "ready", pushed
        variants = {v["kind"]: v for v in pushed["variants"]}
        assert list(variants) == KINDS
        for v in variants.values():
            assert v["status"] == "ready", v
            assert {m["interpreter"] for m in v["measurements"]} == {
                "tflite-runtime", "ai-edge-litert"}
            assert all(m["inputs_source"] == "calibration" for m in v["measurements"])
        assert variants["int8"]["size"] <= 0.3 * variants["float32"]["size"]
        dynamic = {m["interpreter"]: m for m in variants["dynamic_int8"]["measurements"]}
        assert dynamic["ai-edge-litert"]["status"] == "ok"
        assert dynamic["tflite-runtime"]["status"] == "rejected"
        assert dynamic["tflite-runtime"]["reason"].startswith("scores: cosine similarity")

        # the table says the same to a person
        table = subprocess.run([command("edgefleet"), "model", "show", "cnn:1.0.0"],
                               env=f.env, capture_output=True, timeout=60)
        assert table.returncode == 0
        assert "rejected: scores: cosine similarity" in table.stdout.decode()

        enroll = f.cli("enroll-token", "create", "--uses", "3")
        old_dir = start_agent(f, tmp_path, data, enroll["token"], "old-runtime", "tflite-runtime")
        new_dir = start_agent(f, tmp_path, data, enroll["token"], "new-runtime", "ai-edge-litert")
        # A board with 100 KiB of RAM to spare: half of it holds only the full-integer variant
        # with its arena (int8 activations); every other kind computes in float.
        tiny_profile = tmp_path / "tiny.json"
        tiny_profile.write_text(json.dumps({"arch": "armv7l", "ram_bytes": 256 * 2**20,
                                            "ram_available_bytes": 100 * 1024}))
        tiny_dir = start_agent(f, tmp_path, data, enroll["token"], "tiny", "ai-edge-litert",
                               "--hardware-profile", str(tiny_profile))
        wait_for("the agents to enroll",
                 lambda: len(f.cli("device", "list")["devices"]) == 3 or None, check=f.alive)

        # dynamic_int8 for everyone: refused where it was rejected, deployed where it runs right
        final = roll_out(f, "cnn:1.0.0", "runs=tflite-runtime", "--variant", "dynamic_int8")
        assert final["state"] == "failed" and final["waves"][0]["no_compatible"] == 1, final
        (why,) = final["failed_devices"]
        assert why["state"] == "no_compatible_variant"
        assert "dynamic_int8 rejected for tflite-runtime 2.14.0: scores: cosine" in why["message"]
        final = roll_out(f, "cnn:1.0.0", "runs=ai-edge-litert", "--variant", "dynamic_int8")
        assert final["state"] == "succeeded", final
        assert device_model(f, "new-runtime")["active"]["variant"] == "dynamic_int8"

        # the old runtime gets the full-integer variant instead
        final = roll_out(f, "cnn:1.0.0", "runs=tflite-runtime", "--variant", "int8")
        assert final["state"] == "succeeded", final

        # float in, float out, close to the float32 reference, whatever each device runs
        with np.load(cal) as npz:
            sample = {k: npz[k][3] for k in npz.files}
        inputs = tmp_path / "in.npz"
        np.savez(inputs, **sample)
        expected = reference_outputs(model, sample, interpreter="ai-edge-litert")["scores"]
        def answers_with(agent_dir: Path, kind: str) -> None:
            status = json.loads(f.agent("status", "--data-dir", str(agent_dir), "-o",
                                        "json").stdout)
            assert [(m["variant"], m["state"]) for m in status["models"]] == [(kind, "active")]
            got = predict(f, agent_dir, inputs, tmp_path / f"{kind}.npz")["scores"]
            assert got.dtype == np.float32 and got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=0.08)
            assert int(np.argmax(got)) == int(np.argmax(expected))

        answers_with(old_dir, "int8")
        answers_with(new_dir, "dynamic_int8")

        # One rollout, chosen per device: the most accurate variant each can hold.
        (tiny,) = [d for d in f.cli("device", "list")["devices"] if d["name"] == "tiny"]
        assert tiny["hardware_class"]["name"] == "armv7l/ai-edge-litert-2.3/256M/cpu"
        explained = f.cli("device", "explain", tiny["id"], "cnn:1.0.0", "--prefer", "accuracy")
        assert explained["chosen"] == "int8", explained
        float32 = next(v for v in explained["variants"] if v["kind"] == "float32")
        assert any("loaded" in r and "of the 100.0 KiB RAM available" in r
                   for r in float32["reasons"]), float32
        final = roll_out(f, "cnn:1.0.0", "*", "--prefer", "accuracy")
        assert final["state"] == "succeeded" and final["prefer"] == "accuracy", final
        answers_with(old_dir, "float32")
        answers_with(new_dir, "float32")
        answers_with(tiny_dir, "int8")
        assert f.stop("old-runtime") == 0 and f.stop("new-runtime") == 0 and f.stop("tiny") == 0
        assert f.stop("server") == 0


def test_a_device_whose_interpreter_runs_a_variant_wrongly_proves_it_and_never_activates_it(
        tmp_path: Path) -> None:
    """A control plane that could not measure in tflite-runtime (as on Python 3.12+, where it
    has no wheel) offers the dynamic-range CNN to a tflite-runtime device that says it is
    2.17 (``--hardware-profile``: a vendor build whose version says more than its kernels do),
    so neither the measurements nor the minimum runtime keep it away. The device runs the
    variant's golden samples before activation, gets the wrong numbers, reports
    ``incompatible`` with the figures, and keeps serving what it had; an ai-edge-litert device
    reproduces them and activates it."""
    with fleet(tmp_path, f"127.0.0.1:{free_port()}") as f:
        data, _, _, pushed = serve_and_push(
            f, tmp_path, seed=6, samples=16,
            env={"EDGEFLEET_MEASURE_INTERPRETERS": "ai-edge-litert"})
        dynamic = next(v for v in pushed["variants"] if v["kind"] == "dynamic_int8")
        assert [m["interpreter"] for m in dynamic["measurements"]] == ["ai-edge-litert"]
        assert dynamic["status"] == "ready" and dynamic["golden"]["samples"] == 4

        enroll = f.cli("enroll-token", "create", "--uses", "2")
        claims = tmp_path / "claims-2.17.json"
        claims.write_text(json.dumps(
            {"interpreter": {"name": "tflite-runtime", "version": "2.17.0"}}))
        old_dir = start_agent(f, tmp_path, data, enroll["token"], "old-runtime", "tflite-runtime",
                              "--hardware-profile", str(claims))
        new_dir = start_agent(f, tmp_path, data, enroll["token"], "new-runtime", "ai-edge-litert")
        wait_for("both agents to enroll",
                 lambda: len(f.cli("device", "list")["devices"]) == 2 or None, check=f.alive)
        assert roll_out(f, "cnn:1.0.0", "runs=tflite-runtime", "--variant", "float32")[
            "state"] == "succeeded"

        final = roll_out(f, "cnn:1.0.0", "runs=tflite-runtime", "--variant", "dynamic_int8")
        assert final["state"] == "failed", final
        (why,) = final["failed_devices"]
        assert ("prove: dynamic_int8 does not reproduce its golden samples in tflite-runtime "
                "2.14.0: sample 0, output 'scores': max abs error") in why["message"], why
        old = device_model(f, "old-runtime")
        assert old["state"] == "incompatible" and old["active"]["variant"] == "float32", old
        status = json.loads(f.agent("status", "--data-dir", str(old_dir), "-o", "json").stdout)
        assert [(m["variant"], m["state"]) for m in status["models"]] == [("float32", "active")]

        # Learned: the variant is marked for this device's class, and the next device of the
        # class is not given it (it never downloads it), while the class of the other agent
        # still is.
        (mark,) = f.cli("fleet", "compat", "list")["incompatibilities"]
        assert (mark["variant"], mark["finding"]["reason"]) == ("dynamic_int8", "golden_mismatch")
        more = f.cli("enroll-token", "create")
        next_dir = start_agent(f, tmp_path, data, more["token"], "next-old", "tflite-runtime",
                               "--hardware-profile", str(claims))
        wait_for("the third agent to enroll",
                 lambda: len(f.cli("device", "list")["devices"]) == 3 or None, check=f.alive)
        (nxt,) = [d for d in f.cli("device", "list")["devices"] if d["name"] == "next-old"]
        assert nxt["hardware_class"]["key"] == mark["hardware_class"]["key"]
        explained = f.cli("device", "explain", nxt["id"], "cnn:1.0.0")
        marked = next(v for v in explained["variants"] if v["kind"] == "dynamic_int8")
        assert not marked["eligible"] and "marked incompatible with class" in marked["reasons"][0]
        # Both devices of the class, the one that found it out and the new one.
        final = roll_out(f, "cnn:1.0.0", "runs=tflite-runtime", "--variant", "dynamic_int8")
        assert final["waves"][0]["no_compatible"] == 2 and final["state"] == "failed", final
        assert {d["state"] for d in final["failed_devices"]} == {"no_compatible_variant"}
        assert not list((next_dir / "artifacts").glob("*.tflite"))

        assert roll_out(f, "cnn:1.0.0", "runs=ai-edge-litert", "--variant", "dynamic_int8")[
            "state"] == "succeeded"
        status = json.loads(f.agent("status", "--data-dir", str(new_dir), "-o", "json").stdout)
        assert [(m["variant"], m["state"]) for m in status["models"]] == [
            ("dynamic_int8", "active")]
        assert f.stop("old-runtime") == 0 and f.stop("new-runtime") == 0 and f.stop("next-old") == 0
        assert f.stop("server") == 0
