"""inspect_model: what it reads from real models, and how it refuses everything else."""

from __future__ import annotations

import random
from collections.abc import Callable

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter as LiteRtInterpreter

from controlplane import modelgen
from controlplane.registry.errors import InvalidModelError
from controlplane.registry.tflite import (
    RUNTIME_FLOOR,
    RUNTIME_UNKNOWN_OP,
    ModelInfo,
    inspect_model,
)
from protos.contract.documents import Quantization, TensorSpec
from protos.contract.versions import version_key
from tests.registry import quantize
from tests.support.interpreters import needs_tflite_runtime

CNN = modelgen.build_cnn(seed=11)
MLP = modelgen.build_mlp(seed=11)


pytestmark = pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")


def edited(edit: Callable[[schema.ModelT], object], base: bytes = MLP) -> bytes:
    return modelgen.edit_model(base, edit)


def main_graph(model: schema.ModelT) -> schema.SubGraphT:
    return model.subgraphs[0]


# -- what is read ---------------------------------------------------------------------------------

def test_cnn_signature_operators_and_runtime() -> None:
    info = inspect_model(CNN)

    assert info == ModelInfo(
        inputs=(TensorSpec("image", (1, 28, 28, 1), "float32", None),),
        outputs=(TensorSpec("scores", (1, 10), "float32", None),),
        operators=("CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE", "SOFTMAX"),
        schema_version=3,
        min_runtime=RUNTIME_FLOOR,
        subgraph_count=1,
        # Every tensor without constant data, as float32: image 28x28, conv 28x28x8, pool and
        # flatten 14x14x8 each, logits and scores 10 each (filters, biases, shape: constant).
        arena_bytes=4 * (784 + 6272 + 1568 + 1568 + 10 + 10),
    )


def test_static_int8_model_reports_quantized_tensors_in_trust_md_shape() -> None:
    info = inspect_model(quantize(CNN, "static"))

    (image,) = info.inputs
    assert image.dtype == "int8"
    assert isinstance(image.quantization, Quantization)
    assert image.quantization.zero_point == (-128,)
    as_json = info.outputs[0].to_json()
    assert as_json["name"] == "scores"
    assert as_json["shape"] == [1, 10]
    assert as_json["dtype"] == "int8"
    q = as_json["quantization"]
    assert set(q) == {"scale", "zero_point", "quantized_dimension"}
    assert isinstance(q["scale"][0], float) and q["scale"][0] > 0
    assert isinstance(q["zero_point"][0], int)
    assert inspect_model(CNN).inputs[0].to_json() == {
        "name": "image", "shape": [1, 28, 28, 1], "dtype": "float32", "quantization": None}


@pytest.mark.parametrize(("variant", "runtime"), [
    ("static", "2.3.0"),        # int8 kernels: CONV_2D v3, FULLY_CONNECTED v4
    ("weight_only", "2.7.0"),   # per-channel int8 DEQUANTIZE is version 5
    ("dynamic", "2.17.0"),      # hybrid per-channel FULLY_CONNECTED is version 12
])
def test_min_runtime_follows_the_kernels_quantized_tensors_need(variant: str, runtime: str) -> None:
    """ai-edge-quantizer writes every operator as version 1; the floor must come from types."""
    data = quantize(CNN, variant)
    declared = schema.ModelT.InitFromPackedBuf(bytearray(data), 0).operatorCodes
    assert {c.version for c in declared} == {1}

    assert inspect_model(data).min_runtime == runtime


