"""Crash safety: ``edgefleet-agent run`` killed with SIGKILL at each phase of an update (armed
failpoints, ``agent.failpoints``) restarts serving a verified model and finishes the update; a
file that rots on disk is quarantined, the kept previous version serves meanwhile, and the file
is fetched again."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent import InferenceClient
from agent.daemon import Agent
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    entry,
    mlp_artifact,
    mlp_reference,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
X = np.random.default_rng(0).uniform(-1, 1, MLP_SHAPE).astype(np.float32)


def serving(agent: Agent) -> str | None:
    live = agent.models.snapshot().get("face")
    return live.ref.sha256 if live else None


@pytest.fixture
def updated_once(control_plane, signing_key, data_dir, trust_key_file, fast_settings):
    """A data dir serving v1 (installed by an agent that then stopped), and v2 published."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = Agent(data_dir, server=control_plane.address, enroll_token="enroll-secret",
                  trust_key_path=trust_key_file, settings=fast_settings)
    agent.start()
    try:
        wait_until(lambda: serving(agent) == v1.sha256, what="v1 live")
    finally:
        agent.stop()
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
    return v1, v2


def run_agent(data_dir: Path, trust_key_file: Path, failpoint: str = "") -> subprocess.Popen:
    env = {**os.environ, "EDGEFLEET_AGENT_FAILPOINTS": failpoint}
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir), "--trust-key",
         str(trust_key_file), "--poll-interval", "0.2", "--set", "probation_seconds=0"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def answered_by(data_dir: Path) -> str:
    """The sha256 of the model that answers a prediction now, checked against the file it was
    loaded from and against numpy."""
    with InferenceClient(data_dir) as client:
        result = client.predict_result({MLP_INPUT: X})
    sha = result.ref.sha256
    on_disk = data_dir / "artifacts" / f"{sha}.tflite"
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == sha   # a verified model
    seed = {mlp_artifact(seed=s).sha256: s for s in (0, 1)}[sha]
    np.testing.assert_allclose(result.outputs[MLP_OUTPUT], mlp_reference(X, seed=seed),
                               rtol=1e-5, atol=1e-6)
    return sha


@pytest.mark.parametrize("phase", ["chunk", "download", "verify", "load", "validate", "prove",
                                   "flip", "persist"])
def test_sigkill_at_each_phase_of_an_update_restarts_serving_a_verified_model(
        phase, updated_once, control_plane, data_dir, trust_key_file):
    """Input tried: SIGKILL (no handler runs) at the named point of the v1 -> v2 update."""
    _v1, v2 = updated_once
    cp = control_plane.servicer
    cp.chunk_size = 256            # several chunks: "download" dies with a part file written
    killed = run_agent(data_dir, trust_key_file, failpoint=phase)
    try:
        assert killed.wait(timeout=60) == -signal.SIGKILL, killed.communicate()[1]
    finally:
        if killed.poll() is None:
            killed.kill()
    killed_stderr = killed.communicate()[1]
    assert f"failpoint {phase}" in killed_stderr
    if phase == "chunk":
        part = data_dir / "downloads" / f"{v2.sha256}.part"
        assert 0 < part.stat().st_size < v2.size

    downloads = len(cp.download_requests)
    again = run_agent(data_dir, trust_key_file)
    try:
        # Whatever answers is a verified model; the update finishes.
        wait_until(lambda: _try(answered_by, data_dir) == v2.sha256, timeout=60,
                   what="the update to finish after the restart")
        if phase == "persist":
            # Killed before the server heard "active": it hears it from the restarted agent.
            wait_until(lambda: any(e.ref.sha256 == v2.sha256 and "reloaded at start" in e.message
                                   for e in cp.events_for("active")),
                       what="v2 told active again")
    finally:
        again.send_signal(signal.SIGTERM)
        log = again.communicate(timeout=30)[1]
    # Before syncing, it served what the data dir says was live: v2 only once "persist" was
    # reached (the state names it); before that, v1.
    reloaded = "2.0.0" if phase == "persist" else "1.0.0"
    assert f"serving face:{reloaded} (float32" in log and "reloaded at start" in log
    resumed = [offset for sha, offset in cp.download_requests[downloads:] if sha == v2.sha256]
    if phase == "chunk":
        assert resumed and resumed[0] > 0        # resumed from the part file, not from 0
    else:
        assert resumed == []                     # the verified file on disk was used


def _try(read, *args):
    try:
        return read(*args)
    except Exception:   # not serving yet: the caller waits, bounded
        return None


def test_a_file_that_rots_on_disk_is_quarantined_the_kept_version_serves_and_it_is_refetched(
        control_plane, signing_key, data_dir, trust_key_file, fast_settings):
    """Input tried: v1 then v2 installed; v2's file gets one byte changed while the agent is
    down."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    first = Agent(data_dir, server=control_plane.address, enroll_token="enroll-secret",
                  trust_key_path=trust_key_file, settings=fast_settings)
    first.start()
    try:
        wait_until(lambda: serving(first) == v1.sha256, what="v1 live")
        cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
        wait_until(lambda: serving(first) == v2.sha256, what="v2 live")
    finally:
        first.stop()
    path = data_dir / "artifacts" / f"{v2.sha256}.tflite"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    control_plane.stop()

    second = Agent(data_dir, trust_key_path=trust_key_file, settings=fast_settings)
    second.start()
    try:
        assert serving(second) == v1.sha256           # the kept version, at once
        [quarantined] = (data_dir / "quarantine").iterdir()
        assert quarantined.name.startswith(v2.sha256)
        assert not path.exists()
        assert "in place of 2.0.0" in second.status().models[0].message
        downloads = len(cp.download_requests)
        control_plane.restart()
        wait_until(lambda: serving(second) == v2.sha256, what="v2 fetched again and live")
        assert next(offset for sha, offset in cp.download_requests[downloads:]
                if sha == v2.sha256) == 0
        assert hashlib.sha256(path.read_bytes()).hexdigest() == v2.sha256
    finally:
        second.stop()
