"""A staged rollout to a simulated fleet of thousands of devices: how fast the control plane
moves them, and what it costs it.

Setup (not measured): the control plane as real processes, scaled out (``edgefleet init``, one
``edgefleet server`` and one ``edgefleet worker`` on a private scratch database on PostgreSQL
and on Redis) or ``--embedded`` (one ``edgefleet server`` on SQLite with its in-process worker);
a generated MLP pushed (float32 only); ``--devices`` simulated devices
(``controlplane.fleetsim``, in this process, sharing ``--channels`` connections), half of one
hardware class (aarch64, tflite-runtime 2.14, 4 GiB) and half of another (armv7l,
ai-edge-litert, 1 GiB), enrolled with bounded concurrency; then ``--idle-seconds`` of the
fleet polling with nothing to do (the baseline the rollout's cost is read against).

Measured, from ``CreateRollout`` (``--waves``, default 1%,10%,50%,100%, ``--bake`` 0 s; a server
that runs one wave ignores the plan, and the figures say how many waves it reported) until the
rollout ended and every device reported the version active: the time to all active and to each
tenth of the fleet, devices activated per minute overall and per wave the server reported
(its ``started_at``..``finished_at``), the control plane's CPU seconds (server and worker
processes and their children, user + system, psutil) and as % of one core, its peak RSS
(sampled every 0.5 s, and each process's VmHWM), and the database size before and after
(``pg_database_size``, or the SQLite files). Enrollment is reported as setup: devices per
second and the control plane's CPU per enrollment.

Reference: AWS IoT Jobs rolls a job out to at most 1,000 devices per minute (its maximum
``rolloutConfig`` rate); ``vs_aws_iot_jobs`` is our overall rate over that figure. It is a
ceiling of a managed service, not a measurement on this machine: read it as an order of
magnitude, the ratio against the idle baseline is the figure that travels.

Run: ``python -m benchmarks.fleet_sim [--devices 10000] [--embedded] [--db URL] [--redis URL]
[--poll 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks._controlplane import ControlPlaneUnderTest, scratch_database, wait_for
from benchmarks._report import percentile, print_table, ratio, write_results
from controlplane import fleetsim
from controlplane.modelgen import build_mlp
from protos import edgefleet_pb2 as pb
from protos.contract.interpreters import installed_versions

NAME = "fleet_sim"
MODEL, VERSION = "bench-fleet", "1.0.0"
AWS_IOT_JOBS_MAX_PER_MINUTE = 1000
TERMINAL = ("succeeded", "failed", "aborted", "rolled_back")
#: What the control plane's logs say about contention: counted per process after the run.
LOG_SIGNS = {
    "deadlocks": re.compile(r"deadlock detected"),
    "transactions_lost_and_retried": re.compile(r"transaction lost to a concurrent one"),
    "rollout_ticks_busy": re.compile(r"rollout \S+: busy"),
    "start_task_retries": re.compile(r"Task rollouts\.start\[\S+\] retry"),
}
START_DONE = re.compile(r"Task rollouts\.start\[\S+\] succeeded in ([0-9.]+)s")
FULL = {"devices": 10_000, "idle_seconds": 20.0, "channels": 8}
QUICK = {"devices": 40, "idle_seconds": 2.0, "channels": 2}
CLASSES = (
    ("aarch64/tflite-runtime/4G", fleetsim.hardware_profile(
        arch="aarch64", interpreter="tflite-runtime", interpreter_version="2.14.0",
        ram_bytes=4 * fleetsim.GiB)),
    ("armv7l/ai-edge-litert/1G", fleetsim.hardware_profile(
        arch="armv7l", interpreter="ai-edge-litert",
        interpreter_version=installed_versions().get("ai-edge-litert", "2.3.0"),
        ram_bytes=1 * fleetsim.GiB)),
)
BEHAVIOURS = ({"*": fleetsim.Behaviour(latency_p50_ms=3.0, inferences_per_second=5)},
              {"*": fleetsim.Behaviour(latency_p50_ms=12.0, inferences_per_second=2)})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, help="simulated devices (default 10000; --quick 40)")
    p.add_argument("--embedded", action="store_true",
                   help="one `edgefleet server` on SQLite with its in-process worker")
    p.add_argument("--db", default=os.environ.get("EDGEFLEET_TEST_DATABASE_URL",
                                                  "postgresql://postgres@127.0.0.1:5432/test"),
                   help="PostgreSQL server; a scratch database is made on it and dropped")
    p.add_argument("--redis", default=os.environ.get("EDGEFLEET_TEST_REDIS_URL",
                                                     "redis://127.0.0.1:6379/0"))
    p.add_argument("--waves", default="1%,10%,50%,100%", help="the rollout plan's waves")
    p.add_argument("--bake", type=int, default=0, help="bake seconds after each wave")
    p.add_argument("--poll", type=float, default=10.0,
                   help="devices' poll interval, seconds, jittered +-20%% (default 10)")
    p.add_argument("--window", type=float, default=30.0,
                   help="devices' metric window, seconds (default 30)")
    p.add_argument("--channels", type=int, help="connections the devices share (default 8)")
    p.add_argument("--enroll-concurrency", type=int, default=32)
    p.add_argument("--enroll-tokens", type=int, default=1,
                   help="enrollment tokens the devices are spread over (default 1)")
    p.add_argument("--no-download", action="store_true",
                   help="devices skip the artifact bytes (default: every byte, sha256 checked)")
    p.add_argument("--idle-seconds", type=float, help="baseline: the fleet polling, nothing "
                                                      "to do (default 20)")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="give up on the rollout after this many seconds")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.devices < len(CLASSES):
        p.error(f"--devices must be at least {len(CLASSES)}")
    return args


# -- the control plane as processes -------------------------------------------------------------


@dataclass
class ControlPlaneProcesses:
    root: Path
    cp: ControlPlaneUnderTest
    procs: dict[str, subprocess.Popen[bytes]]
    database_url: str | None        # None: the embedded SQLite in the data dir
    samples: dict[str, int] = field(default_factory=dict)   # peak RSS sampled, bytes

    def ps(self) -> dict[str, psutil.Process]:
        return {label: psutil.Process(p.pid) for label, p in self.procs.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """user + system of each process and its children (the optimize pipeline's), so far."""
        out = {}
        for label, proc in self.ps().items():
            total = _cpu(proc)
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += _cpu(child)
            out[label] = total
        return out

    def sample_rss(self) -> None:
        for label, proc in self.ps().items():
            with contextlib.suppress(psutil.Error):
                rss = proc.memory_info().rss
                self.samples[label] = max(self.samples.get(label, 0), rss)

    def hwm(self) -> dict[str, int]:
        """Each process's VmHWM: its peak RSS over its whole life, setup included."""
        out = {}
        for label, p in self.procs.items():
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[label] = int(line.split()[1]) * 1024
        return out

    def log_signs(self) -> dict[str, Any]:
        """Contention the logs tell of, per process; the successful start task's duration."""
        out: dict[str, Any] = {}
        for label in self.procs:
            text = (self.root / f"{label}.log").read_text(errors="replace")
            out[label] = {name: len(sign.findall(text)) for name, sign in LOG_SIGNS.items()}
            if done := START_DONE.findall(text):
                out[label]["start_task_seconds"] = [float(x) for x in done]
        return out

    def database_bytes(self) -> int:
        if self.database_url is None:
            data = self.cp.settings.data_dir
            return sum(f.stat().st_size for f in data.glob("edgefleet.db*"))
        import psycopg
        from sqlalchemy.engine import make_url

        libpq = make_url(self.database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        with psycopg.connect(libpq) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


@contextlib.contextmanager
def control_plane(root: Path, args: argparse.Namespace) -> Iterator[ControlPlaneProcesses]:
    """The control plane as processes of their own; stopped (SIGTERM) on exit."""
    with contextlib.ExitStack() as stack:
        db = None if args.embedded else stack.enter_context(scratch_database(args.db))
        cp = ControlPlaneUnderTest(root, database_url=db)
        data = cp.settings.data_dir
        exe = str(Path(sys.executable).parent / "edgefleet")
        env = {**os.environ, "EDGEFLEET_VARIANT_KINDS": "float32"}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        token_file = data / "admin-token"   # embedded: the server's first start writes it
        token: str | None = None
        if db is None:
            plan = [("server", ["server", "--data-dir", str(data), "--listen", cp.address])]
        else:
            # Scaled out, nobody starts the fleet but `edgefleet init` (schema, key, token).
            init = subprocess.run([exe, "init", "--db", db, "--data-dir", str(data), "-o",
                                   "json"], check=True, capture_output=True, timeout=120)
            token = str(json.loads(init.stdout)["admin_token"])
            common = ["--db", db, "--redis", args.redis, "--data-dir", str(data)]
            plan = [("server", ["server", "--listen", cp.address, *common]),
                    ("worker", ["worker", *common])]
        try:
            for label, argv in plan:
                log = (root / f"{label}.log").open("wb")
                procs[label] = subprocess.Popen([exe, *argv], stdout=log,
                                                stderr=subprocess.STDOUT, env=env)
            if token is None:
                token = wait_for("the admin token", lambda: (token_file.exists()
                                 and token_file.read_text().strip()) or None, timeout=120)
            cp.connect(token)
            wait_for("the server to answer", cp.answers, timeout=120)
            yield ControlPlaneProcesses(root, cp, procs, db)
        except BaseException:
            for label in procs:
                print(f"--- {label}.log\n" + (root / f"{label}.log").read_text()[-2000:],
                      file=sys.stderr)
            raise
        finally:
            if cp.channel is not None:
                cp.channel.close()
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()


class RssSampler:
    """Samples the control plane's RSS every ``period`` seconds on a thread of its own."""

    def __init__(self, plane: ControlPlaneProcesses, period: float = 0.5) -> None:
        self._plane, self._period = plane, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._plane.sample_rss()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# -- the phases ---------------------------------------------------------------------------------


def enroll(plane: ControlPlaneProcesses, sim: fleetsim.FleetThread,
           args: argparse.Namespace) -> dict[str, Any]:
    """Enroll ``--devices`` devices, the classes alternating in blocks (setup, reported)."""
    cp = plane.cp
    per_token = -(-args.devices // args.enroll_tokens)
    tokens = [cp.enrollment_token({"fleet": NAME}, uses=per_token)
              for _ in range(args.enroll_tokens)]
    cpu0, db0, t0 = plane.cpu_seconds(), plane.database_bytes(), time.monotonic()
    done = 0
    for i, token in enumerate(tokens):
        count = min(per_token, args.devices - done)
        half = count // 2 if i % 2 == 0 else count - count // 2
        for (name, hardware), behaviours, n in zip(CLASSES, BEHAVIOURS, (half, count - half),
                                                    strict=True):
            sim.enroll(token, n, hardware=hardware, behaviours=behaviours,
                       name=name.split("/")[0], timeout=args.timeout)
        done += count
    seconds = time.monotonic() - t0
    cpu = _delta(plane.cpu_seconds(), cpu0)
    return {
        "devices": done, "seconds": round(seconds, 2), "tokens": args.enroll_tokens,
        "concurrency": args.enroll_concurrency,
        "per_second": round(done / seconds, 1),
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ms_per_enrollment": round(1000 * sum(cpu.values()) / done, 2),
        "database_bytes_per_device": round((plane.database_bytes() - db0) / done, 1),
    }


def idle(plane: ControlPlaneProcesses, seconds: float) -> dict[str, Any]:
    """The fleet polling with nothing new: what the control plane spends on it."""
    cpu0, t0 = plane.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    cpu, elapsed = _delta(plane.cpu_seconds(), cpu0), time.monotonic() - t0
    return {"seconds": round(elapsed, 2),
            "cpu_percent_of_core": round(100 * sum(cpu.values()) / elapsed, 1),
            "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()}}


def roll_out(plane: ControlPlaneProcesses, sim: fleetsim.FleetThread,
             args: argparse.Namespace) -> dict[str, Any]:
    cp = plane.cp
    waves = [w.strip() for w in args.waves.split(",") if w.strip()]
    plan = pb.RolloutPlan(waves=waves, bake_seconds=args.bake)
    db0, cpu0 = plane.database_bytes(), plane.cpu_seconds()
    devices = sim.fleet.devices
    with RssSampler(plane):
        t0, wall0 = time.monotonic(), time.time()
        rollout = cp.admin.CreateRollout(
            pb.CreateRolloutRequest(model=MODEL, version=VERSION, selector=f"fleet={NAME}",
                                    plan=plan), metadata=cp.admin_md(), timeout=120)
        create_seconds = time.monotonic() - t0
        final, running_seen = _follow(cp, rollout.id, sim, len(devices), t0, args.timeout)
        elapsed = time.monotonic() - t0
    cpu = _delta(plane.cpu_seconds(), cpu0)
    activated = sorted(d.activated_at[MODEL, VERSION] - t0 for d in devices
                       if (MODEL, VERSION) in d.activated_at)
    first_started = min((w.started_at.ToSeconds() for w in final.waves
                         if w.HasField("started_at")), default=None)
    return {
        "rollout_id": final.id, "state": final.state, "plan_waves": waves,
        "waves_reported": len(final.waves),
        "create_call_seconds": round(create_seconds, 3),
        # The rollout's start (choosing and publishing every device's desired state) as seen
        # polling its state, and as the server stamped its first wave (when it reports that).
        "seconds_to_running_seen": round(running_seen, 2) if running_seen is not None else None,
        "seconds_to_first_wave_started": (round(first_started - wall0, 2)
                                          if first_started is not None else None),
        "seconds_to_first_active": round(activated[0], 2) if activated else None,
        "seconds_to_all_active": round(activated[-1], 2) if activated else None,
        "seconds_to_rollout_end": round(elapsed, 2),
        "active_devices": len(activated),
        "seconds_to_fraction_active": {
            f"{q}%": round(percentile(activated, q), 2) for q in range(10, 101, 10)
        } if activated else {},
        "devices_per_minute": round(60 * len(activated) / activated[-1], 1) if activated else 0,
        # The pace once devices are moving, free of the start and of the last poll's tail.
        "devices_per_minute_10_to_90": _pace(activated),
        "per_wave": [_wave(w) for w in final.waves],
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_percent_of_core": round(100 * sum(cpu.values()) / elapsed, 1),
        "peak_rss_sampled_bytes": dict(plane.samples),
        "peak_rss_lifetime_bytes": plane.hwm(),
        "database_bytes_before": db0,
        "database_bytes_after": plane.database_bytes(),
        "devices_erroring_at_end": sim.counts(MODEL).erroring,
        "timed_out": len(activated) < len(devices) or final.state not in TERMINAL,
        "log_signs": plane.log_signs(),
    }


def _follow(cp: ControlPlaneUnderTest, rollout_id: str, sim: fleetsim.FleetThread,
            devices: int, t0: float, timeout: float) -> tuple[pb.Rollout, float | None]:
    """Until the rollout ended and every device serves the version; progress on stderr.
    Returns the rollout and the seconds after ``t0`` it was first seen running (to 0.5 s)."""
    last, running_seen = 0.0, None
    while True:
        r = cp.admin.GetRollout(pb.GetRolloutRequest(id=rollout_id), metadata=cp.admin_md(),
                                timeout=60)
        active = sim.counts(MODEL).by_version.get(VERSION, 0)
        now = time.monotonic()
        if running_seen is None and r.state != "pending":
            running_seen = now - t0
        if now - last >= 5:
            last = now
            print(f"  {now - t0:7.1f} s  rollout {r.state:<10} waves "
                  f"{[(w.state, w.succeeded, w.devices) for w in r.waves]}  "
                  f"active {active}/{devices}", file=sys.stderr)
        if r.state in TERMINAL and active == devices:
            return r, running_seen
        if r.state in TERMINAL and r.state != "succeeded":
            raise RuntimeError(f"rollout ended {r.state}: {list(r.failed_devices)[:3]}")
        if now - t0 > timeout:   # the figures so far are kept: that is a result too
            print(f"  gave up after {timeout:g} s: {r.state}, {active}/{devices} active",
                  file=sys.stderr)
            return r, running_seen
        time.sleep(0.5)


def _pace(activated: list[float]) -> float | None:
    if len(activated) < 10:
        return None
    lo, hi = percentile(activated, 10), percentile(activated, 90)
    return round(60 * 0.8 * len(activated) / (hi - lo), 1) if hi > lo else None


def _wave(w: pb.Wave) -> dict[str, Any]:
    started = w.started_at.ToSeconds() if w.HasField("started_at") else None
    finished = w.finished_at.ToSeconds() if w.HasField("finished_at") else None
    seconds = finished - started if started is not None and finished is not None else None
    return {"index": w.index, "devices": w.devices, "succeeded": w.succeeded,
            "failed": w.failed, "state": w.state, "seconds": seconds,
            "devices_per_minute": (round(60 * w.succeeded / seconds, 1) if seconds else None)}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


# -- main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = fleetsim.SimSettings(
        poll_seconds=args.poll, metrics_window_seconds=args.window, channels=args.channels,
        max_enrollments_in_flight=args.enroll_concurrency, download=not args.no_download,
        rpc_timeout_seconds=60.0)
    with tempfile.TemporaryDirectory(prefix="edgefleet-fleet-sim-") as tmp, \
            control_plane(Path(tmp), args) as plane:
        print(f"control plane up ({'embedded SQLite' if args.embedded else 'PostgreSQL + Redis'}"
              f"); pushing {MODEL}:{VERSION}", file=sys.stderr)
        plane.cp.push_model(MODEL, VERSION, build_mlp(seed=1), timeout=300)
        key = (plane.cp.settings.data_dir / "signing-key.pub").read_bytes()
        sim_proc = psutil.Process()
        with fleetsim.FleetThread(plane.cp.address, key, settings, seed=1) as sim:
            print(f"enrolling {args.devices} devices", file=sys.stderr)
            enrolled = enroll(plane, sim, args)
            print(f"  {enrolled['per_second']} enrollments/s; starting the fleet",
                  file=sys.stderr)
            sim.start()
            sim.call(sim.fleet.wait_until(
                "every device's first Sync", lambda ds: all(d.rounds >= 1 for d in ds),
                timeout=args.timeout), timeout=args.timeout + 30)
            baseline = idle(plane, args.idle_seconds)
            print(f"  idle: {baseline['cpu_percent_of_core']}% of a core; rolling out",
                  file=sys.stderr)
            sim_cpu0 = sum(sim_proc.cpu_times()[:2])
            rollout = roll_out(plane, sim, args)
            rollout["simulator_cpu_seconds"] = round(sum(sim_proc.cpu_times()[:2]) - sim_cpu0,
                                                     2)
            watching = sim.fleet.watching
    per_minute = rollout["devices_per_minute"]
    return {
        "config": {"devices": args.devices, "control_plane": "embedded SQLite" if args.embedded
                   else "edgefleet server + edgefleet worker, PostgreSQL + Redis",
                   "classes": [name for name, _ in CLASSES], "waves": args.waves,
                   "bake_seconds": args.bake, "poll_seconds": args.poll,
                   "jitter": settings.jitter, "metrics_window_seconds": args.window,
                   "channels": args.channels, "download": not args.no_download,
                   "watch": watching, "idle_seconds": args.idle_seconds,
                   "variant_kinds": ["float32"]},
        "enrollment": enrolled,
        "idle": baseline,
        "rollout": rollout,
        "reference": {"aws_iot_jobs_max_devices_per_minute": AWS_IOT_JOBS_MAX_PER_MINUTE,
                      "vs_aws_iot_jobs": ratio(per_minute, AWS_IOT_JOBS_MAX_PER_MINUTE)},
    }


def report(doc: dict[str, Any]) -> None:
    e, i, r = doc["enrollment"], doc["idle"], doc["rollout"]
    mib = 1024 * 1024
    print_table(f"fleet_sim: {doc['config']['devices']} devices, {doc['config']['control_plane']}",
                [("figure", "value"),
                 ("enrollment (setup)", f"{e['per_second']}/s, "
                                        f"{e['cpu_ms_per_enrollment']} ms CPU each"),
                 ("idle polling, CPU", f"{i['cpu_percent_of_core']}% of a core "
                                       f"(poll {doc['config']['poll_seconds']} s)"),
                 ("waves asked / reported", f"{len(r['plan_waves'])} / {r['waves_reported']}"),
                 ("create -> seen running", f"{r['seconds_to_running_seen']} s"),
                 ("create -> first active", f"{r['seconds_to_first_active']} s"),
                 ("create -> all active", f"{r['seconds_to_all_active']} s"),
                 ("devices activated / min", f"{r['devices_per_minute']} (10%..90%: "
                                             f"{r['devices_per_minute_10_to_90']})"),
                 ("vs AWS IoT Jobs (1000/min)", f"{doc['reference']['vs_aws_iot_jobs']}x"),
                 ("control plane CPU", f"{sum(r['cpu_seconds'].values()):.1f} s "
                                       f"({r['cpu_percent_of_core']}% of a core)"),
                 ("peak RSS (sampled)", ", ".join(f"{k} {v / mib:.0f} MiB" for k, v in
                                                  r["peak_rss_sampled_bytes"].items())),
                 ("database", f"{r['database_bytes_before'] / mib:.1f} -> "
                              f"{r['database_bytes_after'] / mib:.1f} MiB"),
                 ("simulator CPU", f"{r['simulator_cpu_seconds']} s"),
                 *((f"{label} log", ", ".join(f"{k} {v}" for k, v in signs.items() if v))
                   for label, signs in r["log_signs"].items())])
    if r["per_wave"]:
        print_table("per wave (as the server reports them)",
                    [("wave", "devices", "succeeded", "seconds", "devices/min"),
                     *((str(w["index"]), str(w["devices"]), str(w["succeeded"]),
                        f"{w['seconds']:.1f}" if w["seconds"] is not None else "-",
                        str(w["devices_per_minute"])) for w in r["per_wave"])])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    # The default fleet's figures are fleet_sim.json; other sizes and shapes get a suffix.
    suffix = ".".join(([] if args.devices == FULL["devices"] or args.quick
                       else [f"{args.devices}devices"]) + (["embedded"] if args.embedded else []))
    path = write_results(NAME, doc, quick=args.quick, suffix=suffix)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