@needs_tflite_runtime
def test_dynamic_int8_is_kept_from_tflite_runtime_2_14_which_computes_it_wrongly() -> None:
    """Why the type rules exist: tflite-runtime 2.14 runs the hybrid per-channel model without an
    error but ignores the per-channel scales, while ai-edge-litert matches the float model."""
    from tflite_runtime.interpreter import Interpreter as TfliteRuntimeInterpreter

    dynamic = quantize(MLP, "dynamic")
    x = np.random.default_rng(0).random((1, 16), dtype=np.float32)

    def run(interpreter: type, model: bytes) -> np.ndarray:
        it = interpreter(model_content=model)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    reference = run(LiteRtInterpreter, MLP)
    assert np.abs(run(LiteRtInterpreter, dynamic) - reference).max() < 0.02
    assert np.abs(run(TfliteRuntimeInterpreter, dynamic) - reference).max() > 0.1
    assert version_key(inspect_model(dynamic).min_runtime) > version_key("2.14.0")


def test_min_runtime_honours_the_converters_metadata() -> None:
    def add_metadata(model: schema.ModelT) -> None:
        buffer = schema.BufferT()
        buffer.data = list(b"2.12.0\0\0\0\0\0\0\0\0\0\0")
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = "min_runtime_version"
        entry.buffer = len(model.buffers) - 1
        model.metadata = [entry]

    assert inspect_model(edited(add_metadata)).min_runtime == "2.12.0"


def test_min_runtime_is_conservative_for_an_op_version_the_table_does_not_know() -> None:
    def bump(model: schema.ModelT) -> None:
        model.operatorCodes[0].version = 99

    assert inspect_model(edited(bump)).min_runtime == RUNTIME_UNKNOWN_OP


def test_min_runtime_is_conservative_for_a_custom_operator() -> None:
    def custom(model: schema.ModelT) -> None:
        code = model.operatorCodes[-1]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "MyKernel"

    info = inspect_model(edited(custom))
    assert "CUSTOM:MyKernel" in info.operators
    assert info.min_runtime == RUNTIME_UNKNOWN_OP


# -- what is refused --------------------------------------------------------------------------

def refuse(data: bytes, message: str) -> None:
    with pytest.raises(InvalidModelError, match=message):
        inspect_model(data)


def test_refuses_an_empty_file() -> None:
    refuse(b"", "file is empty")


def test_refuses_a_file_shorter_than_a_flatbuffer_header() -> None:
    refuse(b"TFL", "too short")


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + bytes(64),   # an image
    b"PK\x03\x04" + bytes(64),          # a zip archive (e.g. a Keras .keras file)
    CNN[:4] + b"TFL2" + CNN[8:],        # a TFLite-shaped file with the wrong identifier
])
def test_refuses_a_file_without_the_tfl3_identifier(data: bytes) -> None:
    refuse(data, "missing TFL3 identifier")


def test_refuses_schema_version_2() -> None:
    refuse(edited(lambda m: setattr(m, "version", 2)), "unsupported TFLite schema version 2")


def test_refuses_a_model_without_subgraphs() -> None:
    refuse(edited(lambda m: setattr(m, "subgraphs", [])), "no subgraph")


def test_refuses_a_main_subgraph_without_inputs() -> None:
    refuse(edited(lambda m: setattr(main_graph(m), "inputs", [])), "no inputs or no outputs")


def test_refuses_a_tensor_pointing_at_a_missing_buffer() -> None:
    def break_buffer(model: schema.ModelT) -> None:
        main_graph(model).tensors[2].buffer = 500

    refuse(edited(break_buffer), "refers to buffer 500, but the model has only")


def test_refuses_an_unknown_tensor_type() -> None:
    def break_type(model: schema.ModelT) -> None:
        main_graph(model).tensors[0].type = 120

    refuse(edited(break_type), "unknown element type 120")


def test_refuses_a_negative_dimension() -> None:
    def break_shape(model: schema.ModelT) -> None:
        main_graph(model).tensors[0].shape = [1, -16]

    refuse(edited(break_shape), "negative dimension")


def test_refuses_an_external_buffer_beyond_the_end_of_the_file() -> None:
    def move_weights_out(model: schema.ModelT) -> None:
        weights = model.buffers[main_graph(model).tensors[2].buffer]  # hidden/weights
        weights.data, weights.offset, weights.size = None, 10_000_000, 512

    refuse(edited(move_weights_out), "points outside the file")


