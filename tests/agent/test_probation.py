"""Probation and rollback: the judge on its own (a real recorder, a fake clock), then the agent
against a real DeviceService peer rolling back by itself, rolling back at the server's word
without a download, refusing a variant slower than its budget, and refusing to fill the disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from agent import InferenceClient
from agent.budget import LatencyBudget, latency_budget
from agent.daemon import Agent
from agent.metrics import MetricsRecorder
from agent.probation import Probation
from agent.refs import ModelRef
from agent.settings import AgentSettings
from tests.agent.support import MLP_INPUT, MLP_OUTPUT, MLP_SHAPE, entry, mlp_artifact, wait_until

X = np.random.default_rng(0).uniform(-1, 1, MLP_SHAPE).astype(np.float32)
#: Inputs of the magnitude that overflows ``mlp_artifact(hidden_scale=1e30)`` (NaN outputs)
#: and that the ordinary MLP answers with finite scores.
FIELD_DATA = np.full(MLP_SHAPE, 1e9, np.float32)
REF = ModelRef("face", "2.0.0", "float32", "b" * 64)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def judge(**limits: Any) -> tuple[Probation, MetricsRecorder, Clock]:
    settings = AgentSettings(probation_seconds=10.0, probation_min_inferences=10, **limits)
    metrics, clock = MetricsRecorder(settings), Clock()
    return Probation(settings, metrics, clock), metrics, clock


# -- the judge --------------------------------------------------------------------------------


def test_one_nan_output_breaks_probation_before_the_minimum_count():
    """Input tried: 3 good inferences then one whose outputs held NaN (min count is 10)."""
    probation, metrics, _ = judge()
    probation.begin(REF, LatencyBudget(50.0, "test"))
    for _ in range(3):
        metrics.record(REF, 1.0)
    assert probation.check() == []
    metrics.record(REF, 1.0, finite=False)
    [breach] = probation.check()
    assert breach.finding.reason == "probation_nonfinite"
    assert breach.finding.observed == pytest.approx(0.25)
    assert "NaN or Inf" in breach.message
    assert probation.check() == [] and not probation.watching   # reported once


def test_an_error_rate_is_judged_only_after_the_minimum_count():
    """Input tried: 1 failure in the first 5 (not judged yet), then 9 of 10 ok: 10% > 5%."""
    probation, metrics, _ = judge(probation_max_error_rate=0.05)
    probation.begin(REF, LatencyBudget(50.0, "test"))
    metrics.record(REF, 1.0, ok=False)
    for _ in range(4):
        metrics.record(REF, 1.0)
    assert probation.check() == []
    for _ in range(5):
        metrics.record(REF, 1.0)
    [breach] = probation.check()
    assert breach.finding.reason == "probation_errors"
    assert (breach.finding.observed, breach.finding.limit) == (pytest.approx(0.1), 0.05)


def test_a_p95_above_the_budget_breaks_probation():
    """Input tried: 20 inferences of 40 ms against a 10 ms budget."""
    probation, metrics, _ = judge()
    probation.begin(REF, LatencyBudget(10.0, "4x the p95 2.5 ms measured in tflite-runtime"))
    for _ in range(20):
        metrics.record(REF, 40.0)
    [breach] = probation.check()
    assert breach.finding.reason == "probation_latency"
    assert breach.finding.observed > 10.0 and breach.finding.limit == 10.0
    assert "measured in tflite-runtime" in breach.message


def test_a_model_that_serves_its_window_cleanly_passes_and_what_came_before_is_not_judged():
    """Input tried: NaN inferences recorded *before* activation (the baseline), then 20 clean
    ones; the window ends."""
    probation, metrics, clock = judge()
    for _ in range(5):
        metrics.record(REF, 1.0, finite=False)
    probation.begin(REF, LatencyBudget(50.0, "test"))
    for _ in range(20):
        metrics.record(REF, 1.0)
    assert probation.check() == [] and probation.watching
    clock.now = 11.0
    assert probation.check() == [] and not probation.watching


def test_the_budget_is_a_multiple_of_the_measured_p95_within_floor_and_ceiling():
    settings = AgentSettings(latency_budget_factor=4.0, latency_budget_floor_ms=10.0,
                             validation_latency_budget_ms=2000.0)

    def budget(p95: float | None) -> float:
        manifest = {} if p95 is None else {"latency_ms": {"tflite-runtime": {"p50": p95 / 2,
                                                                             "p95": p95}}}
        return latency_budget(manifest, "tflite-runtime", settings).limit_ms

    assert budget(25.0) == 100.0          # 4 x 25
    assert budget(0.2) == 10.0            # the floor
    assert budget(900.0) == 2000.0        # the ceiling
    assert budget(None) == 2000.0         # nothing measured: the absolute budget
    other = {"latency_ms": {"ai-edge-litert": {"p50": 1.0, "p95": 1.0}}}
    assert latency_budget(other, "tflite-runtime", settings).limit_ms == 2000.0


# -- the agent --------------------------------------------------------------------------------


@pytest.fixture
def start_agent(data_dir, control_plane, trust_key_file, fast_settings
                ) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def start(**settings: Any) -> Agent:
        agent = Agent(data_dir, server=control_plane.address, enroll_token="enroll-secret",
                      trust_key_path=trust_key_file,
                      settings=fast_settings.replace(probation_check_seconds=0.05, **settings))
        agents.append(agent)
        agent.start()
        return agent

    yield start
    for agent in agents:
        agent.stop()


def serving(agent: Agent) -> str | None:
    live = agent.models.snapshot().get("face")
    return live.ref.sha256 if live else None


def test_a_model_giving_nan_after_activation_is_rolled_back_to_the_kept_version_from_disk(
        start_agent, control_plane, signing_key, data_dir):
    """Input tried: v2 (an MLP whose hidden layer overflows on field data) passes its smoke test
    on [-1, 1], goes live, then answers field data with NaN."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1, hidden_scale=1e30)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent(probation_seconds=60.0)
    wait_until(lambda: serving(agent) == v1.sha256, what="v1 live")
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
    wait_until(lambda: serving(agent) == v2.sha256, what="v2 live")
    downloads = list(cp.download_requests)

    with InferenceClient(agent.endpoint) as client:
        nan = client.predict_result({MLP_INPUT: FIELD_DATA})
        assert nan.ref.sha256 == v2.sha256 and np.isnan(nan.outputs[MLP_OUTPUT]).all()
        wait_until(lambda: serving(agent) == v1.sha256, what="the rollback to v1")
        after = client.predict_result({MLP_INPUT: FIELD_DATA})
    assert after.ref.sha256 == v1.sha256 and np.isfinite(after.outputs[MLP_OUTPUT]).all()

    [event] = wait_until(lambda: cp.events_for("rolled_back"), what="the rollback reported")
    assert event.ref.sha256 == v2.sha256
    assert event.finding.reason == "probation_nonfinite" and event.finding.interpreter
    assert event.finding.observed == 1.0 and event.finding.limit == 0.0
    assert cp.download_requests == downloads            # v1 came back from disk
    status = agent.status()
    [model] = status.models
    assert (model.version, model.state) == ("1.0.0", "active")
    assert "rolled back from 2.0.0" in model.message
    # Not installed again while the same desired state holds.
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3, what="more syncs")
    assert serving(agent) == v1.sha256
    assert [e.state for e in cp.events if e.ref.sha256 == v2.sha256].count("active") == 1


