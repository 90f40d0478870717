"""protos.contract.quantization: the one quantize/dequantize, checked against TFLite's kernels.

A QUANTIZE and a DEQUANTIZE model built here run in every interpreter installed, so the contract's
rounding and saturation are shown to be the interpreters' own, not just self-consistent.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from protos.contract import ContractError
from protos.contract.documents import Quantization
from protos.contract.interpreters import available, import_interpreter
from protos.contract.quantization import (
    dequantize,
    from_interpreter_detail,
    is_quantized,
    quantize,
    representable_range,
    same_quantization,
)

PER_TENSOR = Quantization((0.5,), (-3,), 0)


def _one_op_model(op_name: str, in_type: str, out_type: str, q: Quantization,
                  shape: tuple[int, ...]) -> bytes:
    """A model of one QUANTIZE or DEQUANTIZE op between tensor "x" and tensor "y"."""
    from ai_edge_litert import schema_py_generated as schema

    types = {"float32": schema.TensorType.FLOAT32, "int8": schema.TensorType.INT8}

    def tensor(name: str, ttype: str) -> object:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), types[ttype], 0
        if ttype == "int8":
            params = schema.QuantizationParametersT()
            params.scale, params.zeroPoint = list(q.scale), list(q.zero_point)
            params.quantizedDimension = q.quantized_dimension
            t.quantization = params
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(schema.BuiltinOperator, op_name)
    code.version = 2
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    subgraph = schema.SubGraphT()
    subgraph.tensors = [tensor("x", in_type), tensor("y", out_type)]
    subgraph.operators, subgraph.inputs, subgraph.outputs = [op], [0], [1]
    model = schema.ModelT()
    model.version, model.operatorCodes = 3, [code]
    model.subgraphs, model.buffers = [subgraph], [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _run(interpreter: str, model: bytes, x: np.ndarray) -> tuple[np.ndarray, dict]:
    runner = import_interpreter(interpreter).cls(model_content=model)
    runner.allocate_tensors()
    runner.set_tensor(runner.get_input_details()[0]["index"], x)
    runner.invoke()
    out = runner.get_output_details()[0]
    return runner.get_tensor(out["index"]), out


@pytest.mark.parametrize("interpreter", available())
def test_quantize_matches_the_interpreters_quantize_kernel(interpreter: str) -> None:
    """Input tried: values between steps, beyond the int8 range (saturation), zero."""
    x = np.array([[0.3, -0.3, 0.7, -1.9, 0.0, 1000.0, -1000.0, 3.1, -63.4]], np.float32)
    model = _one_op_model("QUANTIZE", "float32", "int8", PER_TENSOR, x.shape)
    kernel, detail = _run(interpreter, model, x)
    assert from_interpreter_detail(detail) == PER_TENSOR
    np.testing.assert_array_equal(quantize(x, PER_TENSOR, "int8"), kernel)


def test_ties_round_like_tflites_reference_kernel() -> None:
    """Input tried: values exactly half a step apart (±0.25 at scale 0.5). The interpreters
    disagree here: tflite-runtime's reference kernel rounds half away from zero, ai-edge-litert
    (through XNNPACK) half to even. The contract follows the reference kernel; either way a tie
    moves a value by one step at most."""
    x = np.array([[0.25, -0.25, 0.75, -0.75]], np.float32)
    ours = quantize(x, PER_TENSOR, "int8")
    assert ours.tolist() == [[-2, -4, -1, -5]]
    model = _one_op_model("QUANTIZE", "float32", "int8", PER_TENSOR, x.shape)
    for interpreter in available():
        kernel, _ = _run(interpreter, model, x)
        if interpreter == "tflite-runtime":
            np.testing.assert_array_equal(ours, kernel)
        assert np.abs(ours.astype(int) - kernel.astype(int)).max() <= 1


@pytest.mark.parametrize("interpreter", available())
def test_dequantize_matches_the_interpreters_dequantize_kernel(interpreter: str) -> None:
    q = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    model = _one_op_model("DEQUANTIZE", "int8", "float32", PER_TENSOR, q.shape)
    kernel, _ = _run(interpreter, model, q)
    np.testing.assert_allclose(dequantize(q, PER_TENSOR), kernel, rtol=0, atol=1e-6)


def test_rounding_is_half_away_from_zero_and_saturates() -> None:
    q = Quantization((1.0,), (0,), 0)
    got = quantize(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 200.0, -200.0]), q, "int8")
    assert got.tolist() == [1, 2, 3, -1, -3, 127, -128]
    assert quantize(np.array([300.0, -5.0]), q, "uint8").tolist() == [255, 0]


def test_per_channel_parameters_apply_along_the_quantized_dimension() -> None:
    q = Quantization((0.1, 1.0, 10.0), (0, 1, -1), 1)
    real = np.array([[1.0, 1.0, 100.0], [-1.0, 2.0, -100.0]])
    ints = quantize(real, q, "int8")
    assert ints.tolist() == [[10, 2, 9], [-10, 3, -11]]
    np.testing.assert_allclose(dequantize(ints, q), real, rtol=1e-6)
    assert representable_range(q, "int8", (2, 3)) == pytest.approx((-1270.0, 1280.0))


def test_missing_zero_points_mean_symmetric() -> None:
    q = Quantization((0.5,), (), 0)
    assert quantize(np.array([1.0]), q, "int8").tolist() == [2]
    assert dequantize(np.array([2], np.int8), q).tolist() == [1.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(ContractError, match="NaN or infinite"):
        quantize(np.array([1.0, bad]), PER_TENSOR, "int8")


def test_per_channel_scales_that_do_not_fit_the_tensor_are_refused() -> None:
    """Input tried: 3 scales for a dimension of 4, and a quantized dimension past the rank."""
    with pytest.raises(ContractError, match="do not fit"):
        dequantize(np.zeros((2, 4), np.int8), Quantization((1.0, 2.0, 3.0), (0, 0, 0), 1))
    with pytest.raises(ContractError, match="do not fit"):
        quantize(np.zeros((2,)), Quantization((1.0, 2.0), (0, 0), 3), "int8")


def test_only_integer_tensors_with_a_scale_are_quantized() -> None:
    assert is_quantized("int8", PER_TENSOR)
    assert not is_quantized("float32", PER_TENSOR)
    assert not is_quantized("int8", None)
    with pytest.raises(ContractError, match="not an integer type"):
        quantize(np.zeros(1), PER_TENSOR, "float32")


def test_two_descriptions_of_one_quantization_agree_to_float32_precision() -> None:
    stored = Quantization((float(np.float32(0.02)),), (5,))   # as a model stores the scale
    assert same_quantization(stored, Quantization((0.02,), (5,)))   # as JSON carries it
    assert same_quantization(None, None)
    assert same_quantization(Quantization((0.5,), ()), Quantization((0.5,), (0,)))
    assert not same_quantization(stored, None)
    assert not same_quantization(stored, Quantization((0.04,), (5,)))
    assert not same_quantization(stored, Quantization((0.02,), (4,)))
    assert not same_quantization(Quantization((0.1, 0.2), (0, 0), 0),
                                 Quantization((0.1, 0.2), (0, 0), 1))
