"""Variant plans and builds, with the real ai-edge-quantizer 0.10 and the real interpreters.

Models come from ``controlplane.modelgen``; a float16 or int8 upload is made by ``build_variant``
itself from a float one. The tests named ``..._quantizer_...`` pin what 0.10 does with inputs
the plan refuses, so a new quantizer release that behaves otherwise fails here first.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from controlplane import errors, modelgen
from controlplane.optimize import (
    BUILT_KINDS,
    KINDS,
    Planned,
    QuantizerNotInstalledError,
    VariantBuildError,
    build_variant,
    plan_variants,
    recipes,
    variant_kind,
    weight_precision,
)
from controlplane.optimize.errors import MAX_REASON_CHARS
from controlplane.registry.errors import InvalidModelError
from controlplane.registry.measure import reference_outputs
from controlplane.registry.tflite import inspect_model
from protos.contract.versions import version_key
from tests.support.interpreters import each_interpreter

ROOT = Path(__file__).resolve().parents[2]
INTERPRETERS = each_interpreter(["ai-edge-litert", "tflite-runtime"])
QUANTIZED = ("dynamic_int8", "weight_only_int8", "int8")
# Largest output difference from the float model a kind may show (softmax scores in [0, 1]).
TOLERANCE = {"float16": 1e-3, "dynamic_int8": 0.02, "weight_only_int8": 0.02, "int8": 0.02}
BUILDERS = {
    "cnn": modelgen.build_cnn,
    "mlp": modelgen.build_mlp,
    # ~1 MB of float32 weights: where sizes are about weights, not the flatbuffer's overhead.
    "mlp512": functools.partial(modelgen.build_mlp, input_shape=(1, 512), hidden=512),
}


@functools.cache
def float_model(name: str) -> bytes:
    return BUILDERS[name]()


@functools.cache
def calibration(name: str) -> dict[str, np.ndarray]:
    return modelgen.calibration_samples(inspect_model(float_model(name)).inputs, samples=16)


@functools.cache
def variant(name: str, kind: str) -> bytes:
    return build_variant(float_model(name), kind, calibration=calibration(name))


def run(model: bytes, interpreter: str, inputs: dict[str, np.ndarray], tmp: Path) -> np.ndarray:
    """The model's one output for ``inputs`` (real values, quantized I/O handled)."""
    path = tmp / f"{hashlib.sha256(model).hexdigest()[:16]}.tflite"
    path.write_bytes(model)
    (output,) = reference_outputs(path, inputs, interpreter=interpreter).values()
    return output


def sample_input(model: bytes, seed: int = 7) -> dict[str, np.ndarray]:
    # A seed apart from the calibration data's: the variant sees an input it was not tuned on.
    return {name: array[0] for name, array in
            modelgen.calibration_samples(inspect_model(model).inputs, samples=1,
                                         seed=seed).items()}


# --- building each kind ----------------------------------------------------------------------


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("kind", BUILT_KINDS)
@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_each_kind_loads_and_runs_close_to_the_float_model(
        name: str, kind: str, interpreter: str, tmp_path: Path) -> None:
    built = variant(name, kind)
    x = sample_input(built)

    reference = run(float_model(name), interpreter, x, tmp_path)
    out = run(built, interpreter, x, tmp_path)

    assert inspect_model(built).inputs[0].name == inspect_model(float_model(name)).inputs[0].name
    assert out.shape == reference.shape and np.all(np.isfinite(out))
    if kind == "dynamic_int8" and interpreter == "tflite-runtime":
        # Its per-channel hybrid FULLY_CONNECTED is TFLite 2.17's; 2.14 runs it with wrong
        # numbers (see the min_runtime test below): only that it runs is claimed here.
        return
    np.testing.assert_allclose(out, reference, atol=TOLERANCE[kind])


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_dynamic_int8_declares_the_runtime_its_hybrid_kernels_need(name: str) -> None:
    """tflite-runtime 2.14 loads dynamic_wi8_afp32's per-channel hybrid FULLY_CONNECTED and
    computes wrong numbers; the registry's runtime floor keeps it off such devices."""
    assert inspect_model(variant(name, "dynamic_int8")).min_runtime == "2.17.0"
    for kind in ("float16", "weight_only_int8", "int8"):
        assert version_key(inspect_model(variant(name, kind)).min_runtime) <= version_key("2.14.0")


