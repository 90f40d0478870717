"""Real agent processes for the benchmarks, and the load that goes through their unix socket.

- ``AgentProcess``: ``edgefleet-agent run`` (``agent.cli``) as a process of its own on one data
  dir, enrolled with a ``ControlPlaneUnderTest`` on its first start; it can be stopped
  (SIGTERM), killed (SIGKILL) and started again on the same data dir, as on a device.
- The operator steps around it: push versions and note the sha256 of every variant the device may
  be given, wait for the agent to enroll, to serve a version, to answer a prediction.
- ``LoadProcess``: an open-loop load (``python -m benchmarks._agent_process load``, a JSON spec
  on stdin) sending ``InferenceClient.predict_result`` at a fixed rate from a few threads, in a
  process of its own so it never shares a GIL with the agent or the control plane. It records
  every request (wall-clock start, latency, which variant answered or why it failed) and checks
  every answer: finite, the expected shape, and equal to what a raw interpreter of the variant
  that claims to have answered gives for the same input; any other answer is a failure.

Agent settings without a flag of their own (``metrics_window_seconds``) are given with
``AgentProcess(settings={...})``, passed as ``edgefleet-agent run --set NAME=VALUE``.

Timestamps are wall-clock (``time.time_ns``) in every process, so the load's records, the
agent's install events (the control plane's ``install_events.at``) and the kills line up.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from benchmarks._controlplane import ControlPlaneUnderTest, bearer, wait_for
from benchmarks._report import REPO_ROOT
from protos import edgefleet_pb2 as pb

INTERPRETER = "tflite-runtime"
INTERPRETER_MODULES = {"tflite-runtime": "tflite_runtime.interpreter",
                       "ai-edge-litert": "ai_edge_litert.interpreter"}


# -- the operator's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class PushedVersion:
    """A version pushed and measured: its bytes, and the variants a device may be given."""

    version: str
    data: bytes
    variant_sha256s: frozenset[str]
    push_seconds: float


def push_versions(cp: ControlPlaneUnderTest, model: str,
                  builds: dict[str, bytes]) -> dict[str, PushedVersion]:
    """Push every ``version -> bytes`` of ``model`` and wait until each is ready."""
    pushed = {}
    for version, data in builds.items():
        began = time.perf_counter()
        mv = cp.push_model(model, version, data)
        shas = frozenset(v.sha256 for v in mv.variants if v.sha256 and v.status == "ready")
        if not shas:
            raise RuntimeError(f"{model}:{version} has no ready variant")
        pushed[version] = PushedVersion(version, data, shas, time.perf_counter() - began)
    return pushed


def enrolled_device(cp: ControlPlaneUnderTest, selector: str, timeout: float = 60.0) -> str:
    """The id of the one device matching ``selector``, once it enrolled."""
    def probe() -> str | None:
        devices = cp.admin.ListDevices(pb.ListDevicesRequest(selector=selector),
                                       metadata=bearer(cp.admin_token)).devices
        return str(devices[0].id) if devices else None

    return wait_for(f"a device matching {selector} to enroll", probe, timeout)


def control_plane_db(cp: ControlPlaneUnderTest) -> Path:
    """The embedded control plane's SQLite file (``Settings.db_url``)."""
    url = cp.settings.db_url
    if not url.startswith("sqlite:///"):
        raise RuntimeError(f"not an embedded SQLite control plane: {url}")
    return Path(url.removeprefix("sqlite:///"))


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the control plane's SQLite (no admin API serves them)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
        return list(c.execute(sql, params))


def db_time(text: str) -> float:
    """A timestamp as SQLAlchemy keeps it in SQLite (naive, UTC) -> epoch seconds."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def install_events(cp: ControlPlaneUnderTest, device_id: str) -> list[dict[str, Any]]:
    """The device's install events as the control plane stored them, by the agent's clock."""
    rows = query(control_plane_db(cp),
                 "SELECT at, state, version, sha256, message FROM install_events "
                 "WHERE device_id = ? ORDER BY at, id", (device_id,))
    return [{"at": db_time(at), "state": state, "version": version, "sha256": sha256,
             "message": message} for at, state, version, sha256, message in rows]


def metric_windows(cp: ControlPlaneUnderTest, device_id: str) -> list[dict[str, Any]]:
    """The device's metric windows as the control plane stored them."""
    rows = query(control_plane_db(cp),
                 'SELECT start, "end", sha256, count, errors FROM metric_windows '
                 "WHERE device_id = ? ORDER BY start", (device_id,))
    return [{"start": db_time(start), "end": db_time(end), "sha256": sha256, "count": count,
             "errors": errors} for start, end, sha256, count, errors in rows]


