"""No lost metrics, end to end: ``edgefleet server`` and ``edgefleet worker`` on PostgreSQL and
Redis, a real ``edgefleet-agent run`` answering a steady load on its local endpoint, and the
server's ``metric_windows`` read back through a database session.

(a) The agent SIGKILLed several times under load and started again: per run, the server holds
    every answered prediction but those of the last checkpoint interval before the kill, and
    never more than were answered (a restored window keeps its id, so it is stored once).
(b) The server stopped for several sync intervals while the device keeps answering, then
    started again: the server ends up with exactly the predictions answered.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from agent import AgentError, InferenceClient
from controlplane import modelgen
from controlplane.db import make_engine
from controlplane.telemetry.models import MetricWindow
from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

#: The open window is checkpointed every second, so a kill may cost up to a second of answers.
#: In (a) windows are of the default 10 s, longer than any run: what a killed run keeps, it
#: keeps through its checkpoints alone. In (b) they are of 1 s, so that several close while
#: the server is away.
CHECKPOINT_SECONDS = 1.0
WINDOW_SECONDS = 1.0
POLL_SECONDS = 0.5
#: How late the checkpoint thread may write on two shared, busy cores (its wait, then the
#: fsynced write), on top of its interval, in the allowance for what a kill may cost.
SCHEDULING_SLACK = 0.5
X = np.random.default_rng(7).uniform(-1, 1, (1, 16)).astype(np.float32)


@dataclass
class ControlPlane:
    f: Fleet
    db: str
    server_args: list[str]
    data: Path
    enroll_token: str = ""
    restarts: int = 0

    def start_server(self) -> None:
        self.f.spawn(f"server-{self.restarts}", self.server_args)
        self.restarts += 1
        wait_for("the server to answer",
                 lambda: self.f.cli("model", "list", check=False).returncode == 0 or None,
                 check=self.f.alive)

    def stored(self, device_id: str) -> list[tuple[datetime, int]]:
        """(start, count) of each window the server stored for the device."""
        engine = make_engine(self.db)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(MetricWindow.start, MetricWindow.count)
                                    .where(MetricWindow.device_id == device_id)).all()
        finally:
            engine.dispose()
        return [(start.replace(tzinfo=UTC) if start.tzinfo is None else start, count)
                for start, count in rows]


@contextmanager
def control_plane(postgres_server_url: str, redis_url: str, tmp: Path) -> Iterator[ControlPlane]:
    """A migrated private database, a server and a worker on it and Redis, and the MLP pushed
    as ``mlp:1.0.0`` (float32 only: the variants are not what is tested here)."""
    db = testdb.create_database(postgres_server_url)
    addr = f"127.0.0.1:{free_port()}"
    data = tmp / "server-data"
    try:
        with fleet(tmp, addr) as f:
            f.env["EDGEFLEET_VARIANT_KINDS"] = "float32"
            up = f.cli("db", "upgrade", "--db", db, check=False)
            assert up.returncode == 0, up.stderr.decode()
            plane = ControlPlane(f, db, [command("edgefleet"), "server", "--data-dir", str(data),
                                         "--listen", addr, "--db", db, "--redis", redis_url],
                                 data)
            f.spawn("server", plane.server_args)
            token_file = data / "admin-token"
            wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
            f.spawn("worker", [command("edgefleet"), "worker", "--data-dir", str(data), "--db",
                               db, "--redis", redis_url])
            f.env["EDGEFLEET_TOKEN"] = token_file.read_text().strip()
            wait_for("the server to answer",
                     lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                     check=f.alive)
            model = tmp / "mlp.tflite"
            model.write_bytes(modelgen.build_mlp(seed=3))
            pushed = f.cli("model", "push", str(model), "--name", "mlp", "--version", "1.0.0",
                           "--wait")
            assert pushed["status"] == "ready", pushed
            plane.enroll_token = f.cli("enroll-token", "create")["token"]
            yield plane
    finally:
        testdb.drop_database(db)


@dataclass
class Device:
    """One data dir, run as ``edgefleet-agent run`` again and again."""

    plane: ControlPlane
    data_dir: Path
    label: str
    window_seconds: float
    runs: int = 0

    def start(self) -> None:
        self.plane.f.spawn(f"agent-{self.runs}", [
            command("edgefleet-agent"), "run", "--server", self.plane.f.server, "--data-dir",
            str(self.data_dir), "--enroll-token", self.plane.enroll_token, "--trust-key",
            str(self.plane.data / "signing-key.pub"), "--name", self.label, "--labels",
            f"test={self.label}", "--poll-interval", str(POLL_SECONDS),
            "--set", f"metrics_window_seconds={self.window_seconds}",
            "--set", f"metrics_checkpoint_seconds={CHECKPOINT_SECONDS}",
            "--set", "probation_seconds=0", "--set", "backoff_max_seconds=2"])
        self.runs += 1

    def kill(self) -> None:
        """SIGKILL the running agent (no handler, no flush), and forget the process: the
        fleet's liveness check is about the processes that should be running."""
        proc = self.plane.f.procs.pop(f"agent-{self.runs - 1}")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    @property
    def device_id(self) -> str:
        return json.loads((self.data_dir / "credential.json").read_text())["device_id"]

    def deploy(self) -> Load:
        """Enrolled, then ``mlp:1.0.0`` rolled out to it, and the load on it answered. The load
        is the only client: every inference the agent counts is one it sent (until a model is
        live its requests are refused before reaching one, and not counted)."""
        wait_for("the agent to enroll", lambda: (self.data_dir / "credential.json").exists()
                 or None, check=self.plane.f.alive)
        load = Load(self.data_dir)
        load.start()
        self.plane.f.cli("rollout", "create", "mlp:1.0.0", "--selector", f"test={self.label}")
        wait_for("the model to answer", lambda: load.answered or None, check=self.plane.f.alive)
        return load


