"""measure_latency and reference_outputs in the real interpreters."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from controlplane import modelgen
from controlplane.registry.errors import ModelRunError
from controlplane.registry.measure import measure_latency, random_input, reference_outputs
from controlplane.registry.tflite import inspect_model
from protos.contract.interpreters import available
from tests.registry import quantize
from tests.support.interpreters import TFLITE_RUNTIME, needs_tflite_runtime

pytestmark = pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")


@pytest.fixture(scope="module")
def cnn_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "cnn.tflite"
    path.write_bytes(modelgen.build_cnn(seed=2))
    return path


@pytest.fixture(scope="module")
def int8_path(tmp_path_factory: pytest.TempPathFactory, cnn_path: Path) -> Path:
    """The CNN fully quantized to int8 (int8 input and output tensors)."""
    path = cnn_path.parent / "cnn-int8.tflite"
    path.write_bytes(quantize(cnn_path.read_bytes(), "static"))
    return path


@pytest.mark.parametrize(("interpreter", "distribution"), [
    ("ai-edge-litert", "ai-edge-litert"),
    pytest.param("tflite-runtime", "tflite-runtime", marks=needs_tflite_runtime),
    ("auto", available()[0]),   # the shared contract's preference, as on a device
])
def test_measures_in_the_named_interpreter(cnn_path: Path, interpreter: str,
                                          distribution: str) -> None:
    m = measure_latency(cnn_path, runs=5, interpreter=interpreter)

    assert m.interpreter_name == distribution
    assert m.interpreter_version == importlib.metadata.version(distribution)
    assert m.runs == 5
    assert 0 < m.latency_ms_median <= m.latency_ms_p95


def test_measures_a_model_with_int8_inputs(int8_path: Path) -> None:
    m = measure_latency(int8_path, runs=3)
    assert 0 < m.latency_ms_median <= m.latency_ms_p95


def test_random_inputs_are_deterministic_and_fit_the_tensor() -> None:
    detail = {"name": "q", "shape": np.array([2, 3]), "dtype": np.int8}
    a = random_input(detail, np.random.default_rng(0))
    b = random_input(detail, np.random.default_rng(0))

    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int8 and a.shape == (2, 3)
    floats = random_input({"name": "f", "shape": [1000], "dtype": np.float32},
                          np.random.default_rng(0))
    assert floats.dtype == np.float32 and floats.min() >= 0 and floats.max() < 1


@needs_tflite_runtime
def test_reference_outputs_match_a_direct_run_in_both_interpreters(cnn_path: Path) -> None:
    x = np.random.default_rng(4).random((1, 28, 28, 1), dtype=np.float32)

    litert = reference_outputs(cnn_path, {"image": x}, interpreter="ai-edge-litert")
    runtime = reference_outputs(cnn_path, {"image": x}, interpreter="tflite-runtime")

    assert list(litert) == ["scores"]
    assert litert["scores"].shape == (1, 10)
    np.testing.assert_allclose(litert["scores"], runtime["scores"], atol=1e-6)
    assert litert["scores"].sum() == pytest.approx(1.0, abs=1e-5)


def test_reference_outputs_present_an_int8_model_in_real_values(cnn_path: Path,
                                                               int8_path: Path) -> None:
    """Float inputs are quantized on the way in and the int8 scores dequantized on the way out."""
    x = np.random.default_rng(5).random((1, 28, 28, 1), dtype=np.float32)

    quantized = reference_outputs(int8_path, {"image": x})["scores"]
    reference = reference_outputs(cnn_path, {"image": x})["scores"]

    assert quantized.dtype == np.float32
    assert np.abs(quantized - reference).max() < 0.05


def test_reference_outputs_refuse_inputs_with_the_wrong_names(cnn_path: Path) -> None:
    with pytest.raises(ValueError, match=r"inputs must be exactly \['image'\]"):
        reference_outputs(cnn_path, {"pixels": np.zeros((1, 28, 28, 1), np.float32)})


def test_reference_outputs_refuse_an_input_of_the_wrong_size(cnn_path: Path) -> None:
    with pytest.raises(ValueError, match="the model takes"):
        reference_outputs(cnn_path, {"image": np.zeros((1, 27, 28, 1), np.float32)})


def test_a_file_that_is_not_a_model_is_a_run_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.tflite"
    path.write_bytes(b"these are not the weights you are looking for" * 10)
    with pytest.raises(ModelRunError, match=rf"{available()[0]} could not load notes\.tflite"):
        measure_latency(path, runs=1)


def test_a_model_with_an_unresolvable_custom_op_is_a_run_error(tmp_path: Path) -> None:
    """The flatbuffer is valid (inspect_model accepts it) but no interpreter has the kernel."""
    def custom(model: schema.ModelT) -> None:
        code = model.operatorCodes[-1]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "EdgeFleetNoSuchKernel"

    data = modelgen.edit_model(modelgen.build_mlp(), custom)
    inspect_model(data)
    path = tmp_path / "custom.tflite"
    path.write_bytes(data)
    interpreters = ("ai-edge-litert", "tflite-runtime") if TFLITE_RUNTIME else ("ai-edge-litert",)
    for interpreter in interpreters:
        with pytest.raises(ModelRunError, match="EdgeFleetNoSuchKernel"):
            measure_latency(path, runs=1, interpreter=interpreter)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"runs": 0}, "runs must be at least 1"),
    ({"runs": 1, "num_threads": 0}, "num_threads"),
    ({"runs": 1, "interpreter": "tensorflow"}, "unknown interpreter 'tensorflow'"),
])
def test_bad_arguments_are_value_errors(cnn_path: Path, kwargs: dict[str, object],
                                        message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_latency(cnn_path, **kwargs)  # type: ignore[arg-type]
