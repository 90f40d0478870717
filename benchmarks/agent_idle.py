"""An idle ``edgefleet-agent run``: what it costs a device while nobody asks it anything.

Setup: an in-process control plane, the demo's model (``build_cnn(seed=7)``, 64 KB) pushed and
measured; ``edgefleet-agent run`` as its own process rolled out to it (with a short poll
interval and a 1 s probation, so the install is quick); then the agent is stopped and started
again on the same data dir with **no** ``--poll-interval`` and default settings, as on a device:
it restores and serves the model and syncs every ``poll_interval_seconds`` the control plane
gives (30 s by default; ``--poll`` sets it). Once it serves and ``--settle`` seconds passed, it
is measured idle for ``--seconds`` (default 60): no request reaches it.

Baseline, in the same window: a bare Python process that imports the same interpreter package,
loads the same artifact file, allocates and invokes once, then sleeps (what the model costs
without the agent).

Measured, from ``/proc`` (every thread of the process included):
- CPU seconds per wall second: ``utime + stime`` of ``/proc/PID/stat`` at both ends of the
  window (clock ticks, 10 ms each: over 60 s the figure resolves 0.02% of a core); target below
  1% of a core;
- memory: ``VmRSS`` at the end and ``VmHWM`` (the high-water mark since start: restore's
  verify, load and validate included), for the agent and the baseline;
- wake-ups: per thread (``/proc/PID/task/TID``, by its name), the context switches
  (voluntary + involuntary) during the window per second, to see that nothing polls: an idle
  agent should wake only for its sync interval and its timers (metric windows, gRPC's own).

Run: ``python -m benchmarks.agent_idle [--seconds S] [--settle S] [--poll S] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._agent_process import (
    INTERPRETER,
    INTERPRETER_MODULES,
    AgentProcess,
    enrolled_device,
    wait_serving,
)
from benchmarks._controlplane import ControlPlaneUnderTest
from benchmarks._report import REPO_ROOT, print_table, write_results
from controlplane.modelgen import build_cnn

NAME = "agent_idle"
MODEL, VERSION = "bench-idle", "1.0.0"
FULL = {"seconds": 60.0, "settle": 5.0}
QUICK = {"seconds": 3.0, "settle": 1.0}
CPU_TARGET = 0.01   # of one core
TICK = os.sysconf("SC_CLK_TCK")

_BASELINE = """
import sys, time, importlib
it = importlib.import_module(sys.argv[1]).Interpreter(model_path=sys.argv[2])
it.allocate_tensors()
it.invoke()
print("ready", flush=True)
time.sleep(10 ** 6)
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, help="idle seconds measured (default 60)")
    p.add_argument("--settle", type=float,
                   help="seconds after the agent serves before the window (default 5)")
    p.add_argument("--poll", type=int, default=30,
                   help="the control plane's poll_interval_seconds (default 30)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


@dataclass(frozen=True)
class ProcSample:
    """One look at a process in ``/proc``."""

    cpu_seconds: float                   # utime + stime, every thread
    rss_kib: int
    hwm_kib: int
    switches: dict[int, tuple[str, int]]  # thread id -> (name, context switches so far)


def sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()   # after "pid (comm) "; utime, stime: 14, 15
    status = _status(Path(f"/proc/{pid}/status"))
    switches = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            t = _status(task / "status")
            switches[int(task.name)] = (
                t["Name"], int(t["voluntary_ctxt_switches"])
                + int(t["nonvoluntary_ctxt_switches"]))
        except FileNotFoundError:
            continue   # the thread ended between listing and reading
    return ProcSample(
        cpu_seconds=(int(fields[11]) + int(fields[12])) / TICK,
        rss_kib=int(status["VmRSS"].split()[0]),
        hwm_kib=int(status["VmHWM"].split()[0]),
        switches=switches,
    )


def _status(path: Path) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in path.read_text().splitlines()
                if ":\t" in line)


def idle_figures(before: ProcSample, after: ProcSample, seconds: float) -> dict[str, Any]:
    """CPU share, memory and per-thread wake-ups of one process over the window."""
    threads: dict[str, dict[str, float]] = {}
    for tid, (name, count) in after.switches.items():
        start = before.switches.get(tid, (name, 0))[1]
        entry = threads.setdefault(name, {"threads": 0, "wakeups_per_s": 0.0})
        entry["threads"] += 1
        entry["wakeups_per_s"] += (count - start) / seconds
    for entry in threads.values():
        entry["wakeups_per_s"] = round(entry["wakeups_per_s"], 2)
    cpu = after.cpu_seconds - before.cpu_seconds
    return {
        "cpu_seconds": round(cpu, 3),
        "cpu_fraction_of_a_core": round(cpu / seconds, 5),
        "vm_rss_mib": round(after.rss_kib / 1024, 1),
        "vm_hwm_mib": round(after.hwm_kib / 1024, 1),
        "threads": len(after.switches),
        "wakeups_per_s": round(sum(t["wakeups_per_s"] for t in threads.values()), 2),
        "by_thread_name": dict(sorted(threads.items(),
                                      key=lambda kv: -kv[1]["wakeups_per_s"])),
    }


