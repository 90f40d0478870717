"""Held entries (``"hold": true``, a rollout outside its maintenance window) against a real
DeviceService peer: the variant is downloaded, verified, proven against its golden samples and
staged, never served; the same ref without hold goes live from disk, downloaded once in all;
staging outlives a restart; a held entry repeated is not fetched or proven again."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import InferenceClient, NoModelLoadedError
from agent.daemon import Agent
from protos.contract import golden
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    Artifact,
    FakeControlPlane,
    entry,
    mlp_artifact,
    mlp_reference,
    wait_until,
)

X = np.random.default_rng(0).uniform(-1, 1, MLP_SHAPE).astype(np.float32)


def proven_entry(cp: FakeControlPlane, key: Ed25519PrivateKey, artifact: Artifact, seed: int,
                 version: str, **fields: Any) -> tuple[dict[str, Any], str]:
    """An entry for ``artifact`` (``mlp_artifact(seed)``) whose manifest references golden
    samples the peer serves; the entry and the samples' sha256."""
    inputs = np.random.default_rng(5).uniform(-1, 1, (4, *MLP_SHAPE)).astype(np.float32)
    data = golden.encode([inputs], [np.stack([mlp_reference(x, seed=seed) for x in inputs])])
    sha256 = hashlib.sha256(data).hexdigest()
    cp.artifacts[sha256] = data
    cp.artifacts[artifact.sha256] = artifact.data
    ref = {"sha256": sha256, "size": len(data), "samples": 4, "atol": {MLP_OUTPUT: 1e-4}}
    return {**entry(key, artifact, model="face", version=version, extra={"golden": ref}),
            **fields}, sha256


def v2_staged_beside_v1(start_agent: Callable[[], Agent], cp: FakeControlPlane,
                        key: Ed25519PrivateKey
                        ) -> tuple[Agent, Artifact, Artifact, dict[str, Any], str]:
    """An agent serving face 1.0.0 (v1) that staged 2.0.0 (v2), held with golden samples:
    the agent, v1, v2, v2's held entry and the samples' sha256."""
    v1, v2 = mlp_artifact(seed=0), mlp_artifact(seed=1)
    cp.publish([entry(key, v1, model="face", version="1.0.0")], (v1,))
    agent = start_agent()
    wait_until(lambda: serving(agent) == v1.sha256, what="v1 live")
    held, golden_sha = proven_entry(cp, key, v2, 1, "2.0.0", hold=True)
    cp.publish([held])
    wait_until(lambda: "staged" in states_of(cp, v2.sha256), what="v2 staged")
    return agent, v1, v2, held, golden_sha


def serving(agent: Agent) -> str | None:
    live = agent.models.snapshot().get("face")
    return live.ref.sha256 if live else None


def states_of(cp: FakeControlPlane, sha256: str) -> list[str]:
    return [e.state for e in list(cp.events) if e.ref.sha256 == sha256]


def fetched(cp: FakeControlPlane, *sha256s: str) -> list[tuple[str, int]]:
    return [r for r in list(cp.download_requests) if r[0] in sha256s]


def rows(agent: Agent) -> list[tuple[str, str, str]]:
    """``status -o json``'s models as (version, sha256, state), read over the local endpoint."""
    with InferenceClient(agent.endpoint) as client:
        return [(m["version"], m["sha256"], m["state"]) for m in client.status()["models"]]