@dataclass
class Load:
    """One request at a time to the agent's local endpoint, about 40 a second; when each was
    answered (monotonic and wall clock), and how many failed (the agent was down)."""

    data_dir: Path
    answered: list[float] = field(default_factory=list)
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()

    def between(self, since: float, until: float) -> int:
        return sum(since < t <= until for t in self.answered)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with InferenceClient(self.data_dir, timeout=5) as client:
                    while not self._stop.is_set():
                        client.predict_result({"features": X})
                        self.answered.append(time.monotonic())
                        self._stop.wait(0.02)
            except AgentError:
                self.failed += 1
                self._stop.wait(0.05)


@dataclass
class Run:
    """One life of the agent process: from its start to its kill (monotonic and wall times)."""

    started: float
    started_wall: float
    ended: float = float("inf")


def test_sigkilled_agent_loses_at_most_the_last_checkpoint_interval_and_counts_nothing_twice(
        postgres_server_url: str, redis_db_url: str, tmp_path: Path) -> None:
    """Input tried: the agent SIGKILLed 4 times, at random moments 1.5-3.5 s into a run under
    load, and started again each time on the same data dir."""
    kills = 4
    rng = random.Random(20260807)
    with control_plane(postgres_server_url, redis_db_url, tmp_path) as plane:
        device = Device(plane, tmp_path / "agent", "kill", window_seconds=10.0)
        runs = [Run(time.monotonic(), time.time())]
        device.start()
        load = device.deploy()
        for _ in range(kills):
            time.sleep(rng.uniform(1.5, 3.5))
            runs[-1].ended = time.monotonic()
            device.kill()
            runs.append(Run(time.monotonic(), time.time()))
            device.start()
            wait_for("answers again after the restart",
                     lambda: load.answered[-1] > runs[-1].started or None, check=plane.f.alive)
        time.sleep(2)
        load.stop()
        last = runs[-1]
        answered_last = load.between(last.started, float("inf"))

        def per_run() -> list[int]:
            """What the server stored, per run: a window belongs to the run whose agent
            started before it (each run's recorder opens its first window after its start)."""
            counts = [0] * len(runs)
            starts = [r.started_wall for r in runs]
            for start, count in plane.stored(device.device_id):
                run = max(i for i, s in enumerate(starts) if s <= start.timestamp())
                counts[run] += count
            return counts

        # The last run is not killed: its windows arrive in full, as they close.
        wait_for("the last run's windows", lambda: per_run()[-1] == answered_last or None,
                 timeout=60, check=plane.f.alive)
        stored = per_run()
        killed = runs[:-1]
        answered = [load.between(r.started, r.ended) for r in killed]
        # What a kill may cost: the answers since the last checkpoint before it.
        allowed = [load.between(r.ended - CHECKPOINT_SECONDS - SCHEDULING_SLACK, r.ended)
                   for r in killed]
        lost = [a - s for a, s in zip(answered, stored, strict=False)]
        rate = sum(answered) / sum(r.ended - r.started for r in killed)
        summary = (f"lost per kill {lost} (mean {sum(lost) / kills:.1f}, at {rate:.0f} answers "
                   f"a second; checkpoint every {CHECKPOINT_SECONDS} s); " + "; ".join(
                       f"run {i}: answered {a}, stored {s}, allowed to lose {w}"
                       for i, (a, s, w) in enumerate(zip(answered, stored, allowed, strict=False))))
        print(f"\n{summary}")
        for i in range(kills):
            # Every run outlived a checkpoint interval: something of it must have been kept.
            assert stored[i] > 0, f"a killed run left nothing: {summary}"
            assert stored[i] >= answered[i] - allowed[i], f"more lost than a checkpoint: {summary}"
            # The one request in flight at the kill may have been counted, its answer cut off.
            assert stored[i] <= answered[i] + 1, f"counted twice: {summary}"
        assert answered_last > 0 and stored[-1] == answered_last, summary


def test_a_server_down_for_several_syncs_gets_every_prediction_once_when_back(
        postgres_server_url: str, redis_db_url: str, tmp_path: Path) -> None:
    """Input tried: the server stopped (SIGTERM) for about 12 sync intervals (6 metric windows)
    while the device answers, then started again on the same database."""
    with control_plane(postgres_server_url, redis_db_url, tmp_path) as plane:
        device = Device(plane, tmp_path / "agent", "outage", window_seconds=WINDOW_SECONDS)
        device.start()
        load = device.deploy()
        time.sleep(2)
        assert plane.f.stop("server") == 0
        plane.f.procs.pop("server")   # stopped on purpose: not a process that died
        during = len(load.answered)
        time.sleep(12 * POLL_SECONDS)
        assert len(load.answered) > during + 50, "the device stopped answering"
        buffered = json.loads((device.data_dir / "metrics-buffer.json").read_text())["windows"]
        assert len(buffered) >= 3, buffered           # waiting on disk, not dropped
        plane.start_server()
        time.sleep(2)
        load.stop()
        answered = len(load.answered)

        def stored() -> int:
            return sum(count for _, count in plane.stored(device.device_id))

        try:
            wait_for(f"the server to hold all {answered} predictions",
                     lambda: stored() == answered or None, timeout=60, check=plane.f.alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: it holds {stored()}; the device still has "
                                 f"{(device.data_dir / 'metrics-buffer.json').read_text()}"
                                 ) from None
        time.sleep(3 * WINDOW_SECONDS)   # re-sends after the outage, if any, have landed too
        assert stored() == answered, f"stored {stored()} of {answered} answered"
        assert plane.f.stop("agent-0") == 0
        assert len(plane.stored(device.device_id)) >= 10
