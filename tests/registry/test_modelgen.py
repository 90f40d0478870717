"""The model generator writes real networks: both interpreters compute what numpy computes,
and ai-edge-quantizer can quantize them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter as LiteRtInterpreter

from controlplane import modelgen
from controlplane.registry.tflite import RUNTIME_FLOOR, inspect_model
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

def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TFLite's SAME padding of one axis: the output has ceil(size / stride) positions, and the
    padding they need is split with the smaller half before, so stride 2 on an even size pads
    (0, 1), not (1, 1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def same_taps(x: np.ndarray, kh: int, kw: int,
              stride: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """For each filter tap (dy, dx), the input values it meets at every SAME output position."""
    _, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), same_padding(h, kh, stride), same_padding(w, kw, stride), (0, 0)))
    oh, ow = -(-h // stride), -(-w // stride)
    for dy in range(kh):
        for dx in range(kw):
            yield dy, dx, padded[:, dy:dy + (oh - 1) * stride + 1:stride,
                                 dx:dx + (ow - 1) * stride + 1:stride, :]


def conv2d_same(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1) -> np.ndarray:
    """CONV_2D, filters ``[out, kh, kw, in]``, no activation."""
    taps = same_taps(x, w.shape[1], w.shape[2], stride)
    return sum(np.einsum("nhwc,oc->nhwo", seen, w[:, dy, dx, :]) for dy, dx, seen in taps) + b


def depthwise_conv2d_same(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """DEPTHWISE_CONV_2D with depth multiplier 1, filters ``[1, kh, kw, channels]``."""
    taps = same_taps(x, w.shape[1], w.shape[2], stride)
    return sum(seen * w[0, dy, dx, :] for dy, dx, seen in taps) + b


def relu6(z: np.ndarray) -> np.ndarray:
    return np.clip(z, 0.0, 6.0)


def pool2x2(x: np.ndarray, kind: str) -> np.ndarray:
    n, h, w, c = x.shape
    windows = x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(n, h // 2, 2, w // 2, 2, c)
    return windows.max(axis=(2, 4)) if kind == "max" else windows.mean(axis=(2, 4))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cnn_reference(x: np.ndarray, p: modelgen.CnnParams, pool: str) -> np.ndarray:
    conv = np.maximum(conv2d_same(x.astype(np.float64), p.conv_filter, p.conv_bias), 0.0)
    h = pool2x2(conv, pool)
    return softmax(h.reshape(x.shape[0], -1) @ p.fc_weights.T + p.fc_bias)


def mlp_reference(x: np.ndarray, p: modelgen.MlpParams) -> np.ndarray:
    h = np.maximum(x.astype(np.float64) @ p.hidden_weights.T + p.hidden_bias, 0.0)
    return softmax(h @ p.out_weights.T + p.out_bias)


def mobilenet_reference(x: np.ndarray, p: modelgen.MobileNetParams) -> np.ndarray:
    h = relu6(conv2d_same(x.astype(np.float64), p.stem_filter, p.stem_bias, stride=2))
    for block in p.blocks:
        h = relu6(depthwise_conv2d_same(h, block.depthwise_filter, block.depthwise_bias, stride=2))
        h = relu6(conv2d_same(h, block.pointwise_filter, block.pointwise_bias))
    return softmax(h.mean(axis=(1, 2)) @ p.fc_weights.T + p.fc_bias)


def param_arrays(params: object) -> list[np.ndarray]:
    """Every array of a ``...Params`` dataclass in field order, a MobileNet's blocks included."""
    if isinstance(params, np.ndarray):
        return [params]
    if isinstance(params, tuple):
        return [a for item in params for a in param_arrays(item)]
    assert dataclasses.is_dataclass(params)
    return [a for f in dataclasses.fields(params) for a in param_arrays(getattr(params, f.name))]


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