# -- the agent process -------------------------------------------------------------------------


class AgentProcess:
    """``edgefleet-agent run`` on ``root/agent``; its output appended to ``root/agent.log``."""

    def __init__(self, cp: ControlPlaneUnderTest, root: Path, *, labels: dict[str, str],
                 name: str = "bench-agent", poll_interval: float | None = 0.2,
                 settings: dict[str, Any] | None = None,
                 interpreter: str = INTERPRETER) -> None:
        self.cp = cp
        self.data_dir = root / "agent"
        self.log_path = root / "agent.log"
        self.labels = labels
        self.selector = ",".join(f"{k}={v}" for k, v in labels.items())
        self._name = name
        self._poll_interval = poll_interval
        self._settings = settings or {}
        self._interpreter = interpreter
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def command(self) -> list[str]:
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        settings = [arg for name, value in self._settings.items()
                    for arg in ("--set", f"{name}={value}")]
        # No --poll-interval (None): the control plane's poll_interval_seconds, as on a device.
        poll = ([] if self._poll_interval is None
                else ["--poll-interval", f"{self._poll_interval:g}"])
        return [sys.executable, "-m", "agent.cli", "run", "--server", self.cp.address,
                "--data-dir", str(self.data_dir),
                "--trust-key", str(self.cp.settings.signing_public_key_path),
                "--labels", labels, "--name", self._name, *poll, *settings]

    @property
    def pid(self) -> int:
        assert self._proc is not None, "start() first"
        return self._proc.pid

    def start(self) -> float:
        """Start the process (enrolling on the first start); returns its wall-clock start."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("the agent is already running")
        extra = []
        if not (self.data_dir / "credential.json").exists():
            extra = ["--enroll-token", self.cp.enrollment_token(self.labels)]
        if self._log is None:
            self._log = self.log_path.open("ab")
        env = {**os.environ, "EDGEFLEET_AGENT_INTERPRETER": self._interpreter}
        started = time.time()
        self._proc = subprocess.Popen(self.command + extra, cwd=REPO_ROOT, env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)
        self.starts += 1
        return started

    def kill(self) -> float:
        """SIGKILL, and reap it; returns the wall-clock moment the signal was sent."""
        assert self._proc is not None, "start() first"
        at = time.time()
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait()
        return at

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL after ``timeout``; returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        code = self._proc.returncode
        if code not in (0, -signal.SIGTERM, -signal.SIGKILL):
            print(f"agent exited with {code}:\n{self.log_tail()}", file=sys.stderr)
        return code

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def artifact_sha256(self, sha256: str) -> str | None:
        """The sha256 of ``artifacts/<sha256>.tflite`` in the data dir (None: no such file)."""
        try:
            return hashlib.sha256((self.data_dir / "artifacts" / f"{sha256}.tflite")
                                  .read_bytes()).hexdigest()
        except FileNotFoundError:
            return None

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def agent_status(data_dir: Path, timeout: float = 5.0) -> dict[str, Any] | None:
    """The agent's status document; None when it does not answer. A fresh channel each time:
    a channel that saw the agent die waits out gRPC's reconnect backoff."""
    from agent import AgentError, InferenceClient

    if not (data_dir / "agent.sock").exists():
        return None
    try:
        with InferenceClient(data_dir, timeout=timeout) as client:
            return client.status()
    except AgentError:
        return None


def served_version(data_dir: Path, model: str) -> dict[str, Any] | None:
    """The status entry of ``model`` while it is live (state ``active``), else None."""
    status = agent_status(data_dir)
    for m in (status or {}).get("models", []):
        if m["model"] == model and m["state"] == "active":
            return dict(m)
    return None


def wait_serving(data_dir: Path, model: str, sha256: str, timeout: float = 60.0) -> float:
    """Wait until the agent serves ``sha256`` for ``model``; returns the wall-clock moment."""
    def probe() -> float | None:
        m = served_version(data_dir, model)
        return time.time() if m is not None and m["sha256"] == sha256 else None

    return wait_for(f"the agent to serve {model} {sha256[:12]}", probe, timeout)