def test_the_servers_rollback_reactivates_the_kept_version_without_a_download(
        start_agent, control_plane, signing_key):
    """Input tried: v1 -> v2 -> the server says v1 again."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent()
    wait_until(lambda: serving(agent) == v1.sha256, what="v1 live")
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
    wait_until(lambda: serving(agent) == v2.sha256, what="v2 live")
    downloads = list(cp.download_requests)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    wait_until(lambda: serving(agent) == v1.sha256, what="back on v1")
    assert cp.download_requests == downloads
    assert agent.status().models[0].previous_sha256 == v2.sha256   # v2 kept in its turn


def test_a_variant_slower_than_its_budget_is_refused_and_the_old_one_keeps_serving(
        start_agent, control_plane, signing_key):
    """Input tried: a manifest saying the variant measured 0.0001 ms p95 in this interpreter,
    with a budget of 4x that and no floor: no real invoke is that fast."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent(latency_budget_floor_ms=0.0)
    wait_until(lambda: serving(agent) == v1.sha256, what="v1 live")
    interpreter = agent.models.snapshot()["face"].runner.interpreter_info.name
    fast = {"latency_ms": {interpreter: {"p50": 0.0001, "p95": 0.0001}}}
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0", extra=fast)], (v2,))
    [event] = wait_until(lambda: [e for e in cp.events_for("failed")
                                  if e.ref.sha256 == v2.sha256], what="v2 refused")
    assert event.finding.reason == "latency_budget"
    assert event.finding.limit == pytest.approx(0.0004)
    assert event.finding.observed > event.finding.limit
    assert "validate" in event.message and "budget" in event.message
    assert serving(agent) == v1.sha256


def test_a_download_that_would_fill_the_disk_is_refused_once_as_insufficient_storage(
        start_agent, control_plane, signing_key, data_dir):
    """Input tried: a reserve of 2**60 bytes (more than any disk has free), so the real free
    space (statvfs) cannot hold the artifact and the reserve."""
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent(min_free_bytes=2**60)
    [event] = wait_until(lambda: cp.events_for("insufficient_storage"), what="the refusal")
    assert event.finding.reason == "insufficient_storage"
    assert event.finding.limit > event.finding.observed > 0
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3, what="more syncs")
    assert len(cp.events_for("insufficient_storage")) == 1          # told once
    assert cp.download_requests == []                               # not a byte fetched
    assert list((data_dir / "downloads").iterdir()) == []
    assert agent.status().models[0].state == "failed"
    assert "free space" in agent.status().last_error


def test_a_watch_outlives_a_restart_and_still_rolls_back(
        start_agent, control_plane, signing_key, data_dir):
    """Input tried: v2 (NaN on field data) goes live, the agent stops before serving anything,
    a new agent on the same data dir gets the field data."""
    cp = control_plane.servicer
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1, hidden_scale=1e30)
    cp.publish([entry(signing_key, v1, model="face", version="1.0.0")], (v1,))
    first = start_agent(probation_seconds=60.0)
    wait_until(lambda: serving(first) == v1.sha256, what="v1 live")
    cp.publish([entry(signing_key, v2, model="face", version="2.0.0")], (v2,))
    wait_until(lambda: serving(first) == v2.sha256, what="v2 live")
    first.stop()

    second = start_agent(probation_seconds=60.0)
    assert serving(second) == v2.sha256          # restored, and on probation still
    second.predict(None, {MLP_INPUT: FIELD_DATA})
    wait_until(lambda: serving(second) == v1.sha256, what="the rollback after the restart")
    [event] = wait_until(lambda: cp.events_for("rolled_back"), what="the rollback reported")
    assert event.ref.sha256 == v2.sha256 and event.finding.reason == "probation_nonfinite"