@pytest.mark.parametrize("interpreter", EACH_INTERPRETER)
@pytest.mark.parametrize("kwargs", [
    {},  # the defaults: 32x32x3 -> 16x16x144 -> 8x8x288 -> 4x4x576, a 4x4 global pool
    # Odd extents pad (1, 1), even ones (0, 1): 15x9 -> 8x5 -> 4x3 -> 2x2, two images at once.
    {"input_shape": (2, 15, 9, 2), "width": 4, "blocks": 2, "classes": 5},
    # Three blocks down to 1x1: the global pool is a single position.
    {"input_shape": (1, 12, 12, 1), "width": 6, "blocks": 3, "classes": 3},
])
def test_mobilenet_matches_numpy_reference(interpreter: str, kwargs: dict[str, Any]) -> None:
    model = modelgen.build_mobilenet(seed=3, **kwargs)
    params = modelgen.mobilenet_params(seed=3, **kwargs)
    shape = inspect_model(model).inputs[0].shape
    x = np.random.default_rng(9).random(shape, dtype=np.float32)

    got = run(INTERPRETERS[interpreter], model, x)

    classes = params.fc_bias.shape[0]
    assert got.shape == (shape[0], classes)
    np.testing.assert_allclose(got, mobilenet_reference(x, params), rtol=1e-4, atol=1e-6)
    # Not a degenerate network: the classes get clearly different scores.
    assert got.max() - got.min() > 0.05


def test_mobilenet_scores_are_far_from_uniform_on_calibration_inputs() -> None:
    """The classifier's gain at work: without it global average pooling leaves every score
    near 1 / classes (the top one 0.14 to 0.26 of 10, by seed), which would hide what
    quantization does to the scores; with it the default model's top score is above 0.6."""
    model = modelgen.build_mobilenet()
    (images,) = modelgen.calibration_samples(inspect_model(model).inputs, samples=32).values()

    it = LiteRtInterpreter(model_content=model)
    it.allocate_tensors()
    top = []
    for image in images:
        it.set_tensor(it.get_input_details()[0]["index"], image)
        it.invoke()
        top.append(it.get_tensor(it.get_output_details()[0]["index"]).max())

    assert min(top) > 3 / 10


@pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")
@pytest.mark.parametrize("interpreter", EACH_INTERPRETER)
@pytest.mark.parametrize("which", QUANTIZATIONS)
@pytest.mark.parametrize(("build", "max_ratio", "atol"), [
    (modelgen.build_cnn, 0.5, 0.03),
    # The static variant's calibration (8 samples, a moving average of each one's range) clips
    # the largest activations of other inputs, which costs a few hundredths here.
    (modelgen.build_mobilenet, 0.3, 0.05),
], ids=["cnn", "mobilenet"])
def test_ai_edge_quantizer_variants_load_and_run(
    interpreter: str, which: str, build: Callable[..., bytes], max_ratio: float, atol: float,
) -> None:
    """Runs without error in both interpreters; how close it stays is checked in ai-edge-litert
    only, because tflite-runtime 2.14 computes the dynamic variant wrongly (see test_tflite).
    The weights dominate both files, so every int8 variant is at most ``max_ratio`` the size."""
    model = build(seed=6)
    variant = quantize(model, which)
    x = np.random.default_rng(3).random(inspect_model(model).inputs[0].shape, dtype=np.float32)

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
    assert len(variant) <= max_ratio * len(model)
    if interpreter == "ai-edge-litert":
        np.testing.assert_allclose(scores, run(LiteRtInterpreter, model, x), atol=atol)


def test_same_arguments_give_identical_bytes_and_other_seeds_do_not() -> None:
    assert modelgen.build_cnn(seed=1) == modelgen.build_cnn(seed=1)
    assert modelgen.build_cnn(seed=1) != modelgen.build_cnn(seed=2)
    assert modelgen.build_mlp(seed=1) == modelgen.build_mlp(seed=1)
    assert modelgen.build_mobilenet(seed=1) == modelgen.build_mobilenet(seed=1)
    assert modelgen.build_mobilenet(seed=1) != modelgen.build_mobilenet(seed=2)


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


BUILDS_WITH_PARAMS = pytest.mark.parametrize(("build", "params"), [
    (modelgen.build_cnn, modelgen.cnn_params),
    (modelgen.build_mlp, modelgen.mlp_params),
    (modelgen.build_mobilenet, modelgen.mobilenet_params),
], ids=["cnn", "mlp", "mobilenet"])


