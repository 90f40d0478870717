"""The agent daemon against a real DeviceService peer: enrollment, install, hot swap under load,
refusals that keep the old model serving, restart without the server, metric reports."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import InferenceClient, NoModelLoadedError, trust_key
from agent.daemon import Agent
from agent.errors import (
    AgentDataError,
    AgentTransportError,
    ConfigurationError,
    EnrollmentRefusedError,
)
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    desired_state_doc,
    entry,
    mlp_artifact,
    mlp_reference,
    sign,
    wait_until,
)

X = np.random.default_rng(0).uniform(-1, 1, MLP_SHAPE).astype(np.float32)


def active_sha(agent: Agent, model: str = "face") -> str | None:
    live = agent.models.snapshot().get(model)
    return live.ref.sha256 if live else None


def test_the_hardware_profile_is_reported_again_when_it_changes(start_agent, control_plane,
                                                                 tmp_path, monkeypatch):
    """Input tried: an Edge TPU library appearing where the loader looks while the agent
    runs (as when the runtime is installed on a running device)."""
    cp = control_plane.servicer
    libs = tmp_path / "libs"
    libs.mkdir()
    monkeypatch.setenv("LD_LIBRARY_PATH", str(libs))
    start_agent()
    wait_until(lambda: len(cp.syncs) >= 3, what="three syncs")
    assert "edgetpu" not in cp.syncs[0].hardware.delegates
    assert not any(s.HasField("hardware") for s in cp.syncs[1:3])
    (libs / "libedgetpu.so.1").write_bytes(b"\x7fELF")
    seen = len(cp.syncs)
    report = wait_until(lambda: next((s for s in cp.syncs[seen:] if s.HasField("hardware")),
                                     None), what="the changed profile")
    assert list(report.hardware.delegates) == ["xnnpack", "edgetpu"]


def test_first_run_enrolls_installs_serves_and_reports(start_agent, control_plane, signing_key,
                                                       data_dir):
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    agent = start_agent()
    wait_until(lambda: cp.events_for("active"), what="the model to become active")

    credential = data_dir / "credential.json"
    assert stat.S_IMODE(os.stat(credential).st_mode) == 0o600
    assert cp.enrollments[0].labels == {"site": "lab"} and cp.enrollments[0].name == "bench-1"
    assert [e.state for e in cp.events if e.ref.sha256 == v1.sha256] == [
        "downloading", "verified", "active"]
    with InferenceClient(agent.endpoint) as client:
        result = client.predict_result({MLP_INPUT: X})
        np.testing.assert_allclose(result.outputs[MLP_OUTPUT], mlp_reference(X), rtol=1e-5,
                                   atol=1e-6)
        assert result.ref.sha256 == v1.sha256
        status = client.status()
    assert status["device_id"] == cp.device_id and status["desired_sequence"] == 1
    assert [(m["model"], m["sha256"], m["state"]) for m in status["models"]] == [
        ("face", v1.sha256, "active")]
    assert status["models"][0]["inferences"] == 1

    # Hardware goes with the first sync, later only when it changed; syncs carry what is active.
    assert cp.syncs[0].hardware.cpu_cores >= 1 and cp.syncs[0].hardware.interpreter.name
    wait_until(lambda: len(cp.syncs) >= 3)
    assert not cp.syncs[2].HasField("hardware")
    assert [r.sha256 for r in cp.syncs[-1].active] == [v1.sha256]
    windows = wait_until(lambda: list(cp.windows.values()), what="a metric window")
    assert windows[0].ref.sha256 == v1.sha256 and windows[0].count == 1


def test_hot_swap_under_concurrent_load_drops_no_request(start_agent, control_plane, signing_key,
                                                         data_dir):
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    expected = {v1.sha256: mlp_reference(X, seed=0), v2.sha256: mlp_reference(X, seed=1)}
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent()
    wait_until(lambda: active_sha(agent) == v1.sha256)

    stop = threading.Event()
    answered: list[str] = []
    failures: list[str] = []
    client = InferenceClient(agent.endpoint)

    def load() -> None:
        while not stop.is_set():
            try:
                result = client.predict_result({MLP_INPUT: X})
            except Exception as exc:   # collected, asserted below
                failures.append(repr(exc))
                continue
            answered.append(result.ref.sha256)
            if not np.allclose(result.outputs[MLP_OUTPUT], expected[result.ref.sha256],
                               rtol=1e-5, atol=1e-6):
                failures.append(f"wrong output from {result.ref.sha256[:12]}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: v1.sha256 in answered)
        cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
        wait_until(lambda: answered.count(v2.sha256) >= 20, what="requests answered by v2")
    finally:
        stop.set()
        for t in threads:
            t.join()
        client.close()
    assert failures == []
    assert answered.index(v2.sha256) > 0 and answered.count(v1.sha256) > 0
    status = agent.status()
    assert status.models[0].version == "2.0.0"
    assert status.models[0].previous_sha256 == v1.sha256
    assert (data_dir / "artifacts" / f"{v1.sha256}.tflite").exists()   # kept for rollback


@pytest.mark.parametrize("refusal", ["bad signature", "older sequence", "wrong device"])
def test_refused_desired_state_is_reported_once_and_the_old_model_keeps_serving(
        start_agent, control_plane, signing_key, refusal):
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face")], (v1,), sequence=5)
    agent = start_agent()
    wait_until(lambda: active_sha(agent) == v1.sha256)

    entries = [entry(signing_key, v2, model="face", version="2.0.0")]
    cp.artifacts[v2.sha256] = v2.data
    doc = desired_state_doc(cp.device_id, 6, entries)
    if refusal == "bad signature":
        bad = sign(Ed25519PrivateKey.generate(), doc)
    elif refusal == "older sequence":
        bad = sign(signing_key, {**doc, "sequence": 4})
    else:
        bad = sign(signing_key, {**doc, "device_id": "another-device"})
    cp.desired, cp.sequence = bad, 6

    failed = wait_until(lambda: cp.events_for("failed"), what="the refusal report")
    assert "desired state refused" in failed[0].message
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3)
    assert len(cp.events_for("failed")) == 1
    assert active_sha(agent) == v1.sha256
    assert agent.status().desired_sequence == 5
    assert "refused" in agent.status().last_error
    assert agent.predict(None, {MLP_INPUT: X}).ref.sha256 == v1.sha256
    assert not any(sha == v2.sha256 for sha, _ in cp.download_requests)


def test_altered_artifact_is_reported_failed_and_not_retried_while_old_serves(
        start_agent, control_plane, signing_key):
    """Input tried: v2's last four bytes replaced by b"evil" in transit (its signed manifest is
    intact): the agent reports v2 failed once, at the download step, does not fetch it again,
    and v1 keeps serving."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    agent = start_agent()
    wait_until(lambda: active_sha(agent) == v1.sha256)

    cp.altered[v2.sha256] = v2.data[:-4] + b"evil"
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
    failed = wait_until(lambda: [e for e in cp.events_for("failed")
                                 if e.ref.sha256 == v2.sha256])
    assert failed[0].message.startswith("download: ") and "sha256" in failed[0].message
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3)
    assert [sha for sha, _ in cp.download_requests].count(v2.sha256) == 1
    assert active_sha(agent) == v1.sha256
    (model,) = agent.status().models
    assert model.state == "active" and model.sha256 == v1.sha256
    assert "2.0.0" in model.message and "failed" in model.message


