"""ModelRunner on real interpreters: float and int8 models against numpy reference math."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.errors import InvalidInputError, ModelLoadError, ValidationError
from agent.runtime import ModelRunner, interpreter_factory
from agent.settings import INTERPRETERS, AgentSettings
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    Artifact,
    Quant,
    build_dense,
    manifest_doc,
    mlp_artifact,
    mlp_reference,
)
from tests.support.interpreters import each_interpreter

IN_Q = Quant(scale=0.02, zero_point=5)
OUT_Q = Quant(scale=0.05, zero_point=-3)


def runner_for(tmp_path: Path, artifact: Artifact, **settings: Any) -> ModelRunner:
    path = tmp_path / f"{artifact.sha256}.tflite"
    path.write_bytes(artifact.data)
    return ModelRunner(path, manifest_doc(artifact), settings=AgentSettings(**settings))


@pytest.fixture(scope="module")
def dense_params() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(0, 0.5, (3, 6)).astype(np.float32), rng.normal(0, 0.2, 3).astype(np.float32)


@pytest.mark.parametrize("interpreter", each_interpreter(INTERPRETERS))
def test_float_mlp_matches_numpy_reference_in_each_interpreter(tmp_path, interpreter):
    runner = runner_for(tmp_path, mlp_artifact(seed=3), interpreter=interpreter)
    assert runner.interpreter_info.name == interpreter
    x = np.random.default_rng(0).uniform(-1, 1, MLP_SHAPE).astype(np.float32)
    out = runner.predict({MLP_INPUT: x})
    assert set(out) == {MLP_OUTPUT} and out[MLP_OUTPUT].dtype == np.float32
    np.testing.assert_allclose(out[MLP_OUTPUT], mlp_reference(x, seed=3), rtol=1e-5, atol=1e-6)


def test_float64_input_is_accepted_and_cast(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact())
    x = np.linspace(-1, 1, 16).reshape(MLP_SHAPE)   # float64
    np.testing.assert_allclose(runner.predict({MLP_INPUT: x})[MLP_OUTPUT],
                               mlp_reference(x.astype(np.float32)), rtol=1e-5, atol=1e-6)


def test_int8_model_quantizes_inputs_and_dequantizes_outputs(tmp_path, dense_params):
    weights, bias = dense_params
    runner = runner_for(tmp_path, build_dense(weights, bias, input_quant=IN_Q, output_quant=OUT_Q))
    x = np.random.default_rng(1).uniform(-2, 2, (1, 6)).astype(np.float32)
    y = runner.predict({"x": x})["y"]
    assert y.dtype == np.float32
    # Reference: the float layer on the input as quantized, rounded to the output grid.
    x_q = (np.clip(np.round(x / IN_Q.scale + IN_Q.zero_point), -128, 127) - IN_Q.zero_point)
    reference = (x_q * IN_Q.scale) @ weights.T + bias
    # Weights are int8 too: allow one output step plus the weight rounding error.
    weight_error = np.abs(x_q * IN_Q.scale).sum() * (np.abs(weights).max() / 127) / 2
    np.testing.assert_allclose(y, reference, atol=OUT_Q.scale + weight_error)
    # The output sits exactly on the dequantized int8 grid.
    steps = y / OUT_Q.scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


def test_int8_input_outside_the_representable_range_is_clipped(tmp_path, dense_params):
    weights, bias = dense_params
    runner = runner_for(tmp_path, build_dense(weights, bias, input_quant=IN_Q, output_quant=OUT_Q))
    huge = np.full((1, 6), 1e6, np.float32)
    edge = np.full((1, 6), (127 - IN_Q.zero_point) * IN_Q.scale, np.float32)
    np.testing.assert_array_equal(runner.predict({"x": huge})["y"],
                                  runner.predict({"x": edge})["y"])


def test_wrong_input_name_is_refused_naming_the_expected_one(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact())
    with pytest.raises(InvalidInputError, match=MLP_INPUT):
        runner.predict({"image": np.zeros(MLP_SHAPE, np.float32)})


def test_wrong_input_shape_is_refused(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact())
    with pytest.raises(InvalidInputError, match="shape"):
        runner.predict({MLP_INPUT: np.zeros((1, 15), np.float32)})


def test_integer_input_array_is_refused(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact())
    with pytest.raises(InvalidInputError, match="int32"):
        runner.predict({MLP_INPUT: np.zeros(MLP_SHAPE, np.int32)})


def test_nan_input_to_a_quantized_model_is_refused(tmp_path, dense_params):
    runner = runner_for(tmp_path, build_dense(*dense_params, input_quant=IN_Q, output_quant=OUT_Q))
    x = np.zeros((1, 6), np.float32)
    x[0, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        runner.predict({"x": x})


def test_manifest_contradicting_the_model_shape_is_a_load_error(tmp_path):
    artifact = mlp_artifact()
    manifest = manifest_doc(artifact)
    manifest["inputs"] = [{**manifest["inputs"][0], "shape": [1, 32]}]
    path = tmp_path / "m.tflite"
    path.write_bytes(artifact.data)
    with pytest.raises(ModelLoadError, match="shape"):
        ModelRunner(path, manifest)


def test_bytes_that_are_not_a_model_are_a_load_error(tmp_path):
    artifact = mlp_artifact()
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\0" * artifact.size)
    with pytest.raises(ModelLoadError):
        ModelRunner(path, manifest_doc(artifact))


def test_validate_passes_a_healthy_model(tmp_path, dense_params):
    report = runner_for(tmp_path, build_dense(*dense_params, input_quant=IN_Q,
                                              output_quant=OUT_Q)).validate()
    assert report.runs == AgentSettings().validation_runs


def test_validate_refuses_a_model_with_non_finite_outputs(tmp_path, dense_params):
    weights, bias = dense_params
    broken = bias.copy()
    broken[1] = np.inf
    with pytest.raises(ValidationError, match="finite"):
        runner_for(tmp_path, build_dense(weights, broken)).validate()


def test_validate_refuses_a_model_over_the_latency_budget(tmp_path):
    with pytest.raises(ValidationError, match="budget"):
        runner_for(tmp_path, mlp_artifact(), validation_latency_budget_ms=0.0).validate()


def test_concurrent_predictions_on_one_runner_are_all_correct(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact(seed=5), runner_pool_size=2)
    inputs = [np.random.default_rng(i).uniform(-1, 1, MLP_SHAPE).astype(np.float32)
              for i in range(8)]
    wrong: list[int] = []

    def worker(i: int) -> None:
        for _ in range(40):
            out = runner.predict({MLP_INPUT: inputs[i]})[MLP_OUTPUT]
            if not np.allclose(out, mlp_reference(inputs[i], seed=5), rtol=1e-5, atol=1e-6):
                wrong.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_interpreter_can_be_forced_through_the_environment(monkeypatch):
    monkeypatch.setenv("EDGEFLEET_AGENT_INTERPRETER", "ai-edge-litert")
    choice = AgentSettings().interpreter_choice
    assert choice == "ai-edge-litert"
    assert interpreter_factory(choice)[1].name == "ai-edge-litert"


def test_unknown_interpreter_name_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("EDGEFLEET_AGENT_INTERPRETER", "tensorflow")
    with pytest.raises(ValueError, match="EDGEFLEET_AGENT_INTERPRETER"):
        _ = AgentSettings().interpreter_choice


def test_manifest_contradicting_the_model_s_quantization_is_a_load_error(tmp_path, dense_params):
    """Input tried: a signed manifest whose input scale is not the model's (predictions would be
    quietly wrong), then one that calls a quantized input float."""
    weights, bias = dense_params
    artifact = build_dense(weights, bias, input_quant=IN_Q, output_quant=OUT_Q)
    path = tmp_path / "m.tflite"
    path.write_bytes(artifact.data)
    assert ModelRunner(path, manifest_doc(artifact)).inputs[0].quantized   # as declared: fine
    for wrong in ({**artifact.inputs[0]["quantization"], "scale": [IN_Q.scale * 2]}, None):
        manifest = manifest_doc(artifact)
        manifest["inputs"] = [{**manifest["inputs"][0], "quantization": wrong}]
        with pytest.raises(ModelLoadError, match="input 'x' is quantized as"):
            ModelRunner(path, manifest)


def test_a_pool_of_one_serves_many_threads_one_at_a_time(tmp_path):
    runner = runner_for(tmp_path, mlp_artifact(seed=6), runner_pool_size=1)
    inputs = [np.random.default_rng(i).uniform(-1, 1, MLP_SHAPE).astype(np.float32)
              for i in range(4)]
    wrong: list[int] = []

    def worker(i: int) -> None:
        for _ in range(40):
            out = runner.predict({MLP_INPUT: inputs[i]})[MLP_OUTPUT]
            if not np.allclose(out, mlp_reference(inputs[i], seed=6), rtol=1e-5, atol=1e-6):
                wrong.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_what_a_request_needs_of_a_tensor_is_read_at_load(tmp_path, dense_params):
    """The bindings kept at load say what the interpreter holds: index, dtype, shape, and
    whether the tensor is quantized (a float model's are not; an int8 model's are)."""
    float_runner = runner_for(tmp_path, mlp_artifact())
    (inp,) = float_runner.inputs
    assert (inp.name, inp.dtype, inp.shape, inp.quantized) == (MLP_INPUT, np.float32,
                                                                MLP_SHAPE, False)
    int8 = runner_for(tmp_path, build_dense(*dense_params, input_quant=IN_Q, output_quant=OUT_Q))
    assert int8.inputs[0].quantized and int8.outputs[0].quantized
    assert int8.inputs[0].dtype == np.int8


def test_a_refused_input_leaves_every_interpreter_in_the_pool(tmp_path):
    """Input tried: refusals of each kind on a pool of 2, then 2 threads holding one
    interpreter each at once (a lost interpreter would make the second wait for ever)."""
    runner = runner_for(tmp_path, mlp_artifact(seed=1), runner_pool_size=2)
    for bad in ({MLP_INPUT: np.zeros((1, 17), np.float32)},
                {MLP_INPUT: np.zeros(MLP_SHAPE, np.int64)}, {}, {"x": 1}):
        with pytest.raises(InvalidInputError):
            runner.predict(bad)
    barrier = threading.Barrier(2, timeout=10)
    held: list[Any] = []

    def hold() -> None:
        interpreter = runner._pool.borrow()
        held.append(interpreter)
        barrier.wait()
        runner._pool.give_back(interpreter)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(i) for i in held}) == 2