def baseline_process(model_path: Path) -> subprocess.Popen[str]:
    """The bare interpreter process, once it loaded and ran the model."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _BASELINE, INTERPRETER_MODULES[INTERPRETER], str(model_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the baseline process did not load the model")
    return proc


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = build_cnn(seed=7)
    labels = {"bench": NAME}
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp:
        root = Path(tmp)
        with ControlPlaneUnderTest(root, poll_interval_seconds=args.poll) as cp:
            mv = cp.push_model(MODEL, VERSION, data)
            sha = mv.variants[0].sha256
            with AgentProcess(cp, root, labels=labels,
                              settings={"probation_seconds": 1}) as installing:
                installing.start()
                enrolled_device(cp, installing.selector)
                cp.wait_rollout(cp.roll_out(MODEL, VERSION, installing.selector))
                wait_serving(installing.data_dir, MODEL, sha)
                time.sleep(1.5)   # past the probation, so the restart has none to resume
            # As on a device: default settings, the control plane's poll interval.
            with AgentProcess(cp, root, labels=labels, poll_interval=None) as agent:
                agent.start()
                wait_serving(agent.data_dir, MODEL, sha)
                baseline = baseline_process(agent.data_dir / "artifacts" / f"{sha}.tflite")
                try:
                    time.sleep(args.settle)
                    before = sample(agent.pid), sample(baseline.pid)
                    began = time.monotonic()
                    time.sleep(args.seconds)
                    after = sample(agent.pid), sample(baseline.pid)
                    seconds = time.monotonic() - began
                finally:
                    baseline.kill()
                    baseline.wait()
                log_tail = agent.log_tail(600)
    figures = idle_figures(before[0], after[0], seconds)
    base = idle_figures(before[1], after[1], seconds)
    return {
        "description": "an idle edgefleet-agent run (one model loaded and synced) vs a bare "
                       "python process holding the same interpreter and model",
        "config": {"seconds": round(seconds, 2), "settle_seconds": args.settle,
                   "control_plane_poll_interval_seconds": args.poll, "interpreter": INTERPRETER,
                   "model": f"{MODEL}:{VERSION} build_cnn(seed=7), {len(data)} bytes",
                   "sha256": sha},
        "agent": figures,
        "baseline": base,
        "agent_over_baseline": {
            "vm_rss_mib_extra": round(figures["vm_rss_mib"] - base["vm_rss_mib"], 1),
            "vm_hwm_mib_extra": round(figures["vm_hwm_mib"] - base["vm_hwm_mib"], 1),
        },
        "targets": {"idle_cpu_fraction_of_a_core": {
            "value": figures["cpu_fraction_of_a_core"], "target_max": CPU_TARGET,
            "pass": figures["cpu_fraction_of_a_core"] < CPU_TARGET}},
        "agent_log_tail": log_tail,
    }


def report(doc: dict[str, Any]) -> None:
    cfg, a, b = doc["config"], doc["agent"], doc["baseline"]
    print(f"Agent idle: {cfg['model']}, {cfg['interpreter']}, {cfg['seconds']:g} s idle, "
          f"control plane poll {cfg['control_plane_poll_interval_seconds']} s")
    rows: list[tuple[str, ...]] = [("", "CPU % of a core", "VmRSS MiB", "VmHWM MiB", "threads",
                                    "wake-ups/s")]
    for label, x in (("edgefleet-agent run", a), ("bare interpreter + model", b)):
        rows.append((label, f"{x['cpu_fraction_of_a_core'] * 100:.3f}", f"{x['vm_rss_mib']:.1f}",
                     f"{x['vm_hwm_mib']:.1f}", str(x["threads"]), f"{x['wakeups_per_s']:.2f}"))
    print_table("idle cost", rows)
    rows = [("agent thread", "threads", "wake-ups/s")]
    for name, t in a["by_thread_name"].items():
        rows.append((name, str(t["threads"]), f"{t['wakeups_per_s']:.2f}"))
    print_table("where the agent wakes", rows)
    t = doc["targets"]["idle_cpu_fraction_of_a_core"]
    print(f"\ntarget idle CPU: {t['value'] * 100:.3f}% of a core (below {CPU_TARGET * 100:g}%): "
          f"{'PASS' if t['pass'] else 'FAIL'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