def test_model_dropped_from_the_desired_state_is_unloaded(start_agent, control_plane,
                                                          signing_key):
    cp = control_plane.servicer
    face, voice = mlp_artifact(seed=0), mlp_artifact(seed=2)
    cp.publish([entry(signing_key, face, model="face"), entry(signing_key, voice, model="voice")],
               (face, voice))
    agent = start_agent()
    wait_until(lambda: set(agent.models.snapshot()) == {"face", "voice"})
    cp.publish([entry(signing_key, face, model="face")])
    wait_until(lambda: set(agent.models.snapshot()) == {"face"})
    assert {m.model: m.previous_sha256 for m in agent.status().models} == {"face": ""}
    removed = wait_until(lambda: cp.events_for("removed"))
    assert [(e.ref.model, e.ref.sha256) for e in removed] == [("voice", voice.sha256)]
    wait_until(lambda: [r.model for r in cp.syncs[-1].active] == ["face"])


def test_status_read_while_models_come_and_go_is_never_torn(start_agent, control_plane,
                                                           signing_key):
    """Input tried: three rounds of desired states {face, voice} then {face}, while a thread
    calls status() as fast as it can. A model status shows active was live just before or just
    after that call; a model live both before and after is shown."""
    cp = control_plane.servicer
    face, voice = mlp_artifact(seed=0), mlp_artifact(seed=2)
    agent = start_agent()
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def read() -> None:
        while not stop.is_set():
            before = set(agent.models.snapshot())
            status = agent.status()
            after = set(agent.models.snapshot())
            shown = {m.model for m in status.models}
            active = {m.model for m in status.models if m.state == "active"}
            problems.extend(f"{n} shown active, not live" for n in active - (before | after))
            problems.extend(f"{n} live, not shown" for n in (before & after) - shown)
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            cp.publish([entry(signing_key, face, model="face"),
                        entry(signing_key, voice, model="voice")], (face, voice))
            wait_until(lambda: set(agent.models.snapshot()) == {"face", "voice"})
            cp.publish([entry(signing_key, face, model="face")])
            wait_until(lambda: set(agent.models.snapshot()) == {"face"})
    finally:
        stop.set()
        reader.join()
    assert problems == [] and reads[0] > 100
    wait_until(lambda: len(cp.events_for("removed")) == 3, what="the three removals reported")