@pytest.mark.parametrize(("name", "kind", "at_most"), [
    ("cnn", "float16", 0.55),
    *[("cnn", kind, 0.5) for kind in QUANTIZED],
    ("mlp512", "float16", 0.51),
    *[("mlp512", kind, 0.3) for kind in QUANTIZED],
])
def test_variants_are_smaller_than_the_float_model(name: str, kind: str, at_most: float) -> None:
    assert len(variant(name, kind)) < at_most * len(float_model(name))


def test_int8_variants_take_and_give_int8_tensors_with_their_quantization() -> None:
    info = inspect_model(variant("cnn", "int8"))

    for tensor in (*info.inputs, *info.outputs):
        assert tensor.dtype == "int8"
        assert tensor.quantization is not None and len(tensor.quantization.scale) == 1
    # No conversion is left at the boundary: the kernels read and write int8 themselves.
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(info.operators)


@pytest.mark.parametrize("kind", BUILT_KINDS)
def test_the_same_model_builds_to_the_same_bytes(kind: str) -> None:
    again = build_variant(float_model("cnn"), kind, calibration=calibration("cnn"))
    assert again == variant("cnn", kind)


def test_builds_are_the_same_bytes_in_another_process() -> None:
    """Another process, another hash seed: nothing in the build depends on set or dict order."""
    code = ("import hashlib\nfrom controlplane import modelgen\n"
            "from controlplane.optimize import BUILT_KINDS, build_variant\n"
            "from controlplane.registry.tflite import inspect_model\n"
            "m = modelgen.build_cnn()\n"
            "c = modelgen.calibration_samples(inspect_model(m).inputs, samples=16)\n"
            "for k in BUILT_KINDS:\n"
            "    print(hashlib.sha256(build_variant(m, k, calibration=c)).hexdigest())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONHASHSEED": "12345"})

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [hashlib.sha256(variant("cnn", k)).hexdigest()
                                   for k in BUILT_KINDS]


