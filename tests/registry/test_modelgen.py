"""The model generator writes real networks: both interpreters compute what numpy computes,
and ai-edge-quantizer can quantize them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter as LiteRtInterpreter

from controlplane import modelgen
from controlplane.registry.tflite import inspect_model
from tests.registry import QUANTIZATIONS, quantize
from tests.support.interpreters import TFLITE_RUNTIME, each_interpreter

INTERPRETERS: dict[str, type] = {"ai-edge-litert": LiteRtInterpreter}
if TFLITE_RUNTIME:  # where pyproject installs it, a missing one must fail, not skip
    from tflite_runtime.interpreter import Interpreter as TfliteRuntimeInterpreter

    INTERPRETERS["tflite-runtime"] = TfliteRuntimeInterpreter
EACH_INTERPRETER = each_interpreter(("ai-edge-litert", "tflite-runtime"))
ROOT = Path(__file__).resolve().parents[2]


def run(interpreter: type, model: bytes, x: np.ndarray) -> np.ndarray:
    it = interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


# -- numpy reference of the generated networks (TFLite layouts: NHWC, filters [out, kh, kw, in]) --

def conv3x3_same_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, h, wd, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((x.shape[0], h, wd, w.shape[0]), np.float64)
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nhwc,oc->nhwo", padded[:, dy:dy + h, dx:dx + wd, :], w[:, dy, dx, :])
    return np.maximum(out + b, 0.0)


def pool2x2(x: np.ndarray, kind: str) -> np.ndarray:
    n, h, w, c = x.shape
    windows = x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(n, h // 2, 2, w // 2, 2, c)
    return windows.max(axis=(2, 4)) if kind == "max" else windows.mean(axis=(2, 4))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cnn_reference(x: np.ndarray, p: modelgen.CnnParams, pool: str) -> np.ndarray:
    h = pool2x2(conv3x3_same_relu(x.astype(np.float64), p.conv_filter, p.conv_bias), pool)
    return softmax(h.reshape(x.shape[0], -1) @ p.fc_weights.T + p.fc_bias)


def mlp_reference(x: np.ndarray, p: modelgen.MlpParams) -> np.ndarray:
    h = np.maximum(x.astype(np.float64) @ p.hidden_weights.T + p.hidden_bias, 0.0)
    return softmax(h @ p.out_weights.T + p.out_bias)


# -- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("interpreter", EACH_INTERPRETER)
@pytest.mark.parametrize(("shape", "filters", "classes", "pool"), [
    ((1, 28, 28, 1), 8, 10, "max"),
    ((2, 12, 10, 3), 4, 5, "avg"),
])
def test_cnn_matches_numpy_reference(interpreter: str, shape: tuple[int, ...], filters: int,
                                     classes: int, pool: str) -> None:
    kwargs = {"seed": 3, "input_shape": shape, "filters": filters, "classes": classes}
    model = modelgen.build_cnn(pool=pool, **kwargs)  # type: ignore[arg-type]
    x = np.random.default_rng(9).random(shape, dtype=np.float32)

    got = run(INTERPRETERS[interpreter], model, x)

    expected = cnn_reference(x, modelgen.cnn_params(**kwargs), pool)  # type: ignore[arg-type]
    assert got.shape == (shape[0], classes)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # Not a degenerate network: the classes get clearly different scores.
    assert got.max() - got.min() > 0.05


@pytest.mark.parametrize("interpreter", EACH_INTERPRETER)
def test_mlp_matches_numpy_reference(interpreter: str) -> None:
    model = modelgen.build_mlp(seed=5, input_shape=(3, 16), hidden=8, classes=4)
    x = np.random.default_rng(2).random((3, 16), dtype=np.float32)

    got = run(INTERPRETERS[interpreter], model, x)

    expected = mlp_reference(x, modelgen.mlp_params(seed=5, input_shape=(3, 16), hidden=8,
                                                    classes=4))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")
@pytest.mark.parametrize("interpreter", EACH_INTERPRETER)
@pytest.mark.parametrize("which", QUANTIZATIONS)
def test_ai_edge_quantizer_variants_of_the_cnn_load_and_run(interpreter: str, which: str) -> None:
    """Runs without error in both interpreters; how close it stays is checked in ai-edge-litert
    only, because tflite-runtime 2.14 computes the dynamic variant wrongly (see test_tflite)."""
    model = modelgen.build_cnn(seed=6)
    variant = quantize(model, which)
    x = np.random.default_rng(3).random((1, 28, 28, 1), dtype=np.float32)

    detail = inspect_model(variant).inputs[0]
    if detail.dtype == "int8":
        assert detail.quantization is not None
        scale, zero = detail.quantization.scale[0], detail.quantization.zero_point[0]
        got = run(INTERPRETERS[interpreter], variant, np.round(x / scale + zero).astype(np.int8))
        out_q = inspect_model(variant).outputs[0].quantization
        assert out_q is not None
        scores = (got.astype(np.float32) - out_q.zero_point[0]) * out_q.scale[0]
    else:
        scores = run(INTERPRETERS[interpreter], variant, x)

    assert scores.shape == (1, 10)
    assert len(variant) < len(model) / 2
    if interpreter == "ai-edge-litert":
        np.testing.assert_allclose(scores, run(LiteRtInterpreter, model, x), atol=0.03)


def test_same_arguments_give_identical_bytes_and_other_seeds_do_not() -> None:
    assert modelgen.build_cnn(seed=1) == modelgen.build_cnn(seed=1)
    assert modelgen.build_cnn(seed=1) != modelgen.build_cnn(seed=2)
    assert modelgen.build_mlp(seed=1) == modelgen.build_mlp(seed=1)


def test_model_header_signature_and_operator_codes_follow_the_schema() -> None:
    data = modelgen.build_cnn()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)

    assert data[4:8] == b"TFL3"
    assert model.version == 3
    assert len(model.subgraphs) == 1
    (signature,) = model.signatureDefs
    assert signature.signatureKey == b"serving_default"
    assert [m.name for m in signature.inputs] == [b"image"]
    assert [m.name for m in signature.outputs] == [b"scores"]
    codes = [(c.deprecatedBuiltinCode, c.builtinCode) for c in model.operatorCodes]
    op = schema.BuiltinOperator
    # Every code is below 127, so both fields carry it (the old int8 field is not clamped).
    assert codes == [(code, code) for code in (op.CONV_2D, op.MAX_POOL_2D, op.RESHAPE,
                                                op.FULLY_CONNECTED, op.SOFTMAX)]
    conv = model.subgraphs[0].operators[0]
    assert conv.builtinOptionsType == schema.BuiltinOptions.Conv2DOptions
    assert conv.builtinOptions.fusedActivationFunction == schema.ActivationFunctionType.RELU


def test_constant_weights_are_stored_16_byte_aligned() -> None:
    data = modelgen.build_cnn(seed=4)
    params = modelgen.cnn_params(seed=4)
    for array in (params.conv_filter, params.conv_bias, params.fc_weights, params.fc_bias):
        position = data.find(array.tobytes())
        assert position > 0
        assert position % 16 == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_shape": (28, 28)}, "NHWC"),
    ({"input_shape": (1, 1, 28, 1)}, "at least 2x2"),
    ({"pool": "min"}, "pool"),
    ({"classes": 1}, "2 classes"),
])
def test_build_cnn_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        modelgen.build_cnn(**kwargs)  # type: ignore[arg-type]


def test_command_line_writes_model_and_calibration_in_design_layout(tmp_path: Path) -> None:
    out, calibration = tmp_path / "m.tflite", tmp_path / "calib.npz"

    subprocess.run(
        [sys.executable, "-m", "controlplane.modelgen", str(out), "--seed", "7",
         "--calibration", str(calibration), "--samples", "5"],
        check=True, cwd=ROOT, capture_output=True, timeout=120,
    )

    assert out.read_bytes() == modelgen.build_cnn(seed=7)
    with np.load(calibration) as npz:
        assert npz.files == ["image"]
        samples = npz["image"]
    # docs/cli.md: one array per input, samples stacked on a new first axis: (N, *input_shape).
    assert samples.shape == (5, 1, 28, 28, 1)
    assert samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() < 1.0
    # Each sample is a valid input of the model.
    assert run(LiteRtInterpreter, out.read_bytes(), samples[0]).shape == (1, 10)


def test_write_calibration_follows_the_model_inputs(tmp_path: Path) -> None:
    model = tmp_path / "mlp.tflite"
    model.write_bytes(modelgen.build_mlp(input_shape=(1, 6), input_name="x"))

    arrays = modelgen.write_calibration(model, tmp_path / "c.npz", samples=3, seed=1)

    assert {k: v.shape for k, v in arrays.items()} == {"x": (3, 1, 6)}
    with np.load(tmp_path / "c.npz") as npz:
        np.testing.assert_array_equal(npz["x"], arrays["x"])


def test_edit_model_round_trips_and_applies_the_edit() -> None:
    data = modelgen.build_mlp()

    def rename(model: schema.ModelT) -> None:
        model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].name = "renamed"

    assert inspect_model(modelgen.edit_model(data, rename)).inputs[0].name == "renamed"
    assert inspect_model(modelgen.edit_model(data, lambda m: None)) == inspect_model(data)