def first_prediction(data_dir: Path, inputs: dict[str, np.ndarray], *, timeout: float,
                     interval: float = 0.01) -> tuple[Any, float] | None:
    """Predict until one succeeds; ``(PredictResult, wall-clock moment)``, None on timeout.

    A fresh client per attempt (see ``agent_status``); attempts start once the socket exists.
    """
    from agent import AgentError, InferenceClient

    deadline = time.monotonic() + timeout
    socket_path = data_dir / "agent.sock"
    while time.monotonic() < deadline:
        if socket_path.exists():
            try:
                with InferenceClient(data_dir, timeout=2.0) as client:
                    result = client.predict_result(inputs)
                return result, time.time()
            except AgentError:
                pass
        time.sleep(interval)
    return None


# -- raw references ----------------------------------------------------------------------------


def raw_outputs(model_path: Path, inputs: dict[str, np.ndarray],
                interpreter: str = INTERPRETER) -> dict[str, np.ndarray]:
    """What a raw interpreter of ``model_path`` gives for ``inputs`` (by tensor name)."""
    module = importlib.import_module(INTERPRETER_MODULES[interpreter])
    it = module.Interpreter(model_path=str(model_path))
    it.allocate_tensors()
    for detail in it.get_input_details():
        it.set_tensor(detail["index"], inputs[detail["name"]])
    it.invoke()
    return {d["name"]: np.array(it.get_tensor(d["index"])) for d in it.get_output_details()}


def check_outputs(outputs: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                  atol: float = 1e-5) -> str | None:
    """Why ``outputs`` are not the ``expected`` ones (None: they are)."""
    if set(outputs) != set(expected):
        return f"outputs {sorted(outputs)}, expected {sorted(expected)}"
    for name, want in expected.items():
        got = outputs[name]
        if got.shape != want.shape:
            return f"{name}: shape {got.shape}, expected {want.shape}"
        if not np.all(np.isfinite(got)):
            return f"{name}: not finite"
        if not np.allclose(got, want, atol=atol):
            return f"{name}: differs from the raw interpreter by {np.max(np.abs(got - want)):.3g}"
    return None


# -- the load process --------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Every request of a load run, in the order they were scheduled."""

    start: np.ndarray          # wall-clock seconds the request was sent
    latency_ms: np.ndarray
    late_ms: np.ndarray        # how long after its scheduled moment it was sent
    answered_by: list[str]     # the variant sha256 that answered; "" for a failure
    failures: dict[str, int]   # reason -> how many
    failure_examples: list[str]
    skipped: int               # slots given up because the thread was too far behind
    references: dict[str, str]  # sha256 -> reference source (raw interpreter file)

    @property
    def ok(self) -> np.ndarray:
        return np.array([bool(s) for s in self.answered_by], dtype=bool)


class LoadProcess:
    """``python -m benchmarks._agent_process load`` running until ``stop()``."""

    def __init__(self, spec: dict[str, Any], out: Path) -> None:
        self._spec = {**spec, "out": str(out)}
        self._out = out
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start it and wait until it is sending; returns the wall-clock start of the load."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._agent_process", "load"], cwd=REPO_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self._spec))
        self._proc.stdin.close()
        line = self._proc.stdout.readline()
        if not line.startswith("started "):
            self._proc.wait(timeout)
            raise RuntimeError(f"the load process did not start (exit {self._proc.returncode})")
        return float(line.split()[1])

    def stop(self, timeout: float = 60.0) -> LoadResult:
        assert self._proc is not None, "start() first"
        self._proc.send_signal(signal.SIGTERM)
        if self._proc.wait(timeout) != 0:
            raise RuntimeError(f"the load process failed (exit {self._proc.returncode})")
        doc = json.loads(self._out.read_text())
        return LoadResult(
            start=np.array(doc["start"]), latency_ms=np.array(doc["latency_ms"]),
            late_ms=np.array(doc["late_ms"]),
            answered_by=[doc["shas"][i] if i >= 0 else "" for i in doc["answered_by"]],
            failures=doc["failures"], failure_examples=doc["failure_examples"],
            skipped=doc["skipped"], references=doc["references"],
        )