def test_building_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("build_variant tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for kind in BUILT_KINDS:
        build_variant(float_model("mlp"), kind, calibration=calibration("mlp"))


def test_the_quantizer_prints_no_progress(capfd: pytest.CaptureFixture[str]) -> None:
    # 16 samples through the CNN's operators pass the 100 steps past which 0.10 draws a bar.
    build_variant(float_model("cnn"), "int8", calibration=calibration("cnn"))
    build_variant(float_model("cnn"), "float16")

    captured = capfd.readouterr()
    assert "Calibration" not in captured.err and "it/s" not in captured.err
    assert "Quantiz" not in captured.out + captured.err


# --- recognising what a model is -------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_weight_precision_and_kind_of_each_variant(name: str) -> None:
    assert weight_precision(float_model(name)) == "float32"
    assert variant_kind(float_model(name)) == "float32"
    assert weight_precision(variant(name, "float16")) == "float16"
    for kind in QUANTIZED:
        assert weight_precision(variant(name, kind)) == "int8"
    for kind in BUILT_KINDS:
        assert variant_kind(variant(name, kind)) == kind


def test_recognising_a_model_rejects_bytes_that_are_not_one() -> None:
    with pytest.raises(InvalidModelError):
        weight_precision(b"not a model at all")
    with pytest.raises(InvalidModelError):
        plan_variants(float_model("mlp")[:100], has_calibration=False)


# --- plans -----------------------------------------------------------------------------------


def actions(plan: list[Planned]) -> dict[str, str]:
    assert [p.kind for p in plan] == list(KINDS)
    assert [p.action for p in plan].count("upload") == 1
    return {p.kind: p.action for p in plan}


def test_a_float32_upload_builds_every_kind_and_int8_only_with_calibration() -> None:
    with_data = plan_variants(float_model("cnn"), has_calibration=True)
    without = plan_variants(float_model("cnn"), has_calibration=False)

    assert actions(with_data) == {"float32": "upload", "float16": "build", "dynamic_int8": "build",
                                  "weight_only_int8": "build", "int8": "build"}
    assert actions(without) == {**actions(with_data), "int8": "skip"}
    assert without[-1] == Planned("int8", "skip", "needs calibration data")


def test_a_float16_upload_is_the_reference_and_gets_no_other_variant() -> None:
    plan = plan_variants(variant("cnn", "float16"), has_calibration=True)

    assert actions(plan) == {"float32": "skip", "float16": "upload", "dynamic_int8": "skip",
                             "weight_only_int8": "skip", "int8": "skip"}
    reasons = {p.kind: p.reason for p in plan}
    assert "larger" in reasons["float32"]
    assert "leaves float16 weights as they are" in reasons["dynamic_int8"]
    assert "zero point" in reasons["int8"]


@pytest.mark.parametrize("kind", QUANTIZED)
def test_a_quantized_upload_is_the_only_variant(kind: str) -> None:
    plan = plan_variants(variant("cnn", kind), has_calibration=True)

    assert actions(plan) == {k: "upload" if k == kind else "skip" for k in KINDS}
    for p in plan:
        if p.kind != kind:
            assert p.reason == f"the upload is already quantized ({kind})"


def test_building_what_the_plan_skips_answers_with_the_plans_reason() -> None:
    with pytest.raises(VariantBuildError, match=r"the int8 variant: .*zero point") as caught:
        build_variant(variant("cnn", "float16"), "int8", calibration=calibration("cnn"))
    assert caught.value.kind == "int8"
    with pytest.raises(VariantBuildError, match=r"already quantized \(dynamic_int8\)"):
        build_variant(variant("cnn", "dynamic_int8"), "float16")
    with pytest.raises(VariantBuildError, match="the float16 variant: the uploaded model"):
        build_variant(variant("cnn", "float16"), "float16")


# --- what the quantizer does with what the plan refuses ------------------------------------


def quantize_anyway(model: bytes, kind: str) -> bytes:
    """The quantizer's own output for ``kind``, past the plan and unchecked."""
    runs = None
    if kind == "int8":
        runs = {"serving_default": recipes._calibration_runs(
            model, kind, calibration("cnn"), "serving_default")}
    return recipes._quantize(recipes._import_quantizer(), model, kind, runs)


@pytest.mark.parametrize("kind", ["float16", "dynamic_int8", "weight_only_int8"])
def test_the_quantizer_leaves_float16_weights_as_they_are(kind: str) -> None:
    upload = variant("cnn", "float16")
    assert quantize_anyway(upload, kind) == upload


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_quantizer_makes_an_unloadable_int8_model_from_float16_weights(
        interpreter: str, tmp_path: Path) -> None:
    upload = variant("cnn", "float16")
    made = quantize_anyway(upload, "int8")

    with pytest.raises(VariantBuildError, match=r"ai-edge-litert cannot load.*zero_point"):
        recipes._check_result(upload, made, "int8", inspect_model(upload).operators)
    with pytest.raises(InvalidModelError, match="could not load"):
        run(made, interpreter, sample_input(made), tmp_path)


def test_the_quantizer_reads_int8_weights_as_raw_integers_for_float16(tmp_path: Path) -> None:
    upload = variant("mlp", "dynamic_int8")
    made = quantize_anyway(upload, "float16")
    x = sample_input(upload)

    wrong = run(made, "ai-edge-litert", x, tmp_path)
    right = run(upload, "ai-edge-litert", x, tmp_path)
    assert np.abs(wrong - right).max() > 0.1


# --- models the quantizer cannot handle ------------------------------------------------------


def with_conv3d(m: schema.ModelT) -> None:
    """The MLP's graph replaced by one CONV_3D, an operator ai-edge-quantizer 0.10 does not list:
    features (1, 2, 4, 4, 1) -> scores (1, 2, 4, 4, 4)."""
    subgraph = m.subgraphs[0]
    x, weights, bias, y = (subgraph.tensors[i] for i in (0, 2, 3, len(subgraph.tensors) - 1))
    x.shape, y.shape = [1, 2, 4, 4, 1], [1, 2, 4, 4, 4]
    weights.shape, bias.shape = [1, 3, 3, 1, 4], [4]   # [depth, height, width, in, out]
    rng = np.random.default_rng(3)
    for tensor, values in ((weights, rng.normal(0.0, 0.5, 36)), (bias, rng.normal(0.0, 0.1, 4))):
        m.buffers[tensor.buffer].data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
    subgraph.tensors, subgraph.inputs, subgraph.outputs = [x, weights, bias, y], [0], [3]

    options = schema.Conv3DOptionsT()
    options.padding = schema.Padding.SAME
    options.strideD = options.strideH = options.strideW = 1
    options.dilationDFactor = options.dilationHFactor = options.dilationWFactor = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.Conv3DOptions, options
    subgraph.operators = [op]
    code = schema.OperatorCodeT()
    code.builtinCode, code.version = schema.BuiltinOperator.CONV_3D, 1
    code.deprecatedBuiltinCode = 127   # the placeholder for codes past the old int8 field
    m.operatorCodes = [code]
    signature = m.signatureDefs[0]
    signature.inputs[0].tensorIndex, signature.outputs[0].tensorIndex = 0, 3


def with_log_softmax(m: schema.ModelT) -> None:
    """The MLP's SOFTMAX made a LOG_SOFTMAX, an operator ai-edge-quantizer 0.10 does not list."""
    for code in m.operatorCodes:
        if code.builtinCode == schema.BuiltinOperator.SOFTMAX:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.LOG_SOFTMAX
    op = m.subgraphs[0].operators[-1]
    op.builtinOptionsType = schema.BuiltinOptions.LogSoftmaxOptions
    op.builtinOptions = schema.LogSoftmaxOptionsT()


@pytest.fixture(scope="module")
def conv3d() -> bytes:
    return modelgen.edit_model(modelgen.build_mlp(), with_conv3d)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_conv3d_model_runs_in_the_interpreters(conv3d: bytes, interpreter: str,
                                                   tmp_path: Path) -> None:
    assert inspect_model(conv3d).operators == ("CONV_3D",)
    assert run(conv3d, interpreter, sample_input(conv3d), tmp_path).shape == (1, 2, 4, 4, 4)


@pytest.mark.parametrize(("kind", "why"), [
    ("float16", "changed nothing"),
    ("dynamic_int8", "changed nothing"),
    ("weight_only_int8", "changed nothing"),
    # It wraps the float CONV_3D in QUANTIZE/DEQUANTIZE: int8 tensors, no integer kernel.
    ("int8", "quantized none of this model's operators .*the result is a float32 model"),
])
def test_a_model_of_operators_the_quantizer_lacks_makes_no_variant(
        conv3d: bytes, kind: str, why: str) -> None:
    samples = modelgen.calibration_samples(inspect_model(conv3d).inputs, samples=4)

    with pytest.raises(VariantBuildError, match=f"the {kind} variant: .*{why}") as caught:
        build_variant(conv3d, kind, calibration=samples)
    assert caught.value.kind == kind
    assert "CONV_3D" in str(caught.value)


@pytest.mark.parametrize("kind", BUILT_KINDS)
def test_an_operator_the_quantizer_lacks_stays_float_beside_quantized_ones(
        kind: str, tmp_path: Path) -> None:
    model = modelgen.edit_model(modelgen.build_mlp(), with_log_softmax)
    samples = modelgen.calibration_samples(inspect_model(model).inputs, samples=16)

    built = build_variant(model, kind, calibration=samples)

    assert variant_kind(built) == kind
    if kind == "int8":
        assert {"DEQUANTIZE", "LOG_SOFTMAX", "QUANTIZE"} <= set(inspect_model(built).operators)
    x = sample_input(model)
    np.testing.assert_allclose(run(built, "ai-edge-litert", x, tmp_path),
                               run(model, "ai-edge-litert", x, tmp_path), atol=0.05)


def test_a_model_the_quantizer_refuses_is_a_bounded_variant_build_error() -> None:
    def same_name_twice(m: schema.ModelT) -> None:
        for tensor in m.subgraphs[0].tensors:
            if tensor.name.endswith(b"/weights"):
                tensor.name = b"w" * 2000
    model = modelgen.edit_model(modelgen.build_mlp(), same_name_twice)

    with pytest.raises(VariantBuildError, match=r"dynamic_int8 variant: ai-edge-quantizer failed: "
                                                r"ValueError: Tensor name w+") as caught:
        build_variant(model, "dynamic_int8")
    assert len(str(caught.value)) < MAX_REASON_CHARS + 100


def test_a_result_the_registry_refuses_is_a_variant_build_error() -> None:
    """A NaN weight gets a NaN scale, which inspect_model (and XNNPACK) refuse."""
    def nan_weight(m: schema.ModelT) -> None:
        tensor = next(t for t in m.subgraphs[0].tensors if t.name == b"hidden/weights")
        values = np.frombuffer(bytes(m.buffers[tensor.buffer].data), "<f4").copy()
        values[3] = np.nan
        m.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)

    with pytest.raises(VariantBuildError, match=r"registry refuses: .*non-finite"):
        build_variant(modelgen.edit_model(modelgen.build_mlp(), nan_weight), "dynamic_int8")


