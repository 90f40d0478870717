"""``InferenceClient.predict`` through a running agent's unix socket, against raw
``Interpreter.invoke()`` on the same model file in this process; 1 and 4 client threads.

Setup (the real path end to end): an in-process control plane, a generated CNN
(``build_cnn(seed=7)``, the demo's model) pushed and measured, ``edgefleet-agent run`` started as
its own process (as on a device), a rollout to it; once the agent serves the model the control
plane is stopped, so nothing but the agent and this process use the CPU while it is measured.

Measured, closed loop for ``--seconds`` after ``--warmup``, raw then agent for each thread count,
``--rounds`` times (figures pooled over the rounds):
- raw: ``set_tensor``, ``invoke``, ``get_tensor`` on a tflite-runtime ``Interpreter`` (same
  interpreter package and thread setting as the agent), one interpreter per thread since an
  interpreter is not thread-safe;
- agent: ``InferenceClient.predict_result`` (what ``predict`` does) on one shared client, which
  crosses the unix socket, the agent's input checks, its interpreter pool
  (``runner_pool_size``, default 2) and metrics. The agent's own ``latency_ms`` (inside the
  agent, interpreter included) splits the overhead into in-agent work and transport.
Both must agree on the outputs. Reported: per-call latency (p50/p99/mean), throughput, the
per-call overhead (agent mean - raw mean) and the ratios.

Run: ``python -m benchmarks.agent_predict [--seconds S] [--rounds R] [--threads 1,4]
[--input-shape H,W,C] [--interpreter NAME] [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent import AgentTransportError, InferenceClient
from benchmarks._controlplane import ControlPlaneUnderTest, wait_for
from benchmarks._loop import LoopResult, closed_loop
from benchmarks._report import REPO_ROOT, latency_summary, print_table, ratio, write_results
from controlplane.modelgen import build_cnn
from protos import edgefleet_pb2 as pb

NAME = "agent_predict"
MODEL, VERSION = "bench-predict", "1.0.0"
INTERPRETER_MODULES = {"tflite-runtime": "tflite_runtime.interpreter",
                       "ai-edge-litert": "ai_edge_litert.interpreter"}
FULL = {"seconds": 2.0, "warmup": 0.3, "rounds": 2}
QUICK = {"seconds": 0.5, "warmup": 0.1, "rounds": 1}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, help="measured seconds per phase (default 2)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds per phase (default 0.3)")
    p.add_argument("--rounds", type=int, help="rounds of every phase (default 2)")
    p.add_argument("--threads", default="1,4", help="client thread counts (default 1,4)")
    p.add_argument("--input-shape", default="28,28,1", metavar="H,W,C",
                   help="the generated CNN's image size (default 28,28,1: the demo's model)")
    p.add_argument("--interpreter", choices=sorted(INTERPRETER_MODULES),
                   default="tflite-runtime", help="for the agent and the raw baseline")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.thread_counts = [int(x) for x in args.threads.split(",") if x.strip()]
    args.image_shape = (1, *(int(x) for x in args.input_shape.split(",")))
    if len(args.image_shape) != 4:
        p.error("--input-shape takes three numbers: H,W,C")
    return args


@contextlib.contextmanager
def agent_process(cp: ControlPlaneUnderTest, root: Path, interpreter: str) -> Iterator[Path]:
    """``edgefleet-agent run`` enrolled with ``cp``, in its own process; yields its data dir."""
    data_dir = root / "agent"
    token = cp.enrollment_token({"bench": NAME})
    log = (root / "agent.log").open("wb")
    env = {**os.environ, "EDGEFLEET_AGENT_INTERPRETER": interpreter}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--server", cp.address,
         "--data-dir", str(data_dir), "--enroll-token", token,
         "--trust-key", str(cp.settings.signing_public_key_path),
         "--labels", f"bench={NAME}", "--name", "bench-agent", "--poll-interval", "0.2"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield data_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode not in (0, -15):
            tail = (root / "agent.log").read_text(errors="replace")[-2000:]
            print(f"agent exited with {proc.returncode}:\n{tail}", file=sys.stderr)


def serving(client: InferenceClient, sha256: str) -> dict[str, Any] | None:
    """The agent's status once it serves ``sha256``; None before (or while it starts)."""
    try:
        status = client.status()
    except AgentTransportError:
        return None
    active = [m for m in status["models"] if m["sha256"] == sha256 and m["state"] == "active"]
    return status if active else None


def raw_call(model_path: Path, interpreter: str, image: np.ndarray) -> Callable[[], np.ndarray]:
    """One inference on a fresh interpreter of ``model_path``: set, invoke, get."""
    module = importlib.import_module(INTERPRETER_MODULES[interpreter])
    it = module.Interpreter(model_path=str(model_path), num_threads=None)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()

    def call() -> np.ndarray:
        it.set_tensor(inp["index"], image)
        it.invoke()
        return it.get_tensor(out["index"])

    return call


def summarise(results: list[LoopResult]) -> dict[str, float]:
    return latency_summary([x for r in results for x in r.latencies_ns],
                           sum(r.seconds for r in results))