def load_inputs(spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The one input every request of a load spec sends (seeded, so both sides agree)."""
    rng = np.random.default_rng(int(spec["input_seed"]))
    return {name: rng.normal(0, 1, shape).astype(np.float32)
            for name, shape in sorted(spec["input_shapes"].items())}


def _run_load(spec: dict[str, Any]) -> int:
    """The load process: open loop, ``rate`` requests/s over ``threads`` threads until SIGTERM.

    Slot k is due at t0 + k / rate and belongs to thread k % threads; a thread sends as soon as
    its slot is due (late if the previous request took longer), and gives a slot up when it is
    more than ``max_late_seconds`` behind (counted in ``skipped``). After a transport failure a
    thread opens a new client: a channel that saw the agent go away would otherwise wait out
    gRPC's reconnect backoff.
    """
    from agent import AgentError, AgentTransportError, InferenceClient

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    inputs = load_inputs(spec)
    expected = {sha: raw_outputs(Path(path), inputs, spec["interpreter"])
                for sha, path in spec["references"].items()}
    shas = sorted(expected)
    index = {sha: i for i, sha in enumerate(shas)}
    rate, threads = float(spec["rate"]), int(spec["threads"])
    max_late_ns = int(float(spec.get("max_late_seconds", 1.0)) * 1e9)
    timeout = float(spec.get("timeout_seconds", 10.0))
    # Wall-clock timestamps at perf_counter precision.
    wall0, perf0 = time.time_ns(), time.perf_counter_ns()
    t0 = perf0 + 50_000_000
    period_ns = 1e9 / rate
    records: list[list[tuple[int, int, int, int]]] = [[] for _ in range(threads)]
    failures: dict[str, int] = {}
    examples: list[str] = []
    skipped = [0] * threads
    lock = threading.Lock()

    def fail(reason: str, detail: str) -> None:
        with lock:
            failures[reason] = failures.get(reason, 0) + 1
            if len(examples) < 20:
                examples.append(f"{reason}: {detail}")

    def worker(i: int) -> None:
        client = InferenceClient(spec["endpoint"], timeout=timeout)
        mine, k = records[i], i
        try:
            while not stop.is_set():
                due = t0 + int(k * period_ns)
                k += threads
                now = time.perf_counter_ns()
                if now < due:
                    if stop.wait((due - now) / 1e9):
                        break
                elif now - due > max_late_ns:
                    skipped[i] += 1
                    continue
                began = time.perf_counter_ns()
                answered = -1
                try:
                    result = client.predict_result(inputs)
                    sha = result.ref.sha256
                    if sha not in index:
                        fail("unknown_version", sha)
                    elif (why := check_outputs(result.outputs, expected[sha])) is not None:
                        fail("wrong_output", why)
                    else:
                        answered = index[sha]
                except AgentTransportError as exc:
                    fail(f"transport:{exc.code or 'unknown'}", str(exc))
                    client.close()
                    client = InferenceClient(spec["endpoint"], timeout=timeout)
                except AgentError as exc:
                    fail(type(exc).__name__, str(exc))
                done = time.perf_counter_ns()
                mine.append((began, done - began, began - due, answered))
        finally:
            client.close()

    workers = [threading.Thread(target=worker, args=(i,), name=f"load-{i}")
               for i in range(threads)]
    for w in workers:
        w.start()
    print(f"started {(wall0 + (t0 - perf0)) / 1e9:.6f}", flush=True)
    for w in workers:
        w.join()
    rows = sorted(r for mine in records for r in mine)
    doc = {
        "start": [(wall0 + (r[0] - perf0)) / 1e9 for r in rows],
        "latency_ms": [r[1] / 1e6 for r in rows],
        "late_ms": [max(0, r[2]) / 1e6 for r in rows],
        "answered_by": [r[3] for r in rows],
        "shas": shas,
        "failures": failures,
        "failure_examples": examples,
        "skipped": sum(skipped),
        "references": dict(spec["references"]),
    }
    Path(spec["out"]).write_text(json.dumps(doc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks._agent_process",
                                description="the benchmarks' open-loop predict load process")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("load", help="an open-loop predict load; JSON spec on stdin")
    p.parse_args(argv)
    return _run_load(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    sys.exit(main())