# --- calibration and arguments ---------------------------------------------------------------


def test_calibration_is_keyed_by_tensor_name_whatever_the_signature_calls_it() -> None:
    def rename_signature_input(m: schema.ModelT) -> None:
        m.signatureDefs[0].inputs[0].name = b"x"
    model = modelgen.edit_model(float_model("mlp"), rename_signature_input)

    built = build_variant(model, "int8", calibration=calibration("mlp"))
    assert variant_kind(built) == "int8"


def test_calibration_is_cast_to_the_inputs_type() -> None:
    as_float64 = {name: a.astype(np.float64) for name, a in calibration("mlp").items()}
    built = build_variant(float_model("mlp"), "int8", calibration=as_float64)
    assert built == variant("mlp", "int8")


def test_int8_needs_the_signature_it_calibrates_through() -> None:
    def no_signatures(m: schema.ModelT) -> None:
        m.signatureDefs = []
    model = modelgen.edit_model(float_model("mlp"), no_signatures)

    with pytest.raises(VariantBuildError, match=r"signature 'serving_default'.*signatures: none"):
        build_variant(model, "int8", calibration=calibration("mlp"))
    with pytest.raises(VariantBuildError, match=r"signature 'other'.*'serving_default'"):
        build_variant(float_model("mlp"), "int8", calibration=calibration("mlp"),
                      signature_key="other")