def test_restart_serves_the_stored_model_without_the_server(start_agent, control_plane,
                                                            signing_key, data_dir, fast_settings,
                                                            trust_key_file):
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=3)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    first = start_agent()
    wait_until(lambda: active_sha(first) == v1.sha256)
    first.stop()
    control_plane.stop()

    # No server answering, no enrollment token: the trust key from its file, the rest from the
    # data dir.
    second = Agent(data_dir, trust_key_path=trust_key_file, settings=fast_settings)
    second.start()
    try:
        with InferenceClient(data_dir) as client:
            out = client.predict({MLP_INPUT: X})
            status = client.status()
        np.testing.assert_allclose(out[MLP_OUTPUT], mlp_reference(X, seed=3), rtol=1e-5,
                                   atol=1e-6)
        assert [(m["sha256"], m["state"]) for m in status["models"]] == [(v1.sha256, "active")]
        assert status["desired_sequence"] == 1 and status["device_id"] == cp.device_id
    finally:
        second.stop()


def test_agent_keeps_serving_through_a_server_outage_and_catches_up_after(
        start_agent, control_plane, signing_key):
    """Input: the server goes away (connection refused) for several sync rounds, and a new
    version is published meanwhile: the agent backs off, says why in its status, keeps serving
    the old model, and installs the new one once the server answers again."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=1), mlp_artifact(seed=2)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    agent = start_agent()
    wait_until(lambda: active_sha(agent) == v1.sha256)
    control_plane.stop()

    wait_until(lambda: agent.status().last_error, what="the outage in the agent's status")
    syncs_before = len(cp.syncs)
    out = agent.predict(None, {MLP_INPUT: X})
    np.testing.assert_allclose(out.outputs[MLP_OUTPUT], mlp_reference(X, seed=1), rtol=1e-5,
                               atol=1e-6)

    cp.publish([entry(signing_key, v2, model="face")], (v2,))
    control_plane.restart()
    wait_until(lambda: active_sha(agent) == v2.sha256, what="v2 after the outage")
    assert len(cp.syncs) > syncs_before
    wait_until(lambda: not agent.status().last_error, what="the error cleared")
    out = agent.predict(None, {MLP_INPUT: X})
    np.testing.assert_allclose(out.outputs[MLP_OUTPUT], mlp_reference(X, seed=2), rtol=1e-5,
                               atol=1e-6)


def test_restart_refuses_an_artifact_altered_on_disk(start_agent, control_plane, signing_key,
                                                     data_dir, fast_settings, trust_key_file,
                                                     caplog):
    """Input tried: the active artifact's last byte changed on disk while the agent was down."""
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    first = start_agent()
    wait_until(lambda: active_sha(first) == v1.sha256)
    first.stop()
    control_plane.stop()
    path = data_dir / "artifacts" / f"{v1.sha256}.tflite"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")

    second = Agent(data_dir, trust_key_path=trust_key_file, settings=fast_settings)
    with caplog.at_level(logging.ERROR, logger="agent.restore"):
        second.start()
    try:
        (model,) = second.status().models
        assert model.state == "failed" and "sha256" in model.message
        assert "not serving face" in caplog.text and "could not be reloaded" in caplog.text
        with pytest.raises(NoModelLoadedError):
            second.predict(None, {MLP_INPUT: X})
    finally:
        second.stop()


def test_metric_windows_that_failed_to_send_are_resent_with_the_same_ids(
        start_agent, control_plane, signing_key):
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    cp.fail_metric_reports = 1
    agent = start_agent()
    wait_until(lambda: active_sha(agent) == v1.sha256)
    agent.predict(None, {MLP_INPUT: X})
    failed_ids = wait_until(lambda: list(cp.failed_window_ids), what="a failed metrics report")
    wait_until(lambda: set(failed_ids) <= set(cp.windows), what="the same windows re-sent")
    assert sum(w.count for w in cp.windows.values()) == 1