@BUILDS_WITH_PARAMS
def test_params_are_exactly_the_float_constants_written(
    build: Callable[..., bytes], params: Callable[..., object],
) -> None:
    """Layer by layer, filter (or weights) then bias, in the layouts the dataclasses document."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(build(seed=4)), 0)
    written = [
        np.frombuffer(bytes(model.buffers[t.buffer].data), "<f4").reshape(t.shape)
        for t in model.subgraphs[0].tensors
        if t.buffer and t.type == schema.TensorType.FLOAT32
    ]
    expected = param_arrays(params(seed=4))
    assert [a.shape for a in written] == [a.shape for a in expected]
    for got, want in zip(written, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@BUILDS_WITH_PARAMS
def test_constant_weights_are_stored_16_byte_aligned(
    build: Callable[..., bytes], params: Callable[..., object],
) -> None:
    data = build(seed=4)
    for array in param_arrays(params(seed=4)):
        position = data.find(array.tobytes())
        assert position > 0
        assert position % 16 == 0


def test_mobilenet_operators_and_their_options() -> None:
    data = modelgen.build_mobilenet()
    info = inspect_model(data)
    assert info.operators == ("AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                              "FULLY_CONNECTED", "RESHAPE", "SOFTMAX")
    assert info.inputs[0].shape == (1, 32, 32, 3) and info.outputs[0].shape == (1, 10)
    assert info.min_runtime == RUNTIME_FLOOR  # only version-1 float kernels

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    ops = model.subgraphs[0].operators
    op, act, same = schema.BuiltinOperator, schema.ActivationFunctionType, schema.Padding.SAME
    assert [model.operatorCodes[o.opcodeIndex].builtinCode for o in ops] == [
        op.CONV_2D, op.DEPTHWISE_CONV_2D, op.CONV_2D, op.DEPTHWISE_CONV_2D, op.CONV_2D,
        op.AVERAGE_POOL_2D, op.RESHAPE, op.FULLY_CONNECTED, op.SOFTMAX]
    stem, depthwise, pointwise, pool = (ops[i].builtinOptions for i in (0, 1, 2, 5))
    assert (stem.strideH, stem.strideW, stem.padding, stem.fusedActivationFunction) == (
        2, 2, same, act.RELU6)
    assert (depthwise.strideH, depthwise.strideW, depthwise.padding, depthwise.depthMultiplier,
            depthwise.fusedActivationFunction) == (2, 2, same, 1, act.RELU6)
    assert (pointwise.strideH, pointwise.fusedActivationFunction) == (1, act.RELU6)
    # Global average pooling: one window over the 4x4 left after three stride-2 layers.
    assert (pool.filterHeight, pool.filterWidth, pool.padding) == (4, 4, schema.Padding.VALID)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_shape": (28, 28)}, "NHWC"),
    ({"input_shape": (1, 1, 28, 1)}, "at least 2x2"),
    ({"pool": "min"}, "pool"),
    ({"classes": 1}, "2 classes"),
])
def test_build_cnn_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        modelgen.build_cnn(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_shape": (32, 32, 3)}, "NHWC"),
    ({"width": 0}, "width"),
    ({"blocks": 0}, "1 block"),
    ({"classes": 1}, "2 classes"),
])
def test_build_mobilenet_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        modelgen.build_mobilenet(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "build", "shape"), [
    ([], modelgen.build_cnn, (1, 28, 28, 1)),  # the default kind
    (["--kind", "mobilenet"], modelgen.build_mobilenet, (1, 32, 32, 3)),
], ids=["cnn", "mobilenet"])
def test_command_line_writes_model_and_calibration_in_design_layout(
    tmp_path: Path, kind: list[str], build: Callable[..., bytes], shape: tuple[int, ...],
) -> None:
    out, calibration = tmp_path / "m.tflite", tmp_path / "calib.npz"

    subprocess.run(
        [sys.executable, "-m", "controlplane.modelgen", str(out), *kind, "--seed", "7",
         "--calibration", str(calibration), "--samples", "5"],
        check=True, cwd=ROOT, capture_output=True, timeout=120,
    )

    assert out.read_bytes() == build(seed=7)
    with np.load(calibration) as npz:
        assert npz.files == ["image"]
        samples = npz["image"]
    # docs/cli.md: one array per input, samples stacked on a new first axis: (N, *input_shape).
    assert samples.shape == (5, *shape)
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
