"""``edgefleet-agent`` as a user runs it: real subprocesses, real sockets, JSON on stdout."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent import trust_key
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
CLI = [sys.executable, "-m", "agent.cli"]


def cli(*args: str, timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``edgefleet-agent ARGS`` in a subprocess; ``env`` adds to this process's environment."""
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def running_agent(control_plane, signing_key, trust_key_file, data_dir):
    """``edgefleet-agent run`` in a subprocess, enrolled and serving one model."""
    cp = control_plane.servicer
    model = mlp_artifact(seed=6)
    cp.publish([entry(signing_key, model, model="face")], (model,))
    process = subprocess.Popen(
        [*CLI, "run", "--server", control_plane.address, "--data-dir", str(data_dir),
         "--enroll-token", "enroll-secret", "--trust-key", str(trust_key_file),
         "--labels", "site=lab,tier=canary", "--poll-interval", "0.2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: cp.events_for("active") or process.poll() is not None,
                   timeout=60, what="the agent to activate the model")
        assert process.poll() is None, process.communicate()[1]
        yield process, model
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_run_status_predict_and_graceful_stop(running_agent, control_plane, data_dir, tmp_path):
    process, model = running_agent
    assert control_plane.servicer.enrollments[0].labels == {"site": "lab", "tier": "canary"}

    status = cli("status", "--data-dir", str(data_dir), "-o", "json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["device_id"] == control_plane.servicer.device_id
    assert [{k: m[k] for k in ("model", "version", "variant", "sha256", "state")}
            for m in doc["models"]] == [{"model": "face", "version": "1.0.0",
                                         "variant": "float32", "sha256": model.sha256,
                                         "state": "active"}]

    x = np.random.default_rng(3).uniform(-1, 1, MLP_SHAPE).astype(np.float32)
    np.savez(tmp_path / "in.npz", **{MLP_INPUT: x})
    out = tmp_path / "out.npz"
    predicted = cli("predict", "--endpoint", f"unix://{data_dir}/agent.sock", "--input",
                    str(tmp_path / "in.npz"), "--output", str(out), "-o", "json")
    assert predicted.returncode == 0, predicted.stderr
    summary = json.loads(predicted.stdout)
    assert summary["sha256"] == model.sha256
    assert summary["outputs"] == {MLP_OUTPUT: {"shape": [1, 4], "dtype": "float32"}}
    with np.load(out) as arrays:
        np.testing.assert_allclose(arrays[MLP_OUTPUT], mlp_reference(x, seed=6), rtol=1e-5,
                                   atol=1e-6)

    table = cli("status", "--data-dir", str(data_dir))
    assert table.returncode == 0 and "face" in table.stdout and "active" in table.stdout

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopping" in stderr
    assert not (data_dir / "agent.sock").exists()


def test_a_sigterm_that_lands_on_another_thread_still_stops_the_agent(running_agent):
    """Input tried: SIGTERM sent with tgkill to each thread of the process but the main one (a
    process-directed signal may land on any of them; the main thread sleeps without a timer).
    Linux only, as the agent."""
    process, _model = running_agent
    tasks = sorted(int(t) for t in os.listdir(f"/proc/{process.pid}/task"))
    others = [t for t in tasks if t != process.pid]
    assert others
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 234, "aarch64": 131}[os.uname().machine]   # tgkill's syscall number
    assert libc.syscall(number, process.pid, others[-1], signal.SIGTERM) == 0
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopping" in stderr


def test_predict_with_a_wrong_input_name_exits_4_and_says_what_the_model_takes(
        running_agent, data_dir, tmp_path):
    np.savez(tmp_path / "in.npz", image=np.zeros(MLP_SHAPE, np.float32))
    result = cli("predict", "--data-dir", str(data_dir), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz"), "-o", "json")
    assert result.returncode == 4
    assert result.stdout == ""
    assert "unknown input" in result.stderr and MLP_INPUT in result.stderr
    assert not (tmp_path / "out.npz").exists()


def test_predict_with_an_input_file_that_is_not_npz_exits_4(running_agent, data_dir, tmp_path):
    (tmp_path / "in.npz").write_text("not an archive")
    result = cli("predict", "--data-dir", str(data_dir), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz"))
    assert result.returncode == 4 and ".npz" in result.stderr


def test_status_of_an_agent_that_is_not_running_exits_3(tmp_path):
    result = cli("status", "--data-dir", str(tmp_path), "-o", "json")
    assert result.returncode == 3
    assert result.stdout == "" and "edgefleet-agent run" in result.stderr


def test_a_run_with_no_trust_key_exits_2_naming_the_flag(control_plane, data_dir, tmp_path):
    """Input tried: no --trust-key, and $EDGEFLEET_AGENT_TRUST_KEY naming a missing file."""
    result = cli("run", "--server", control_plane.address, "--data-dir", str(data_dir),
                 "--enroll-token", "enroll-secret",
                 env={trust_key.ENV: str(tmp_path / "absent.pub")})
    assert result.returncode == 2 and "--trust-key" in result.stderr
    assert "absent.pub" in result.stderr


def test_a_run_with_the_trust_key_in_the_data_dir_exits_2(control_plane, trust_pem, data_dir):
    """Input tried: --trust-key DATA_DIR/trust-key.pub, where earlier versions kept the key."""
    data_dir.mkdir()
    inside = data_dir / "trust-key.pub"
    inside.write_bytes(trust_pem)
    result = cli("run", "--server", control_plane.address, "--data-dir", str(data_dir),
                 "--enroll-token", "enroll-secret", "--trust-key", str(inside))
    assert result.returncode == 2
    assert "inside the data dir" in result.stderr and "install -D -m 0644" in result.stderr


def test_a_run_reads_the_trust_key_from_the_environment(control_plane, trust_key_file,
                                                        data_dir):
    """Input tried: no --trust-key, $EDGEFLEET_AGENT_TRUST_KEY naming the real key, and a token
    the server refuses: the run gets past the trust key and ends "refused" (4), not 2."""
    result = cli("run", "--server", control_plane.address, "--data-dir", str(data_dir),
                 "--enroll-token", "not-the-token", env={trust_key.ENV: str(trust_key_file)})
    assert result.returncode == 4, result.stderr
    assert "refused the enrollment" in result.stderr


def test_help_says_where_the_trust_key_is_read_from():
    """Input tried: ``edgefleet-agent --help`` and ``edgefleet-agent run --help``."""
    for args in (["--help"], ["run", "--help"]):
        result = cli(*args)
        assert result.returncode == 0
        assert trust_key.ENV in result.stdout and str(trust_key.DEFAULT_PATH) in result.stdout
        assert "data dir" in result.stdout


def test_a_refused_enrollment_token_exits_4_refused(control_plane, trust_key_file, data_dir):
    """Input tried: ``run`` with an enrollment token the server does not know (UNAUTHENTICATED):
    a refusal, exit 4, not "unreachable" (3), and the process ends by itself."""
    result = cli("run", "--server", control_plane.address, "--data-dir", str(data_dir),
                 "--enroll-token", "not-the-token", "--trust-key", str(trust_key_file))
    assert result.returncode == 4, result.stderr
    assert "refused the enrollment" in result.stderr
    assert not (data_dir / "credential.json").exists()


def test_malformed_labels_are_a_usage_error():
    result = cli("run", "--data-dir", "/tmp/x", "--labels", "site")
    assert result.returncode == 2 and "k=v" in result.stderr


def test_set_changes_a_setting_and_a_wrong_one_exits_2_naming_it(tmp_path, trust_key_file):
    """Inputs tried: a name that is no setting, a number that is not one, a value a setting's
    own check refuses (a negative probation)."""
    base = ["run", "--server", "127.0.0.1:9", "--data-dir", str(tmp_path / "d"),
            "--trust-key", str(trust_key_file), "--enroll-token", "t"]
    unknown = cli(*base, "--set", "probation_secs=5")
    assert unknown.returncode == 2 and "probation_secs" in unknown.stderr
    assert "probation_seconds" in unknown.stderr          # the names it would take
    not_a_number = cli(*base, "--set", "probation_seconds=soon")
    assert not_a_number.returncode == 2 and "probation_seconds=soon" in not_a_number.stderr
    negative = cli(*base, "--set", "probation_seconds=-1")
    assert negative.returncode == 2 and "probation_seconds" in negative.stderr
