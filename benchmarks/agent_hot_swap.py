"""Hot swap under steady load: a real agent process swaps model versions while an open-loop
load of ``InferenceClient.predict`` calls goes through its unix socket; no request may fail and
the swap should not show in the latency.

Setup (the real path end to end): an in-process control plane, three versions of one generated
MobileNet-like CNN (``build_mobilenet(seed=1|2|3, width=--width)``: same shapes, different
weights, so every answer tells which version gave it) pushed and measured before the load starts,
``edgefleet-agent run`` as its own process (``--poll-interval`` short so it hears a rollout
within ~0.2 s), a rollout of version 1. Then the load process (``benchmarks._agent_process``)
sends ``--rate`` requests/s from ``--threads`` threads (open loop: each request is due at a fixed
moment, whatever the previous ones took), and every answer is checked against a raw interpreter
of the version that claims to have answered (same input, same interpreter package): a wrong,
non-finite or unattributable answer counts as a failure.

After ``--steady`` seconds, ``--swaps`` rollouts every ``--swap-interval`` seconds, cycling
1 -> 2 -> 3 -> 1 ...; each is a real install on the agent (download, verify, load, validate,
prove against the golden samples, swap), the load running throughout and ``--tail`` seconds after.

Swap window (the headline): from the agent's ``downloading`` install event for the new version to
1 s after its ``active`` event (the events carry the agent's own clock; read from the control
plane's ``install_events``). Also reported: the window of +-1 s around the first answer from the
new version. Steady state: every request outside both windows of every swap, after the first
second of load. Figures: requests sent and failed (must be 0), steady p99, p99 in each window
and pooled over the windows, and the ratio swap p99 / steady p99 (target <= 1.5). Latency is
measured in the load process from the moment a request is sent to its answer.

Run: ``python -m benchmarks.agent_hot_swap [--rate N] [--threads N] [--steady S] [--swaps N]
[--swap-interval S] [--tail S] [--width N] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._agent_process import (
    INTERPRETER,
    AgentProcess,
    LoadProcess,
    LoadResult,
    enrolled_device,
    install_events,
    push_versions,
    wait_serving,
)
from benchmarks._controlplane import ControlPlaneUnderTest
from benchmarks._report import percentile, print_table, ratio, write_results
from controlplane.modelgen import build_mobilenet

NAME = "agent_hot_swap"
MODEL = "bench-swap"
VERSIONS = ("1.0.0", "2.0.0", "3.0.0")
INPUT_SEED = 7
WINDOW_AFTER_ACTIVE_S = 1.0
AROUND_FIRST_ANSWER_S = 1.0
WARMUP_S = 1.0
FULL = {"steady": 10.0, "swaps": 6, "swap_interval": 5.0, "tail": 5.0, "width": 144}
QUICK = {"steady": 2.0, "swaps": 2, "swap_interval": 2.0, "tail": 1.5, "width": 48}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument("--threads", type=int, default=4, help="load threads (4)")
    p.add_argument("--steady", type=float, help="seconds of load before the first swap (10)")
    p.add_argument("--swaps", type=int, help="rollouts during the load (6)")
    p.add_argument("--swap-interval", type=float, help="seconds between rollouts (5)")
    p.add_argument("--tail", type=float, help="seconds of load after the last swap (5)")
    p.add_argument("--width", type=int, help="build_mobilenet width (144: 871 KiB)")
    p.add_argument("--poll-interval", type=float, default=0.2,
                   help="the agent's --poll-interval (0.2 s)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.swaps < 1:
        p.error("--swaps must be at least 1")
    return args


def p99(latencies: np.ndarray) -> float | None:
    return round(percentile(sorted(latencies.tolist()), 99), 3) if latencies.size else None


def summary(latencies: np.ndarray) -> dict[str, Any]:
    if not latencies.size:
        return {"requests": 0}
    values = sorted(latencies.tolist())
    return {"requests": len(values), "p50_ms": round(percentile(values, 50), 3),
            "p99_ms": round(percentile(values, 99), 3), "max_ms": round(values[-1], 3)}


def swap_windows(load: LoadResult, swaps: list[dict[str, Any]],
                 events: list[dict[str, Any]]) -> None:
    """Fill each swap with its install events, its two windows and the answers around it."""
    versions = np.array(load.answered_by, dtype=object)
    for n, swap in enumerate(swaps):
        sha, since = swap["to_sha256"], swap["rollout_at"]
        until = swaps[n + 1]["rollout_at"] if n + 1 < len(swaps) else float("inf")
        mine: dict[str, float] = {}
        for e in events:   # this install's: the first of each state after its rollout
            if e["sha256"] == sha and e["at"] >= since:
                mine.setdefault(e["state"], e["at"])
        swap["events"] = {k: round(v - since, 4) for k, v in sorted(mine.items(),
                                                                   key=lambda kv: kv[1])}
        if "downloading" not in mine or "active" not in mine:
            raise RuntimeError(f"no downloading/active events for swap to {swap['to']}: {mine}")
        swap["install_seconds"] = round(mine["active"] - mine["downloading"], 4)
        swap["window"] = (mine["downloading"], mine["active"] + WINDOW_AFTER_ACTIVE_S)
        # The install itself, without the second after: few requests, so its max is the figure.
        swap["install"] = (mine["downloading"], mine["active"])
        new = np.flatnonzero((versions == sha) & (load.start >= since))
        if not new.size:
            raise RuntimeError(f"no answer from {swap['to']} after its rollout")
        first_new = float(load.start[new[0]])
        swap["first_answer_after_rollout_s"] = round(first_new - since, 4)
        swap["first_answer_after_active_s"] = round(first_new - mine["active"], 4)
        old = np.flatnonzero((versions == swap["from_sha256"]) & (load.start >= first_new)
                             & (load.start < until))
        # Requests sent after the first new answer that the old version still answered (they
        # reached the agent before the swap): a clean switch has none or a few in flight.
        swap["old_answers_after_first_new"] = int(old.size)
        swap["around_first_answer"] = (first_new - AROUND_FIRST_ANSWER_S,
                                       first_new + AROUND_FIRST_ANSWER_S)


def steady_segments(start: np.ndarray, latency: np.ndarray, steady: np.ndarray,
                    seconds: float) -> dict[str, Any]:
    """p99 of every ``seconds``-long piece of the run made only of steady requests."""
    if not start.size or seconds <= 0:
        return {"segments": 0}
    bins = np.floor((start - start[0]) / seconds).astype(int)
    p99s = []
    for b in np.unique(bins):
        inside = bins == b
        if steady[inside].all() and inside.sum() >= 20:
            p99s.append(percentile(sorted(latency[inside].tolist()), 99))
    if not p99s:
        return {"segments": 0}
    p99s.sort()
    return {"segments": len(p99s), "seconds": round(seconds, 3),
            "min": round(p99s[0], 3), "p10": round(percentile(p99s, 10), 3),
            "median": round(percentile(p99s, 50), 3), "p90": round(percentile(p99s, 90), 3),
            "max": round(p99s[-1], 3)}


def figures(load: LoadResult, swaps: list[dict[str, Any]], load_started: float,
            first_rollout: float) -> dict[str, Any]:
    ok, start, latency = load.ok, load.start, load.latency_ms
    in_any = np.zeros(start.shape, dtype=bool)
    for swap in swaps:
        for key in ("window", "around_first_answer", "install"):
            lo, hi = swap[key]
            inside = (start >= lo) & (start <= hi)
            in_any |= inside
            swap[f"{key}_latency"] = summary(latency[inside & ok])
            swap[key] = [round(lo - swap["rollout_at"], 4), round(hi - swap["rollout_at"], 4)]
    steady_mask = ok & ~in_any & (start >= load_started + WARMUP_S)
    steady = summary(latency[steady_mask])
    before = summary(latency[ok & (start >= load_started + WARMUP_S) & (start < first_rollout)])
    pooled = {}
    for key in ("window", "around_first_answer"):
        mask = np.zeros(start.shape, dtype=bool)
        for swap in swaps:
            lo, hi = (swap["rollout_at"] + x for x in swap[key])
            mask |= (start >= lo) & (start <= hi)
        pooled[key] = summary(latency[mask & ok])
    steady_p99 = steady.get("p99_ms", 0.0)
    segments = steady_segments(start, latency, steady_mask,
                               float(np.median([s["window"][1] - s["window"][0]
                                                for s in swaps])))
    for swap in swaps:
        for key in ("window", "around_first_answer"):
            swap[f"{key}_p99_over_steady_p99"] = ratio(
                swap[f"{key}_latency"].get("p99_ms", 0.0), steady_p99)
        del swap["rollout_at"]
    seconds = float(start[-1] - start[0]) if start.size > 1 else 0.0
    return {
        "requests_sent": int(start.size),
        "requests_failed": int((~ok).sum()),
        "failures": load.failures,
        "failure_examples": load.failure_examples,
        "slots_skipped": load.skipped,
        "achieved_rate_per_s": round(start.size / seconds, 1) if seconds else 0.0,
        "sent_late_ms_p99": round(percentile(sorted(load.late_ms.tolist()), 99), 3),
        "answers_by_version": {},
        "steady": steady,
        "steady_before_first_swap": before,
        "swap_windows_pooled": pooled,
        # How much p99 moves by itself: the steady requests cut into pieces as long as a window.
        "steady_segments_p99_ms": segments,
        "ratios": {
            "pooled_window_p99_over_steady_p99": ratio(pooled["window"].get("p99_ms", 0.0),
                                                       steady_p99),
            "pooled_around_first_answer_p99_over_steady_p99": ratio(
                pooled["around_first_answer"].get("p99_ms", 0.0), steady_p99),
            "worst_window_p99_over_steady_p99": max(
                s["window_p99_over_steady_p99"] for s in swaps),
            "median_window_p99_over_median_segment_p99": ratio(
                float(np.median([s["window_latency"].get("p99_ms", 0.0) for s in swaps])),
                segments.get("median", 0.0)),
        },
        "swaps": swaps,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    builds = {v: build_mobilenet(seed=i + 1, width=args.width) for i, v in enumerate(VERSIONS)}
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        root = Path(tmp)
        cp = ControlPlaneUnderTest(root).start()
        try:
            pushed = push_versions(cp, MODEL, builds)
            sha = {v: min(p.variant_sha256s) for v, p in pushed.items()}
            references = {}
            for v, p in pushed.items():
                path = root / f"{v}.tflite"
                path.write_bytes(p.data)
                for s in p.variant_sha256s:
                    references[s] = str(path)
            with AgentProcess(cp, root, labels={"bench": NAME},
                              poll_interval=args.poll_interval) as agent:
                agent.start()
                device = enrolled_device(cp, agent.selector)
                cp.wait_rollout(cp.roll_out(MODEL, VERSIONS[0], agent.selector))
                wait_serving(agent.data_dir, MODEL, sha[VERSIONS[0]])
                shape = [1, 32, 32, 3]
                load = LoadProcess({
                    "endpoint": str(agent.data_dir), "rate": args.rate, "threads": args.threads,
                    "input_seed": INPUT_SEED, "input_shapes": {"image": shape},
                    "references": references, "interpreter": INTERPRETER,
                }, root / "load.json")
                load_started = load.start()
                time.sleep(max(0.0, load_started + args.steady - time.time()))
                swaps: list[dict[str, Any]] = []
                current = VERSIONS[0]
                for n in range(args.swaps):
                    target = VERSIONS[(n + 1) % len(VERSIONS)]
                    began = time.time()
                    rollout = cp.roll_out(MODEL, target, agent.selector)
                    cp.wait_rollout(rollout)
                    swaps.append({"from": current, "to": target, "from_sha256": sha[current],
                                  "to_sha256": sha[target], "rollout_at": began,
                                  "rollout_succeeded_after_s": round(time.time() - began, 3)})
                    current = target
                    time.sleep(max(0.0, began + args.swap_interval - time.time()))
                time.sleep(args.tail)
                result = load.stop()
                events = install_events(cp, device)
        finally:
            cp.stop()
    swap_windows(result, swaps, events)
    doc = figures(result, swaps, load_started, swaps[0]["rollout_at"])
    by_version = {v: sum(1 for s in result.answered_by if s == sha[v]) for v in VERSIONS}
    doc["answers_by_version"] = by_version
    return {
        "description": "open-loop InferenceClient.predict load through a real agent's unix "
                       "socket while rollouts swap the model version",
        "config": {
            "rate_per_s": args.rate, "threads": args.threads, "steady_seconds": args.steady,
            "swaps": args.swaps, "swap_interval_seconds": args.swap_interval,
            "tail_seconds": args.tail, "agent_poll_interval_seconds": args.poll_interval,
            "interpreter": INTERPRETER,
            "model": f"{MODEL} build_mobilenet(seed=1|2|3, width={args.width}, "
                     f"input_shape=(1, 32, 32, 3)), {len(builds[VERSIONS[0]])} bytes",
            "versions": {v: {"sha256": sha[v], "push_seconds": round(p.push_seconds, 2)}
                         for v, p in pushed.items()},
            "window": f"agent's downloading event -> its active event + "
                      f"{WINDOW_AFTER_ACTIVE_S:g} s",
            "around_first_answer": f"+-{AROUND_FIRST_ANSWER_S:g} s around the first answer "
                                   f"from the new version",
            "steady": f"outside every window, after the first {WARMUP_S:g} s",
            "latency": "load process: request sent -> answer (InferenceClient.predict_result)",
        },
        **doc,
    }


def report(doc: dict[str, Any]) -> None:
    cfg, r = doc["config"], doc["ratios"]
    print(f"Hot swap: {cfg['model']}, {cfg['rate_per_s']:g} req/s from {cfg['threads']} "
          f"threads, {cfg['swaps']} swaps")
    print(f"requests sent {doc['requests_sent']}, failed {doc['requests_failed']} "
          f"{doc['failures'] or ''}, achieved {doc['achieved_rate_per_s']} req/s, "
          f"answers by version {doc['answers_by_version']}")
    rows: list[tuple[str, ...]] = [("", "requests", "p50 ms", "p99 ms", "max ms", "p99/steady")]
    s = doc["steady"]
    rows.append(("steady", str(s["requests"]), f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                 f"{s['max_ms']:.2f}", ""))
    for swap in doc["swaps"]:
        w = swap["window_latency"]
        rows.append((f"swap {swap['from']} -> {swap['to']} (install "
                     f"{swap['install_seconds'] * 1000:.0f} ms)", str(w.get("requests", 0)),
                     f"{w.get('p50_ms', 0):.2f}", f"{w.get('p99_ms', 0):.2f}",
                     f"{w.get('max_ms', 0):.2f}", f"{swap['window_p99_over_steady_p99']:.2f}"))
    for key, label in (("window", "all swap windows"),
                       ("around_first_answer", "+-1 s around first new answer")):
        w = doc["swap_windows_pooled"][key]
        rows.append((label, str(w.get("requests", 0)), f"{w.get('p50_ms', 0):.2f}",
                     f"{w.get('p99_ms', 0):.2f}", f"{w.get('max_ms', 0):.2f}",
                     f"{r['pooled_' + key + '_p99_over_steady_p99']:.2f}"))
    print_table("latency (window: downloading event -> active event + 1 s)", rows)
    seg = doc["steady_segments_p99_ms"]
    if seg.get("segments"):
        print(f"\nsteady p99 over {seg['segments']} pieces of {seg['seconds']:g} s: median "
              f"{seg['median']:.2f} ms (p10 {seg['p10']:.2f}, p90 {seg['p90']:.2f}, max "
              f"{seg['max']:.2f}); median window p99 / median piece p99 = "
              f"{r['median_window_p99_over_median_segment_p99']:.2f}")
    old = [swap["old_answers_after_first_new"] for swap in doc["swaps"]]
    print(f"\nold-version answers sent after the first new-version answer, per swap: {old}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
