"""Chaos: SIGKILL a real agent process at random moments during updates, start it again, and
check that it serves a verified model at once and that the server heard of every prediction.

Setup (the real path end to end): an in-process control plane, three versions of one generated
CNN (``build_cnn(seed=1|2|3)`` with a fully connected layer that makes it ``--model-mib`` MiB:
different artifacts, so every round is a real download, verify, load, validate, prove and
swap), ``edgefleet-agent run`` as its own process (``--poll-interval 0.2``; metric windows of
``--metrics-window`` seconds and the open window checkpointed every ``--checkpoint`` seconds,
given as ``--set metrics_window_seconds=... --set metrics_checkpoint_seconds=...``: a kill loses
at most the counts since the last checkpoint, and an agent here lives about a second between
kills, less than the default 2 s checkpoint).
Two rollouts without a kill measure how long an update takes (rollout created -> the agent
serves it) and how long its install (the agent's ``downloading`` to its ``active`` event). Most
of an update is the wait for the agent to hear of it, so a kill is timed one of two ways (drawn
per round, ``--aim-install`` of them aimed): uniform in [0, ``--max-delay``] after the rollout
was created (default 1.25 x the slower update), or uniform in [0, 1.25 x the slower install]
after the agent's status first shows the install began (polled every 5 ms). Between them kills
land in every phase: before the agent heard, download, verification/load/validation/proof,
swap, after.
``--baseline-restarts`` clean restarts (SIGTERM, start) give the time to serve of a process that
was not killed, measured in the same run.

Then, while a load process (``benchmarks._agent_process``) predicts at ``--rate`` requests/s and
counts the successes per version (every answer checked against a raw interpreter of the version
that answered), ``--kills`` rounds of:
  roll out the next version (one the agent does not serve) -> wait a random delay (above)
  -> read the agent's status (the phase the kill lands in) -> SIGKILL -> start it
  again -> predict until it answers (``--serve-timeout``): the answering sha256 must be one of
  the pushed variants', ``artifacts/<sha256>.tflite`` in the data dir must hash to it, and the
  outputs must be the raw interpreter's -> wait until the rollout finished (``--settle-timeout``).
At the end the load stops, the agent's last metric window is awaited in the control plane, and
the client's successful predictions (plus the benchmark's own probes) are compared with the sum
of ``count`` over the device's rows in ``metric_windows`` (the embedded SQLite; no admin API
serves them), per agent run: a run's windows are those that started while it ran.

Reported: predictions lost per kill (mean, max; total lost / total sent and / total answered),
restarts that did not serve within the timeout (must be 0), served models that failed the check
(must be 0), time to serve after a restart (p50/p99) against the clean restart, rollouts that did
not finish, and where each kill landed (from the status just before it, and from the install
events the control plane holds).

Run: ``python -m benchmarks.agent_chaos [--kills N] [--rate N] [--model-mib N]
[--max-delay S] [--aim-install FRACTION] [--metrics-window S] [--checkpoint S] [--seed N]
[--quick]``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._agent_process import (
    INTERPRETER,
    AgentProcess,
    LoadProcess,
    agent_status,
    check_outputs,
    enrolled_device,
    first_prediction,
    install_events,
    load_inputs,
    metric_windows,
    push_versions,
    raw_outputs,
    served_version,
    wait_serving,
)
from benchmarks._controlplane import ControlPlaneUnderTest, MiB, wait_for
from benchmarks._report import percentile, print_table, ratio, write_results
from controlplane.modelgen import build_cnn
from protos import edgefleet_pb2 as pb

NAME = "agent_chaos"
MODEL = "bench-chaos"
VERSIONS = ("1.0.0", "2.0.0", "3.0.0")
INPUT_SEED = 7
# build_cnn's default 28x28x1 input and 8 filters flatten to 14*14*8 features.
_FC_INPUTS = 14 * 14 * 8
PHASES = ("before install", "download", "load/validate/prove", "swap", "after swap", "failed",
          "no answer")
# The last install step the agent told of -> what it was doing after it.
_AFTER_STATE = {"downloading": "download", "verified": "load/validate/prove", "proven": "swap",
                "active": "after swap", "failed": "failed", "incompatible": "failed"}
FULL = {"kills": 100, "model_mib": 4.0, "baseline_restarts": 3}
QUICK = {"kills": 3, "model_mib": 1.0, "baseline_restarts": 1}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, help="SIGKILLs, one per update (100)")
    p.add_argument("--rate", type=float, default=50.0, help="client predictions per second (50)")
    p.add_argument("--threads", type=int, default=2, help="client threads (2)")
    p.add_argument("--model-mib", type=float, help="artifact size in MiB (4)")
    p.add_argument("--max-delay", type=float,
                   help="kill delays are uniform in [0, this] after the rollout "
                        "(default: 1.25 x the measured update time)")
    p.add_argument("--aim-install", type=float, default=0.5, metavar="FRACTION",
                   help="share of the kills aimed at the install: after the agent's status "
                        "shows it began, a delay up to 1.25 x the measured install (0.5)")
    p.add_argument("--serve-timeout", type=float, default=30.0,
                   help="seconds a restarted agent has to answer a prediction (30)")
    p.add_argument("--settle-timeout", type=float, default=15.0,
                   help="seconds a rollout has to finish after the restart (15)")
    p.add_argument("--metrics-window", type=float, default=1.0,
                   help="the agent's metrics_window_seconds (1; the agent's default is 10)")
    p.add_argument("--checkpoint", type=float, default=0.25,
                   help="the agent's metrics_checkpoint_seconds (0.25; the agent's default is 2)")
    p.add_argument("--baseline-restarts", type=int, help="clean restarts measured (3)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the kill delays (1)")
    p.add_argument("--quick", action="store_true",
                   help="a few kills, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.kills < 1:
        p.error("--kills must be at least 1")
    return args


def phase_from_status(status: dict[str, Any] | None, version: str, sha256: str) -> str:
    """Where the agent was with ``version``, from its status document."""
    if status is None:
        return "no answer"
    for m in status["models"]:
        if m["model"] != MODEL:
            continue
        if m["sha256"] == sha256:
            return "after swap" if m["state"] == "active" else \
                _AFTER_STATE.get(m["state"], m["state"])
        # Another version live, news about this one: "VERSION (VARIANT) STATE: message".
        found = re.match(rf"{re.escape(version)} \(\S+\) (\w+)", m["message"] or "")
        if found:
            return _AFTER_STATE.get(found.group(1), found.group(1))
    return "before install"


def phase_from_events(events: list[dict[str, Any]], sha256: str, since: float,
                      at: float) -> str:
    """Where the agent was with ``sha256`` at ``at``, from the last install event it sent."""
    mine = [e for e in events if e["sha256"] == sha256 and since <= e["at"] <= at]
    return _AFTER_STATE.get(mine[-1]["state"], mine[-1]["state"]) if mine else "before install"


def summary_s(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    return {"n": len(s), "p50_s": round(percentile(s, 50), 3), "p99_s": round(percentile(s, 99), 3),
            "max_s": round(s[-1], 3)}


class Chaos:
    """One run: the control plane, the agent, the rounds and what was seen."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args, self.root = args, root
        self.rng = random.Random(args.seed)
        self.cp = ControlPlaneUnderTest(root).start()
        classes = max(2, round(args.model_mib * MiB / 4 / _FC_INPUTS))
        self.model_desc = (f"{MODEL} build_cnn(seed=1|2|3, classes={classes}, input_shape="
                           f"(1, 28, 28, 1))")
        builds = {v: build_cnn(seed=i + 1, classes=classes) for i, v in enumerate(VERSIONS)}
        self.size = len(builds[VERSIONS[0]])
        self.pushed = push_versions(self.cp, MODEL, builds)
        self.sha = {v: min(p.variant_sha256s) for v, p in self.pushed.items()}
        self.version_of = {s: v for v, p in self.pushed.items() for s in p.variant_sha256s}
        self.inputs = load_inputs({"input_seed": INPUT_SEED,
                                   "input_shapes": {"image": [1, 28, 28, 1]}})
        self.references: dict[str, str] = {}
        self.expected: dict[str, dict[str, np.ndarray]] = {}
        for v, p in self.pushed.items():
            path = root / f"{v}.tflite"
            path.write_bytes(p.data)
            for s in p.variant_sha256s:
                self.references[s] = str(path)
                self.expected[s] = raw_outputs(path, self.inputs)
        self.agent = AgentProcess(self.cp, root, labels={"bench": NAME},
                                  settings={"metrics_window_seconds": args.metrics_window,
                                            "metrics_checkpoint_seconds": args.checkpoint})
        self.device = ""
        self.lives: list[dict[str, Any]] = []     # one per agent process: start, end, how
        self.probes: list[tuple[float, str]] = []  # our own successful predictions
        self.served = VERSIONS[0]

    # -- steps -------------------------------------------------------------------------------

    def start_agent(self) -> float:
        started = self.agent.start()
        self.lives.append({"start": started, "end": None, "ended_by": None})
        return started

    def end_life(self, at: float, how: str) -> None:
        self.lives[-1].update(end=at, ended_by=how)

    def roll_out(self, version: str) -> tuple[str, float]:
        began = time.time()
        return self.cp.roll_out(MODEL, version, self.agent.selector), began

    def rollout_state(self, rollout_id: str) -> str:
        r = self.cp.admin.GetRollout(pb.GetRolloutRequest(id=rollout_id),
                                     metadata=self.cp.admin_md())
        return str(r.state)

    def settle(self, rollout_id: str, timeout: float) -> str | None:
        """Wait until the rollout finished; its state, None on timeout."""
        def done() -> str | None:
            state = self.rollout_state(rollout_id)
            return state if state not in ("pending", "running") else None

        try:
            return wait_for(f"rollout {rollout_id}", done, timeout)
        except RuntimeError:
            return None

    def serve_check(self, started: float) -> dict[str, Any]:
        """Predict until the restarted agent answers; check what answered."""
        got = first_prediction(self.agent.data_dir, self.inputs,
                               timeout=self.args.serve_timeout)
        if got is None:
            return {"served": False}
        result, at = got
        sha = result.ref.sha256
        self.probes.append((at, sha))
        problems = []
        if sha not in self.version_of:
            problems.append(f"answered by {sha[:12]}, not a pushed variant")
        else:
            on_disk = self.agent.artifact_sha256(sha)
            if on_disk != sha:
                problems.append(f"artifacts/{sha[:12]}.tflite hashes to {on_disk}")
            if (why := check_outputs(result.outputs, self.expected[sha])) is not None:
                problems.append(why)
        return {"served": True, "seconds_to_serve": round(at - started, 3),
                "served_version": self.version_of.get(sha, "?"), "served_sha256": sha,
                "verified": not problems, "problems": problems}

    def update_time(self, version: str) -> tuple[float, float]:
        """Roll ``version`` out; seconds until the agent serves it, and seconds of the install
        itself (its ``downloading`` to its ``active`` event)."""
        rollout, began = self.roll_out(version)
        served = wait_serving(self.agent.data_dir, MODEL, self.sha[version], timeout=60)
        self.cp.wait_rollout(rollout)
        self.served = version
        mine: dict[str, float] = {}
        for e in install_events(self.cp, self.device):
            if e["sha256"] == self.sha[version] and e["at"] >= began:
                mine.setdefault(e["state"], e["at"])
        return served - began, mine["active"] - mine["downloading"]

    def wait_install_began(self, version: str, timeout: float) -> str:
        """Poll the agent's status until its install of ``version`` began; the phase seen."""
        from agent import AgentError, InferenceClient

        deadline = time.monotonic() + timeout
        with InferenceClient(self.agent.data_dir, timeout=1.0) as client:
            while time.monotonic() < deadline:
                try:
                    phase = phase_from_status(client.status(), version, self.sha[version])
                except AgentError:
                    phase = "no answer"
                if phase != "before install":
                    return phase
                time.sleep(0.005)
        return "before install"

    def clean_restart(self) -> float:
        self.end_life(time.time(), "SIGTERM")
        self.agent.stop()
        started = self.start_agent()
        check = self.serve_check(started)
        if not check.get("verified"):
            raise RuntimeError(f"the agent did not serve after a clean restart: {check}")
        return float(check["seconds_to_serve"])

    def next_version(self) -> str:
        current = (served_version(self.agent.data_dir, MODEL) or {}).get("sha256")
        versions = [v for v in VERSIONS if self.sha[v] != current and v != self.served]
        return self.rng.choice(versions) if versions else VERSIONS[0]

    def round(self, n: int, max_delay: float, install_delay: float) -> dict[str, Any]:
        """One update and one kill: ``aimed`` rounds wait until the agent's status shows the
        install began, then up to ``install_delay``; the others up to ``max_delay`` after the
        rollout was created."""
        version = self.next_version()
        aimed = self.rng.random() < self.args.aim_install
        rollout, began = self.roll_out(version)
        if aimed:
            self.wait_install_began(version, max_delay + 5.0)
            delay = self.rng.uniform(0.0, install_delay)
            time.sleep(delay)
        else:
            delay = self.rng.uniform(0.0, max_delay)
            time.sleep(max(0.0, began + delay - time.time()))
        status = agent_status(self.agent.data_dir, timeout=1.0)
        killed = self.agent.kill()
        self.end_life(killed, "SIGKILL")
        started = self.start_agent()
        check = self.serve_check(started)
        state = self.settle(rollout, self.args.settle_timeout)
        settled = time.time()
        now_serving = (served_version(self.agent.data_dir, MODEL) or {}).get("sha256", "")
        self.served = self.version_of.get(now_serving, self.served)
        return {"round": n, "target": version, "aimed": aimed, "rollout_at": began,
                "delay_s": round(delay, 4), "killed_after_s": round(killed - began, 4),
                "killed_at": killed, "phase_status": phase_from_status(status, version,
                                                                        self.sha[version]),
                **check, "rollout_state": state or "timeout",
                "rollout_finished_after_restart_s": round(settled - started, 3),
                "round_seconds": round(settled - began, 3),
                "serving_after": self.version_of.get(now_serving, "none")}

    def wait_last_window(self, after: float, timeout: float = 30.0) -> bool:
        """Wait until the control plane holds a window of the device that ended after
        ``after``, the last answered prediction (the agent closes a window every metrics
        window, if it counted anything, and sends it at its next tick)."""
        def probe() -> bool | None:
            windows = metric_windows(self.cp, self.device)
            return True if any(w["end"] >= after for w in windows) else None

        try:
            return wait_for("the last metric window", probe, timeout)
        except RuntimeError:
            return False

    def close(self) -> None:
        self.agent.close()
        self.cp.stop()