def test_metric_windows_the_server_refuses_are_logged_and_not_sent_again(
        start_agent, control_plane, signing_key, caplog):
    """Input tried: a server answering every metrics report with each window rejected as
    malformed: the agent logs the reason once per window and does not send it again."""
    import logging

    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    cp.reject_metric_windows = True
    with caplog.at_level(logging.WARNING, logger="agent.reporter"):
        agent = start_agent()
        wait_until(lambda: active_sha(agent) == v1.sha256)
        agent.predict(None, {MLP_INPUT: X})
        refused = wait_until(lambda: [r for r in caplog.records
                                      if "refused metric window" in r.getMessage()] or None,
                             what="the refusal logged")
        reports = cp.metric_reports
        syncs = len(cp.syncs)
        wait_until(lambda: len(cp.syncs) >= syncs + 3, what="three more syncs")
    assert "bucket counts sum" in refused[0].getMessage()
    assert cp.metric_reports == reports    # nothing was sent again
    assert agent.metrics_buffer.windows(limit=10) == []


def test_an_enroll_whose_answer_was_lost_is_repeated_with_the_same_enrollment_key(
        start_agent, control_plane, data_dir):
    """Input tried: the first two Enroll answers lost (UNAVAILABLE after the server saw them).
    Every attempt carries the one key kept in the data dir, so the server can hand the same
    device back instead of spending another use or refusing a used-up token."""
    cp = control_plane.servicer
    cp.lose_enroll_answers = 2
    agent = start_agent()
    wait_until(lambda: (data_dir / "credential.json").exists(), what="enrollment")
    assert len(cp.enrollments) == 3
    keys = {e.enrollment_key for e in cp.enrollments}
    (key,) = keys
    assert len(key) >= 16
    key_file = data_dir / "enrollment-key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The credential is on disk before the agent uses it (a crash then keeps it): status may
    # show the device a moment after the file appears.
    wait_until(lambda: agent.status().device_id == cp.device_id, what="status to show the device")


def test_a_run_with_no_trust_key_configured_is_a_configuration_error(start_agent,
                                                                     monkeypatch, tmp_path):
    """Input tried: no trust key given, and $EDGEFLEET_AGENT_TRUST_KEY naming a missing file."""
    monkeypatch.setenv(trust_key.ENV, str(tmp_path / "absent.pub"))
    with pytest.raises(ConfigurationError, match="--trust-key") as caught:
        start_agent(trust_key_path=None)
    assert "absent.pub" in str(caught.value) and trust_key.ENV in str(caught.value)


def test_first_run_without_enrollment_token_is_a_configuration_error(start_agent):
    with pytest.raises(ConfigurationError, match="--enroll-token"):
        start_agent(enroll_token=None)


def test_refused_enrollment_token_stops_the_agent_with_a_data_error(start_agent, data_dir):
    """Input tried: an enrollment token the server answers UNAUTHENTICATED. A refusal is the
    token's fault (a data error), not the network's: the agent asks once and stops."""
    agent = start_agent(enroll_token="not-the-token")
    assert agent.wait(timeout=20)
    assert isinstance(agent.fatal_error, EnrollmentRefusedError)
    assert isinstance(agent.fatal_error, AgentDataError)
    assert not isinstance(agent.fatal_error, AgentTransportError)
    assert agent.fatal_error.code == "UNAUTHENTICATED"
    assert "enroll-token create" in str(agent.fatal_error)
    assert not (data_dir / "credential.json").exists()


def test_metric_windows_not_yet_reported_survive_a_restart(
        start_agent, control_plane, signing_key, data_dir, fast_settings, trust_key_file):
    """Input tried: the server refusing every metrics report (UNAVAILABLE) while the agent
    serves three predictions, then the agent restarted with the server answering again: the
    windows kept in the data dir are sent once, with their original ids."""
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face")], (v1,))
    cp.fail_metric_reports = 10**6
    first = start_agent()
    wait_until(lambda: active_sha(first) == v1.sha256)
    for _ in range(3):
        first.predict(None, {MLP_INPUT: X})
    first.stop()
    kept = json.loads((data_dir / "metrics-buffer.json").read_text())["windows"]
    assert sum(w["count"] for w in kept) == 3
    assert not (data_dir / "metrics-open.json").exists()   # a stop closed the open window
    assert cp.windows == {}

    cp.fail_metric_reports = 0
    second = Agent(data_dir, trust_key_path=trust_key_file, settings=fast_settings)
    second.start()
    try:
        wait_until(lambda: set(cp.windows) >= {w["window_id"] for w in kept},
                   what="the kept windows reported")
        assert sum(w.count for w in cp.windows.values()) == 3
        wait_until(lambda: json.loads((data_dir / "metrics-buffer.json").read_text())["windows"]
                   == [], what="the file cleared once acknowledged")
    finally:
        second.stop()