def test_a_held_entry_is_proven_and_staged_while_the_old_version_serves_then_goes_live_from_disk(
        start_agent, control_plane, signing_key, caplog):
    """Input tried: v1 live; v2 held (sequence 2), held again (sequence 3) and for more syncs,
    then v2 without hold (sequence 4)."""
    cp = control_plane.servicer
    agent, v1, v2, held, golden_sha = v2_staged_beside_v1(start_agent, cp, signing_key)
    assert states_of(cp, v2.sha256) == ["downloading", "verified", "proven", "staged"]
    assert serving(agent) == v1.sha256
    with InferenceClient(agent.endpoint) as client:
        answer = client.predict_result({MLP_INPUT: X})
    assert answer.ref.sha256 == v1.sha256
    np.testing.assert_allclose(answer.outputs[MLP_OUTPUT], mlp_reference(X, seed=0), rtol=1e-5,
                               atol=1e-6)
    assert rows(agent) == [("1.0.0", v1.sha256, "active"), ("2.0.0", v2.sha256, "staged")]
    assert [(sha, offset) for sha, offset in fetched(cp, v2.sha256, golden_sha)] == [
        (v2.sha256, 0), (golden_sha, 0)]
    assert agent.store.artifact_path(golden_sha).exists()   # kept for the proof at activation

    # More rounds of the same document, then a new sequence still holding it: staged once,
    # told once per sequence, never fetched or proven again.
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3, what="three more syncs")
    cp.publish([held])
    wait_until(lambda: states_of(cp, v2.sha256).count("staged") == 2,
               what="staged told again under sequence 3")
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3, what="three more syncs")
    assert states_of(cp, v2.sha256) == ["downloading", "verified", "proven", "staged", "staged"]
    assert len(fetched(cp, v2.sha256, golden_sha)) == 2
    assert serving(agent) == v1.sha256

    # The hold lifted: live from the staged file, proven again, no download of anything.
    before = list(cp.download_requests)
    with caplog.at_level(logging.INFO, logger="agent.reconcile"):
        cp.publish([{k: v for k, v in held.items() if k != "hold"}])
        wait_until(lambda: any(r.getMessage().startswith("now serving face:2.0.0")
                               and "(staged earlier, from disk)" in r.getMessage()
                               for r in caplog.records), what="v2 live")
    assert serving(agent) == v2.sha256 and cp.download_requests == before
    assert states_of(cp, v2.sha256)[5:] == ["verified", "proven", "active"]
    assert rows(agent) == [("2.0.0", v2.sha256, "active")]
    assert agent.status().models[0].previous_sha256 == v1.sha256


def test_a_held_model_the_device_does_not_run_stays_inactive(start_agent, control_plane,
                                                           signing_key):
    """Input tried: the first desired state holds the device's only model."""
    cp = control_plane.servicer
    v1 = mlp_artifact(seed=0)
    held, _ = proven_entry(cp, signing_key, v1, 0, "1.0.0", hold=True)
    cp.publish([held])
    agent = start_agent()
    wait_until(lambda: "staged" in states_of(cp, v1.sha256), what="v1 staged")
    assert serving(agent) is None
    with InferenceClient(agent.endpoint) as client, pytest.raises(NoModelLoadedError):
        client.predict({MLP_INPUT: X})
    assert rows(agent) == [("1.0.0", v1.sha256, "staged")]
    assert "active" not in states_of(cp, v1.sha256)


def test_a_staged_version_outlives_a_restart_and_then_goes_live_without_a_download(
        start_agent, control_plane, signing_key):
    """Input tried: v1 live and v2 staged, the agent stopped and started again on its data dir,
    then the hold lifted."""
    cp = control_plane.servicer
    first, v1, v2, held, golden_sha = v2_staged_beside_v1(start_agent, cp, signing_key)
    first.stop()
    before = list(cp.download_requests)

    second = start_agent()
    assert serving(second) == v1.sha256
    assert rows(second) == [("1.0.0", v1.sha256, "active"), ("2.0.0", v2.sha256, "staged")]
    # The new run tells the server once more what it holds, without running v2's steps again.
    wait_until(lambda: states_of(cp, v2.sha256).count("staged") == 2, what="staged told again")
    syncs = len(cp.syncs)
    wait_until(lambda: len(cp.syncs) >= syncs + 3, what="three more syncs")
    assert states_of(cp, v2.sha256) == ["downloading", "verified", "proven", "staged", "staged"]
    assert cp.download_requests == before

    cp.publish([{k: v for k, v in held.items() if k != "hold"}])
    wait_until(lambda: serving(second) == v2.sha256, what="v2 live")
    assert cp.download_requests == before
    assert fetched(cp, v2.sha256, golden_sha) == [(v2.sha256, 0), (golden_sha, 0)]


def test_a_staged_version_the_server_replaces_is_forgotten_and_its_file_pruned(
        start_agent, control_plane, signing_key):
    """Input tried: v2 staged, then a desired state holding v3 instead."""
    cp = control_plane.servicer
    agent, v1, v2, _, golden2 = v2_staged_beside_v1(start_agent, cp, signing_key)
    v3 = mlp_artifact(seed=2)
    held3, _ = proven_entry(cp, signing_key, v3, 2, "3.0.0", hold=True)
    cp.publish([held3])
    wait_until(lambda: "staged" in states_of(cp, v3.sha256), what="v3 staged")
    assert rows(agent) == [("1.0.0", v1.sha256, "active"), ("3.0.0", v3.sha256, "staged")]
    store = agent.store
    assert not store.artifact_path(v2.sha256).exists()
    assert not store.artifact_path(golden2).exists()
    assert serving(agent) == v1.sha256
