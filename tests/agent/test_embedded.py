"""An application embedding the agent: ``from agent import Agent`` and ``Agent.predict``, with no
socket in between, on a real agent installing a real model from a (fake, real gRPC) control
plane: the same answers, the same refusals, safe from many threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import agent as agent_package
from agent import Agent, InvalidInputError, Prediction
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    entry,
    mlp_artifact,
    mlp_reference,
    wait_until,
)


def x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, MLP_SHAPE).astype(np.float32)


@pytest.fixture
def embedded(data_dir, control_plane, signing_key, trust_key_file, fast_settings
             ) -> Iterator[Agent]:
    """An agent in this process, serving ``mlp_artifact(seed=3)`` as model "face"."""
    artifact = mlp_artifact(seed=3)
    control_plane.servicer.publish([entry(signing_key, artifact, model="face")], (artifact,))
    with Agent(data_dir, server=control_plane.address, enroll_token="enroll-secret",
               trust_key_path=trust_key_file, settings=fast_settings) as agent:
        wait_until(lambda: agent.models.snapshot().get("face"), what="the model to go live")
        yield agent


def test_agent_is_part_of_the_package_surface():
    assert "Agent" in agent_package.__all__ and agent_package.Agent is Agent
    assert "Prediction" in agent_package.__all__


def test_embedded_predict_answers_like_the_model(embedded):
    prediction = embedded.predict("face", {MLP_INPUT: x()})
    assert isinstance(prediction, Prediction)
    np.testing.assert_allclose(prediction.outputs[MLP_OUTPUT], mlp_reference(x(), seed=3),
                               rtol=1e-5, atol=1e-6)
    assert prediction.ref.model == "face" and prediction.latency_ms > 0
    assert embedded.predict(None, {MLP_INPUT: x()}).ref == prediction.ref   # the only model


def test_embedded_predict_leaves_the_callers_array_alone_and_hands_out_its_own(embedded):
    """Input tried: a read-only array (it is only read); the outputs of two calls are separate
    arrays (the interpreter's buffers are reused, the caller's outputs are not)."""
    image = x()
    image.setflags(write=False)
    first = embedded.predict("face", {MLP_INPUT: image}).outputs[MLP_OUTPUT]
    kept = first.copy()
    second = embedded.predict("face", {MLP_INPUT: x(1)}).outputs[MLP_OUTPUT]
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(image, x())


@pytest.mark.parametrize("inputs,fragment", [
    ({MLP_INPUT: np.zeros((1, 15), np.float32)}, "shape"),          # too small
    ({MLP_INPUT: np.zeros((1, 17), np.float32)}, "shape"),          # too big
    ({MLP_INPUT: np.zeros((2, 16), np.float32)}, "shape"),          # a batch it does not take
    ({MLP_INPUT: np.zeros(MLP_SHAPE, np.int32)}, "int32"),           # not float
    ({MLP_INPUT: np.zeros(MLP_SHAPE, np.float32), "extra": np.zeros(1)}, "unknown input"),
    ({}, "missing input"),
])
def test_embedded_predict_refuses_what_the_model_does_not_take(embedded, inputs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        embedded.predict("face", inputs)
    # A refusal touched no interpreter: the next call is answered as usual.
    np.testing.assert_allclose(embedded.predict("face", {MLP_INPUT: x()}).outputs[MLP_OUTPUT],
                               mlp_reference(x(), seed=3), rtol=1e-5, atol=1e-6)


def test_embedded_predict_from_many_threads_gives_each_its_own_answer(embedded):
    """Input tried: 8 threads (4 times the interpreter pool), each with its own input."""
    inputs = [x(i) for i in range(8)]
    expected = [mlp_reference(v, seed=3) for v in inputs]
    wrong: list[int] = []

    def worker(i: int) -> None:
        for _ in range(50):
            out = embedded.predict("face", {MLP_INPUT: inputs[i]}).outputs[MLP_OUTPUT]
            if not np.allclose(out, expected[i], rtol=1e-5, atol=1e-6):
                wrong.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert embedded.metrics.stats(embedded.predict("face", {MLP_INPUT: x()}).ref).inferences \
        >= 8 * 50