def measure(args: argparse.Namespace, client: InferenceClient, model_path: Path,
            image: np.ndarray) -> dict[str, Any]:
    """Raw, then agent, for each thread count, ``args.rounds`` times; pooled per phase."""
    inputs = {"image": image}
    in_agent_ms: dict[int, list[float]] = {n: [] for n in args.thread_counts}
    raw: dict[int, list[LoopResult]] = {n: [] for n in args.thread_counts}
    agent: dict[int, list[LoopResult]] = {n: [] for n in args.thread_counts}
    for _ in range(args.rounds):
        for threads in args.thread_counts:
            raw_calls = [raw_call(model_path, args.interpreter, image) for _ in range(threads)]
            raw[threads].append(closed_loop(raw_calls, warmup=args.warmup,
                                            seconds=args.seconds))
            seen = in_agent_ms[threads]

            def agent_call(seen: list[float] = seen) -> None:
                seen.append(client.predict_result(inputs).latency_ms)

            agent[threads].append(closed_loop([agent_call] * threads, warmup=args.warmup,
                                              seconds=args.seconds))
    phases: dict[str, Any] = {}
    for threads in args.thread_counts:
        raw_s, agent_s = summarise(raw[threads]), summarise(agent[threads])
        phases[f"threads_{threads}"] = {
            "threads": threads,
            "raw_invoke": raw_s,
            "agent_predict": agent_s,
            # Warm-up calls included: the agent's own figure is not tied to the window.
            "agent_reported_in_agent_ms_median": round(statistics.median(in_agent_ms[threads]),
                                                       4),
            "overhead_mean_us": round(agent_s["mean_us"] - raw_s["mean_us"], 1),
            "overhead_p50_us": round(agent_s["p50_us"] - raw_s["p50_us"], 1),
            "ratios": {
                "mean_latency_agent_over_raw": ratio(agent_s["mean_us"], raw_s["mean_us"]),
                "p50_latency_agent_over_raw": ratio(agent_s["p50_us"], raw_s["p50_us"]),
                "throughput_agent_over_raw": ratio(agent_s["throughput_per_s"],
                                                   raw_s["throughput_per_s"]),
            },
        }
    return phases


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = build_cnn(seed=7, input_shape=args.image_shape)
    image = np.random.default_rng(7).normal(0, 1, args.image_shape).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        root = Path(tmp)
        model_path = root / "model.tflite"
        model_path.write_bytes(data)
        cp = ControlPlaneUnderTest(root).start()
        try:
            mv = cp.push_model(MODEL, VERSION, data)
            with agent_process(cp, root, args.interpreter) as agent_dir, \
                    InferenceClient(agent_dir) as client:
                wait_for("the agent to enroll", lambda: cp.admin.ListDevices(
                    pb.ListDevicesRequest(selector=f"bench={NAME}"),
                    metadata=(("authorization", f"Bearer {cp.admin_token}"),),
                ).devices or None)
                cp.wait_rollout(cp.roll_out(MODEL, VERSION, f"bench={NAME}"))
                status = wait_for("the agent to serve the model",
                                  lambda: serving(client, mv.sha256))
                # The agent keeps serving without its control plane; stopping it leaves the
                # CPU to the two sides being compared.
                cp.stop()
                raw_out = raw_call(model_path, args.interpreter, image)()
                agent_out = client.predict({"image": image})["scores"]
                max_abs_diff = float(np.max(np.abs(agent_out - raw_out)))
                if not np.allclose(agent_out, raw_out, atol=1e-5):
                    raise RuntimeError(f"agent and raw outputs differ by {max_abs_diff}")
                phases = measure(args, client, model_path, image)
        finally:
            cp.stop()
    (model,) = status["models"]
    return {
        "description": "InferenceClient.predict over the agent's unix socket vs raw "
                       "Interpreter.invoke() on the same model",
        "config": {"seconds_per_phase": args.seconds, "warmup_seconds": args.warmup,
                   "rounds": args.rounds,
                   "thread_counts": args.thread_counts, "interpreter": args.interpreter,
                   "model": f"{MODEL}:{VERSION} build_cnn(seed=7, input_shape="
                            f"{args.image_shape}), {len(data)} bytes",
                   "variant": model["variant"], "sha256": model["sha256"],
                   "input_shape": list(image.shape)},
        "outputs_max_abs_diff": max_abs_diff,
        "phases": phases,
    }


def report(doc: dict[str, Any]) -> None:
    cfg = doc["config"]
    print(f"Agent predict: {cfg['model']}, variant {cfg['variant']}, {cfg['interpreter']}, "
          f"{cfg['rounds']} x {cfg['seconds_per_phase']:g} s per phase; outputs agree to "
          f"{doc['outputs_max_abs_diff']:.1e}")
    rows: list[tuple[str, ...]] = [
        ("", "calls/s", "p50 us", "p99 us", "mean us", "overhead us", "agent/raw")]
    for phase in doc["phases"].values():
        raw, agent, r = phase["raw_invoke"], phase["agent_predict"], phase["ratios"]
        n = phase["threads"]
        rows.append((f"raw invoke, {n} thread(s)", f"{raw['throughput_per_s']:.0f}",
                     f"{raw['p50_us']:.0f}", f"{raw['p99_us']:.0f}", f"{raw['mean_us']:.0f}",
                     "", ""))
        rows.append((f"agent predict, {n} thread(s)", f"{agent['throughput_per_s']:.0f}",
                     f"{agent['p50_us']:.0f}", f"{agent['p99_us']:.0f}",
                     f"{agent['mean_us']:.0f}", f"{phase['overhead_mean_us']:.0f}",
                     f"{r['mean_latency_agent_over_raw']:.2f}x"))
        rows.append(("  inside the agent (its latency_ms, median)", "", "",
                     "", f"{phase['agent_reported_in_agent_ms_median'] * 1000:.0f}", "", ""))
    print_table("per-call latency and throughput", rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