@pytest.mark.parametrize(("kind", "message"), [
    ("int4", "cannot build kind 'int4'"),
    ("float32", "float32 is the upload itself"),
    ("int8", "needs calibration data"),
])
def test_misuse_is_a_value_error(kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_variant(float_model("mlp"), kind)


@pytest.mark.parametrize(("samples", "message"), [
    ({"other": np.zeros((4, 1, 16), np.float32)}, "takes exactly"),
    ({"features": np.zeros((4, 1, 15), np.float32)}, "shape"),
    ({"features": np.zeros((0, 1, 16), np.float32)}, "at least 1"),
])
def test_calibration_that_does_not_fit_is_a_value_error(
        samples: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_variant(float_model("mlp"), "int8", calibration=samples)


def test_without_the_optimize_extra_plans_work_and_builds_say_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    float16 = variant("mlp", "float16")   # built while the quantizer is still there
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)   # import fails as if absent

    assert actions(plan_variants(float_model("mlp"), has_calibration=False))["float16"] == "build"
    assert weight_precision(float16) == "float16"
    with pytest.raises(QuantizerNotInstalledError, match=r"pip install 'edgefleet\[optimize\]'"):
        build_variant(float_model("mlp"), "float16")


def test_importing_the_domain_does_not_import_the_quantizer() -> None:
    code = ("import sys\nimport controlplane.optimize\n"
            "assert 'ai_edge_quantizer' not in sys.modules, 'imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_errors_are_in_their_categories() -> None:
    assert issubclass(VariantBuildError, errors.InvalidArgumentError)
    assert not issubclass(VariantBuildError, InvalidModelError)
    assert issubclass(QuantizerNotInstalledError, errors.ConfigurationError)