def accounting(chaos: Chaos, load_ok: list[tuple[float, str]],
               windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per agent run: the predictions answered (client and probes) and those the server holds."""
    answered = sorted(load_ok + chaos.probes)
    times = np.array([a for a, _ in answered])
    lives = []
    for i, life in enumerate(chaos.lives):
        lo = life["start"]
        hi = chaos.lives[i + 1]["start"] if i + 1 < len(chaos.lives) else float("inf")
        client = int(((times >= lo) & (times < hi)).sum()) if times.size else 0
        server = sum(w["count"] for w in windows if lo <= w["start"] < hi)
        lives.append({"ended_by": life["ended_by"], "answered": client, "server_counted": server,
                      "lost": client - server})
    return lives


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        chaos = Chaos(args, Path(tmp))
        try:
            return measure(chaos)
        finally:
            chaos.close()


def measure(chaos: Chaos) -> dict[str, Any]:
    args = chaos.args
    chaos.start_agent()
    chaos.device = enrolled_device(chaos.cp, chaos.agent.selector)
    chaos.cp.wait_rollout(chaos.cp.roll_out(MODEL, VERSIONS[0], chaos.agent.selector))
    wait_serving(chaos.agent.data_dir, MODEL, chaos.sha[VERSIONS[0]])
    updates = [chaos.update_time(v) for v in VERSIONS[1:]]
    update_times, install_times = [u for u, _ in updates], [i for _, i in updates]
    max_delay = args.max_delay if args.max_delay is not None else 1.25 * max(update_times)
    install_delay = 1.25 * max(install_times)
    clean = [chaos.clean_restart() for _ in range(args.baseline_restarts)]

    load = LoadProcess({
        "endpoint": str(chaos.agent.data_dir), "rate": args.rate, "threads": args.threads,
        "input_seed": INPUT_SEED, "input_shapes": {"image": [1, 28, 28, 1]},
        "references": chaos.references, "interpreter": INTERPRETER, "timeout_seconds": 5.0,
    }, chaos.root / "load.json")
    began = time.time()
    load.start()
    rounds = []
    for n in range(args.kills):
        rounds.append(chaos.round(n, max_delay, install_delay))
        print(f"kill {n + 1}/{args.kills}: {rounds[-1]['phase_status']}, served again after "
              f"{rounds[-1].get('seconds_to_serve', 'never')} s", file=sys.stderr)
    time.sleep(2.0)
    result = load.stop()
    last_answer = max([float(t) for t, s in zip(result.start, result.answered_by, strict=True)
                       if s] + [at for at, _ in chaos.probes])
    flushed = chaos.wait_last_window(last_answer)
    time.sleep(2 * args.metrics_window)   # a window that ended later, still on its way
    elapsed = time.time() - began
    windows = metric_windows(chaos.cp, chaos.device)
    events = install_events(chaos.cp, chaos.device)
    for r in rounds:
        r["phase_events"] = phase_from_events(events, chaos.sha[r["target"]], r["rollout_at"],
                                              r["killed_at"])
        del r["rollout_at"], r["killed_at"]

    load_ok = [(float(t), s) for t, s in zip(result.start, result.answered_by, strict=True) if s]
    lives = accounting(chaos, load_ok, windows)
    killed = [life for life in lives if life["ended_by"] == "SIGKILL"]
    lost_per_kill = [life["lost"] for life in killed]
    answered = sum(life["answered"] for life in lives)
    counted = sum(life["server_counted"] for life in lives)
    sent = len(result.answered_by) + len(chaos.probes)
    serve_times = [float(r["seconds_to_serve"]) for r in rounds if r.get("served")]
    by_version_client = Counter(chaos.version_of[s] for _, s in load_ok)
    by_version_server: Counter[str] = Counter()
    for w in windows:
        by_version_server[chaos.version_of.get(w["sha256"], w["sha256"][:12])] += w["count"]
    return {
        "description": "SIGKILL a real agent at random moments during updates; restart; check "
                       "it serves a verified model; compare client and server prediction counts",
        "config": {
            "kills": args.kills, "client_rate_per_s": args.rate, "client_threads": args.threads,
            "model": f"{chaos.model_desc}, {chaos.size} bytes",
            "versions": {v: {"sha256": chaos.sha[v], "push_seconds": round(p.push_seconds, 2)}
                         for v, p in chaos.pushed.items()},
            "interpreter": INTERPRETER, "agent_poll_interval_seconds": 0.2,
            "agent_metrics_window_seconds": args.metrics_window,
            "agent_metrics_checkpoint_seconds": args.checkpoint,
            "max_delay_seconds": round(max_delay, 3),
            "measured_update_seconds": [round(t, 3) for t in update_times],
            "measured_install_seconds": [round(t, 3) for t in install_times],
            "aim_install": args.aim_install, "install_delay_seconds": round(install_delay, 3),
            "serve_timeout_seconds": args.serve_timeout,
            "settle_timeout_seconds": args.settle_timeout, "seed": args.seed,
            "agent_command": chaos.agent.command,
        },
        "seconds": round(elapsed, 1),
        "seconds_per_kill": round(elapsed / args.kills, 2),
        "restarts_not_serving_within_timeout": sum(1 for r in rounds if not r["served"]),
        "served_unverified": sum(1 for r in rounds if r["served"] and not r["verified"]),
        "rollouts_not_succeeded": dict(Counter(r["rollout_state"] for r in rounds
                                               if r["rollout_state"] != "succeeded")),
        # Where the kill landed in the rounds whose rollout did not finish.
        "rollouts_not_succeeded_phases": [
            {"round": r["round"], "state": r["rollout_state"], "by_status": r["phase_status"],
             "by_events": r["phase_events"]} for r in rounds
            if r["rollout_state"] != "succeeded"],
        "time_to_serve_after_kill": summary_s(serve_times),
        "time_to_serve_after_clean_restart": summary_s(clean),
        "time_to_serve_ratio_p50_kill_over_clean": ratio(
            summary_s(serve_times).get("p50_s", 0.0), summary_s(clean).get("p50_s", 0.0)),
        "predictions": {
            "sent": sent, "answered": answered, "failed": sent - answered,
            "server_counted": counted, "lost": answered - counted,
            "lost_over_sent": ratio(answered - counted, sent),
            "lost_over_answered": ratio(answered - counted, answered),
            "lost_per_kill_mean": round(float(np.mean(lost_per_kill)), 2) if killed else 0.0,
            "lost_per_kill_max": max(lost_per_kill) if killed else 0,
            "lost_in_clean_restarts": sum(life["lost"] for life in lives
                                          if life["ended_by"] != "SIGKILL"),
            "client_failures": result.failures,
            "failure_examples": result.failure_examples[:5],
            "answered_by_version_client": dict(sorted(by_version_client.items())),
            "counted_by_version_server": dict(sorted(by_version_server.items())),
            "last_window_arrived": flushed,
        },
        "kill_phases_by_status": dict(Counter(r["phase_status"] for r in rounds)),
        "kill_phases_by_events": dict(Counter(r["phase_events"] for r in rounds)),
        "rounds": rounds,
        "agent_runs": lives,
    }


def report(doc: dict[str, Any]) -> None:
    cfg, pr = doc["config"], doc["predictions"]
    print(f"Chaos: {cfg['kills']} SIGKILLs, {cfg['model']}; kill delays in "
          f"[0, {cfg['max_delay_seconds']}] s after the rollout, or ({cfg['aim_install']:.0%}) "
          f"in [0, {cfg['install_delay_seconds']}] s after the install began; "
          f"{doc['seconds']} s ({doc['seconds_per_kill']} s per kill)")
    print(f"restarts not serving within {cfg['serve_timeout_seconds']:g} s: "
          f"{doc['restarts_not_serving_within_timeout']}; served an unverified model: "
          f"{doc['served_unverified']}; rollouts not succeeded: "
          f"{doc['rollouts_not_succeeded'] or 0}"
          + "".join(f"\n  round {x['round']}: {x['state']}, killed in {x['by_status']} "
                    f"(status) / {x['by_events']} (events)"
                    for x in doc["rollouts_not_succeeded_phases"]))
    t, c = doc["time_to_serve_after_kill"], doc["time_to_serve_after_clean_restart"]
    print_table("time to serve after a restart", [
        ("", "n", "p50 s", "p99 s", "max s"),
        ("after SIGKILL", str(t["n"]), f"{t.get('p50_s', 0):.2f}", f"{t.get('p99_s', 0):.2f}",
         f"{t.get('max_s', 0):.2f}"),
        ("after a clean stop (baseline)", str(c["n"]), f"{c.get('p50_s', 0):.2f}",
         f"{c.get('p99_s', 0):.2f}", f"{c.get('max_s', 0):.2f}"),
    ])
    print_table("predictions", [
        ("sent", "answered", "server counted", "lost", "lost/sent", "lost per kill (mean, max)"),
        (str(pr["sent"]), str(pr["answered"]), str(pr["server_counted"]), str(pr["lost"]),
         f"{pr['lost_over_sent']:.3f}", f"{pr['lost_per_kill_mean']:.1f}, "
                                        f"{pr['lost_per_kill_max']}"),
    ])
    status, events = doc["kill_phases_by_status"], doc["kill_phases_by_events"]
    print_table("where the kills landed", [("phase", "by status", "by install events")] + [
        (p, str(status.get(p, 0)), str(events.get(p, 0))) for p in PHASES
        if status.get(p) or events.get(p)])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