def test_refuses_constant_data_smaller_than_its_shape() -> None:
    def shrink(model: schema.ModelT) -> None:
        weights = model.buffers[main_graph(model).tensors[2].buffer]  # hidden/weights
        weights.data = weights.data[:8]

    refuse(edited(shrink), "needs 512 bytes of constant data")


def test_refuses_an_operator_with_a_missing_operator_code() -> None:
    def break_opcode(model: schema.ModelT) -> None:
        main_graph(model).operators[0].opcodeIndex = 40

    refuse(edited(break_opcode), "uses operator code 40")


def test_refuses_an_operator_reading_a_missing_tensor() -> None:
    def break_input(model: schema.ModelT) -> None:
        main_graph(model).operators[0].inputs = [0, 77, 2]

    refuse(edited(break_input), "refer to tensor 77")


def test_refuses_two_inputs_with_one_name() -> None:
    def duplicate(model: schema.ModelT) -> None:
        graph = main_graph(model)
        graph.inputs = [graph.inputs[0], graph.inputs[0]]

    refuse(edited(duplicate), "two inputs are both named 'features'")


def test_refuses_an_unnamed_output() -> None:
    def unname(model: schema.ModelT) -> None:
        graph = main_graph(model)
        graph.tensors[graph.outputs[0]].name = ""

    refuse(edited(unname), "has no name")


def test_refuses_subgraphs_aliased_to_cost_more_than_the_file_size() -> None:
    """A crafted file lists one subgraph table thousands of times: rejected, not walked."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(MLP), 0)
    builder = flatbuffers.Builder(4096)
    subgraph = model.subgraphs[0].Pack(builder)
    copies = 5000
    builder.StartVector(4, copies, 4)
    for _ in range(copies):
        builder.PrependUOffsetTRelative(subgraph)
    subgraphs = builder.EndVector()
    codes = [c.Pack(builder) for c in model.operatorCodes]
    builder.StartVector(4, len(codes), 4)
    for c in reversed(codes):
        builder.PrependUOffsetTRelative(c)
    code_vector = builder.EndVector()
    buffers = [b.Pack(builder) for b in model.buffers]
    builder.StartVector(4, len(buffers), 4)
    for b in reversed(buffers):
        builder.PrependUOffsetTRelative(b)
    buffer_vector = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    schema.ModelAddOperatorCodes(builder, code_vector)
    schema.ModelAddSubgraphs(builder, subgraphs)
    schema.ModelAddBuffers(builder, buffer_vector)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")

    refuse(bytes(builder.Output()), "more tables than its size can hold")


# -- hostile input: InvalidModelError and nothing else ---------------------------------------

def outcome(data: bytes) -> str:
    try:
        inspect_model(data)
    except InvalidModelError:
        return "refused"
    return "accepted"


def test_every_truncation_of_a_real_model_is_refused() -> None:
    for length in range(len(MLP)):
        assert outcome(MLP[:length]) == "refused", length
    for length in range(0, len(CNN), 97):
        assert outcome(CNN[:length]) == "refused", length


def test_random_bytes_behind_a_tfl3_identifier_are_refused() -> None:
    rng = random.Random(1)
    for _ in range(1000):
        data = bytearray(rng.randbytes(rng.randint(8, 600)))
        data[4:8] = b"TFL3"
        assert outcome(bytes(data)) == "refused"


def test_random_byte_flips_in_a_real_model_raise_nothing_but_invalid_model_error() -> None:
    """Flips in weights leave a valid model; flips in structure must be refused cleanly."""
    rng = random.Random(2)
    results = set()
    for _ in range(1500):
        data = bytearray(MLP)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        results.add(outcome(bytes(data)))  # any other exception fails the test
    assert results == {"accepted", "refused"}
