"""Which optimized variants a pushed model gets, and building one with ai-edge-quantizer 0.10.

A model version has up to one variant of each of ``KINDS``. One of them is the upload itself
(its kind is what ``variant_kind`` recognises in the bytes); ``plan_variants`` says for each
other kind whether it is built from the upload or skipped, and why; ``build_variant`` makes the
bytes of one planned variant. Nothing here touches a database, a file or the network.

Invariants:
- ``variant_kind``, ``weight_precision`` and ``plan_variants`` read the flatbuffer only (after
  ``inspect_model``, the registry's gate, has validated it): they never run the model and never
  import ai-edge-quantizer, which is the optional ``optimize`` extra.
- ``plan_variants`` returns one ``Planned`` per kind, in ``KINDS`` order, exactly one of them
  "upload". It is the one policy: ``build_variant`` builds only what the plan says "build" and
  answers anything else with the plan's own reason.
- ``build_variant`` is deterministic (the same bytes and calibration give the same bytes;
  calibration runs on one thread) and returns only a model that differs from its input, passes
  ``inspect_model``, is of the kind asked (``variant_kind`` of the result is ``kind``) and loads
  in ai-edge-litert. The quantizer's progress bars and reports are kept off the console.

What ai-edge-quantizer 0.10 does, found by trying it (``tests/optimize`` pins each of these):
- It quantizes the operators it supports and leaves every other one float, silently. The weight
  kinds touch only weighted kernels (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D,
  TRANSPOSE_CONV, EMBEDDING_LOOKUP; BATCH_MATMUL too for the int8-weight kinds); in an int8
  variant an unsupported operator runs in float between DEQUANTIZE and QUANTIZE operators, which
  is correct, only slower. A model none of whose operators it supports comes back unchanged (or,
  for int8, with no integer kernel at all): ``build_variant`` refuses such a result.
- ``static_wi8_ai8`` (the int8 kind) gives the model int8 input and output tensors, with their
  scale and zero point: no QUANTIZE/DEQUANTIZE is left at the boundary, so callers quantize
  inputs and dequantize outputs with the tensors' parameters (as the agent does).
- ``dynamic_wi8_afp32`` quantizes FULLY_CONNECTED weights per channel, a hybrid kernel that
  TensorFlow Lite implements from 2.17 on; ``inspect_model`` reports min_runtime 2.17.0 for it.
  tflite-runtime 2.14 loads such a model and computes wrong numbers, so the floor matters.
- Weights that are already float16 are left as they are by every int8-weight recipe, and
  ``static_wi8_ai8`` turns them into int8 weights with a non-zero zero point that the int8
  CONV_2D/FULLY_CONNECTED kernels refuse to load: a float16 upload gets no other variant.
- Weights that are already int8 are read as raw integers by the float16 recipe (the result runs
  and is wrong): a quantized upload is never quantized again.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from controlplane.config import VARIANT_KINDS
from controlplane.optimize.errors import QuantizerNotInstalledError, VariantBuildError
from controlplane.registry.errors import InvalidModelError
from controlplane.registry.tflite import inspect_model
from protos.contract.interpreters import import_interpreter

#: Every variant kind, the reference first: "float32" is never built, only uploaded.
KINDS = VARIANT_KINDS   # written once, in the settings that choose among them

Action = Literal["upload", "build", "skip"]

#: The kinds ``build_variant`` makes from a float32 model, and how (a plan's "build" reason).
_BUILT: dict[str, str] = {
    "float16": "float16 weights, float kernels (ai-edge-quantizer float casting)",
    "dynamic_int8": "int8 weights, float activations quantized at run time (dynamic_wi8_afp32)",
    "weight_only_int8": "int8 weights dequantized before float kernels (weight_only_wi8_afp32)",
    "int8": "int8 weights and activations, calibrated (static_wi8_ai8)",
}
BUILT_KINDS = tuple(_BUILT)

_NEEDS_CALIBRATION = "needs calibration data"
# Why a float16 upload gets no other variant (what 0.10 does with such input; tests pin it).
_UNCHANGED_FROM_FLOAT16 = ("ai-edge-quantizer 0.10 leaves float16 weights as they are: the "
                           "result would be the upload itself")
_FROM_FLOAT16: dict[str, str] = {
    "float32": "the upload's weights are float16: a float32 copy would only be larger, with the "
               "same numbers",
    "dynamic_int8": _UNCHANGED_FROM_FLOAT16,
    "weight_only_int8": _UNCHANGED_FROM_FLOAT16,
    "int8": "ai-edge-quantizer 0.10 cannot make a full-integer model from float16 weights: it "
            "writes int8 weights with a non-zero zero point, which the int8 kernels refuse",
}

_T = schema.TensorType
_OP = schema.BuiltinOperator
# Integer types a quantized constant (weights) or a quantized activation is stored in.
_INT_WEIGHT_TYPES = frozenset({_T.INT8, _T.UINT8, _T.INT4, _T.INT2, _T.UINT4})
_INT_ACTIVATION_TYPES = frozenset({_T.INT8, _T.UINT8, _T.INT16})
# Operators that only convert between float and integer: an integer tensor they read does not
# make the model integer (a float kernel may sit between them).
_CONVERSIONS = frozenset({_OP.QUANTIZE, _OP.DEQUANTIZE})
# What a tensor's role makes the model, strongest first (see ``variant_kind``).
_KIND_BY_ROLE = (("integer_activation", "int8"), ("direct_int_weight", "dynamic_int8"),
                 ("dequantized_int_weight", "weight_only_int8"), ("float16_weight", "float16"))
_PRECISION = {"float32": "float32", "float16": "float16"}   # every other kind: "int8"
_NUMPY_TYPES = {_T.FLOAT32: np.float32, _T.FLOAT16: np.float16, _T.FLOAT64: np.float64,
                _T.INT8: np.int8, _T.UINT8: np.uint8, _T.INT16: np.int16, _T.INT32: np.int32,
                _T.INT64: np.int64, _T.BOOL: np.bool_}


@dataclass(frozen=True)
class Planned:
    """What happens to one kind of variant: the upload is it, it is built, or it is skipped."""

    kind: str
    action: Action
    reason: str


def variant_kind(model: bytes) -> str:
    """Which of ``KINDS`` these bytes are, from their tensors (the model is not run).

    "int8": a compute operator (not QUANTIZE/DEQUANTIZE) reads a quantized integer activation
    (full-integer models, int8, uint8 or int16 activations, whatever their input and output
    types). Else "dynamic_int8": a
    quantized integer constant feeds a compute operator directly (hybrid kernels, float
    activations). Else "weight_only_int8": quantized integer constants feed DEQUANTIZE operators
    only. Else "float16": float16 constants feed DEQUANTIZE operators. Else "float32".

    Raises:
        InvalidModelError: the bytes are not a TFLite model the registry accepts.
    """
    model = bytes(model)
    inspect_model(model)   # the registry's gate: every index ``_kind`` follows is in range
    return _kind(model)


def weight_precision(model: bytes) -> str:
    """What the model's constant weights already are: "float32", "float16" or "int8".

    "int8" stands for every integer-quantized model: dynamic-range, weight-only and
    full-integer ones (integer activations), and the rare narrower (int4) weights too.

    Raises:
        InvalidModelError: the bytes are not a TFLite model the registry accepts.
    """
    return _PRECISION.get(variant_kind(model), "int8")


def plan_variants(model: bytes, *, has_calibration: bool) -> list[Planned]:
    """For each of ``KINDS``, in order: the upload itself, built from it, or skipped (and why).

    - A float32 upload is the float32 variant; float16, dynamic_int8 and weight_only_int8 are
      built; int8 is built when calibration data came with it, else skipped ("needs
      calibration data").
    - A float16 upload is the float16 variant, and the reference; no other is made (a float32
      one would only be larger; see the module's notes for the int8 kinds).
    - An integer-quantized upload is its own kind's variant and the only one: the others are
      skipped, "the upload is already quantized (KIND)".

    Raises:
        InvalidModelError: the bytes are not a TFLite model the registry accepts.
    """
    upload = variant_kind(model)
    return [_plan(kind, upload, has_calibration=has_calibration) for kind in KINDS]


def _plan(kind: str, upload: str, *, has_calibration: bool) -> Planned:
    if kind == upload:
        return Planned(kind, "upload", "the uploaded model")
    if upload == "float16":
        return Planned(kind, "skip", _FROM_FLOAT16[kind])
    if upload != "float32":
        return Planned(kind, "skip", f"the upload is already quantized ({upload})")
    if kind == "int8" and not has_calibration:
        return Planned(kind, "skip", _NEEDS_CALIBRATION)
    return Planned(kind, "build", _BUILT[kind])


def build_variant(
    model: bytes,
    kind: str,
    *,
    calibration: Mapping[str, np.ndarray] | None = None,
    signature_key: str = "serving_default",
) -> bytes:
    """The bytes of ``kind``'s variant of ``model``, made by ai-edge-quantizer 0.10.

    ``kind`` is one of ``BUILT_KINDS``. ``calibration`` (used by "int8" only, which needs it) is
    the project's layout: ``{input_name: (N, *input_shape)}``, one array per input of the
    ``signature_key`` signature, named as the tensors are. Operators the quantizer does not
    support stay float (see the module's notes); a result with nothing quantized is refused.

    Raises:
        ValueError: an unknown kind, "float32" (the upload itself, never built), "int8" without
            calibration, or calibration that does not fit the signature's inputs.
        InvalidModelError: the bytes are not a TFLite model the registry accepts.
        VariantBuildError: this variant cannot be made from this model: the plan skips it, the
            quantizer failed, changed nothing, or wrote a model that is not of this kind or
            that ai-edge-litert cannot load. The message says which, with the tool's reason.
        QuantizerNotInstalledError: the ``optimize`` extra is not installed here.
    """
    if kind not in _BUILT:
        raise ValueError(f"cannot build kind {kind!r}: build one of {', '.join(BUILT_KINDS)}"
                         " (float32 is the upload itself)")
    if kind == "int8" and calibration is None:
        raise ValueError("the int8 variant needs calibration data (calibration=...)")
    model = bytes(model)
    info = inspect_model(model)
    planned = _plan(kind, _kind(model), has_calibration=calibration is not None)
    if planned.action != "build":
        raise VariantBuildError(kind, planned.reason)
    runs = None
    if kind == "int8" and calibration is not None:
        runs = {signature_key: _calibration_runs(model, kind, calibration, signature_key)}
    result = _quantize(_import_quantizer(), model, kind, runs)
    _check_result(model, result, kind, info.operators)
    return result


# --- reading the flatbuffer ----------------------------------------------------------------


def _kind(model: bytes) -> str:
    """``variant_kind`` of bytes ``inspect_model`` has accepted."""
    found = _roles(model)
    return next((kind for role, kind in _KIND_BY_ROLE if role in found), "float32")


def _roles(model: bytes) -> set[str]:
    """The roles integer and float16 tensors play in ``model`` (see ``_role``)."""
    root = schema.Model.GetRootAs(model, 0)
    constant = [_has_data(root.Buffers(i)) for i in range(root.BuffersLength())]
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        codes.append(max(code.DeprecatedBuiltinCode(), code.BuiltinCode()))
    found: set[str] = set()
    for s in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            if op.InputsIsNone():
                continue
            for index in op.InputsAsNumpy():
                if index >= 0:   # -1: an optional input left out
                    tensor = subgraph.Tensors(int(index))
                    role = _role(codes[op.OpcodeIndex()], tensor, constant[tensor.Buffer()])
                    if role:
                        found.add(role)
    return found


def _role(code: int, tensor: schema.Tensor, is_constant: bool) -> str | None:
    """What ``tensor`` says about the model as an input of an operator with builtin ``code``."""
    dtype = tensor.Type()
    if is_constant:
        if dtype == _T.FLOAT16 and code == _OP.DEQUANTIZE:
            return "float16_weight"
        if dtype in _INT_WEIGHT_TYPES and _is_quantized(tensor):
            return "dequantized_int_weight" if code == _OP.DEQUANTIZE else "direct_int_weight"
    elif (dtype in _INT_ACTIVATION_TYPES and _is_quantized(tensor)
          and code not in _CONVERSIONS):
        return "integer_activation"
    return None


def _is_quantized(tensor: schema.Tensor) -> bool:
    q = tensor.Quantization()
    return q is not None and q.ScaleLength() > 0


def _has_data(buffer: schema.Buffer) -> bool:
    # Offsets 0 and 1 mean "no external data" (models past 2 GB keep constants outside).
    return buffer.DataLength() > 0 or buffer.Offset() > 1


@dataclass(frozen=True)
class _Input:
    """One input of a signature: its name there, and its tensor's shape and numpy type."""

    name: str
    shape: tuple[int, ...]
    dtype: Any   # None where numpy has no such type


def _signature_inputs(model: bytes, kind: str, signature_key: str) -> dict[str, _Input]:
    """The inputs of signature ``signature_key``, keyed by tensor name: the calibration file
    names tensors, the quantizer's runs name signature inputs."""
    root = schema.Model.GetRootAs(model, 0)
    signatures = {_text(root.SignatureDefs(i).SignatureKey()): root.SignatureDefs(i)
                  for i in range(root.SignatureDefsLength())}
    signature = signatures.get(signature_key)
    if signature is None:
        raise VariantBuildError(
            kind, f"calibration runs through the model's signature {signature_key!r}, which it "
                  f"does not have (signatures: {', '.join(map(repr, signatures)) or 'none'})")
    # inspect_model checks subgraphs and operators, not signatures: check these indices here.
    if not 0 <= signature.SubgraphIndex() < root.SubgraphsLength():
        raise VariantBuildError(kind, f"signature {signature_key!r} names a missing subgraph")
    subgraph = root.Subgraphs(signature.SubgraphIndex())
    inputs = {}
    for j in range(signature.InputsLength()):
        entry = signature.Inputs(j)
        if not 0 <= entry.TensorIndex() < subgraph.TensorsLength():
            raise VariantBuildError(kind, f"signature {signature_key!r} names a missing tensor")
        tensor = subgraph.Tensors(entry.TensorIndex())
        shape = () if tensor.ShapeIsNone() else tuple(int(d) for d in tensor.ShapeAsNumpy())
        inputs[_text(tensor.Name())] = _Input(_text(entry.Name()), shape,
                                              _NUMPY_TYPES.get(tensor.Type()))
    return inputs


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace")


def _calibration_runs(model: bytes, kind: str, calibration: Mapping[str, np.ndarray],
                      signature_key: str) -> list[dict[str, np.ndarray]]:
    """``calibration`` as the quantizer takes it: one {signature input: sample} per sample, in
    the input's own type (the registry accepts any numeric calibration array; the interpreter
    that calibrates takes only its input's type)."""
    inputs = _signature_inputs(model, kind, signature_key)
    if set(calibration) != set(inputs):
        raise ValueError(f"calibration holds arrays {sorted(calibration)[:10]}; signature "
                         f"{signature_key!r} takes exactly {sorted(inputs)}")
    arrays = {name: np.asarray(calibration[name]) for name in inputs}
    counts = {a.shape[0] if a.ndim else 0 for a in arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError("calibration needs the same number (at least 1) of samples per input, "
                         f"got {sorted(counts)}")
    for name, spec in inputs.items():
        if arrays[name].shape[1:] != spec.shape:
            raise ValueError(f"calibration for {name!r} has samples of shape "
                             f"{arrays[name].shape[1:]}, the input's shape is {spec.shape}")
        if spec.dtype is not None:
            arrays[name] = arrays[name].astype(spec.dtype, copy=False)
    return [{inputs[name].name: array[i] for name, array in arrays.items()}
            for i in range(counts.pop())]


# --- running the quantizer -----------------------------------------------------------------


@dataclass(frozen=True)
class _Quantizer:
    """The modules of ai-edge-quantizer this module uses (imported only to build)."""

    quantizer: Any
    recipe: Any
    recipe_manager: Any
    qtyping: Any
    algorithm_manager: Any


def _import_quantizer() -> _Quantizer:
    try:
        from ai_edge_quantizer import (
            algorithm_manager,
            qtyping,
            quantizer,
            recipe,
            recipe_manager,
        )
    except ImportError as exc:
        raise QuantizerNotInstalledError(
            "building optimized variants needs ai-edge-quantizer, which is not installed "
            f"here: pip install 'edgefleet[optimize]' ({exc})") from exc
    return _Quantizer(quantizer, recipe, recipe_manager, qtyping, algorithm_manager)


def _recipe(aeq: _Quantizer, kind: str) -> Any:
    if kind == "float16":
        # No ready-made recipe for float16: weight-only at 16 bits with float casting is one.
        manager = aeq.recipe_manager.RecipeManager()
        manager.add_weight_only_config(
            regex=".*", operation_name=aeq.qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
            algorithm_key=aeq.algorithm_manager.AlgorithmName.FLOAT_CASTING)
        return manager.get_quantization_recipe()
    ready = {"dynamic_int8": aeq.recipe.dynamic_wi8_afp32,
             "weight_only_int8": aeq.recipe.weight_only_wi8_afp32,
             "int8": aeq.recipe.static_wi8_ai8}
    return ready[kind]()


def _quantize(aeq: _Quantizer, model: bytes, kind: str,
              calibration: dict[str, list[dict[str, np.ndarray]]] | None) -> bytes:
    """Run the quantizer; whatever it raises becomes a ``VariantBuildError`` with its reason."""
    try:
        with _quiet():
            q = aeq.quantizer.Quantizer(bytearray(model), _recipe(aeq, kind))
            # One thread: the ranges, and so the bytes, never depend on the machine.
            ranges = None if calibration is None else q.calibrate(calibration, num_threads=1)
            result = q.quantize(ranges, enable_progress_bar=False, enable_progress_report=False)
    except MemoryError:
        raise   # the machine's limit, not the model's
    except Exception as exc:
        # 0.10 documents no set of errors: duplicate tensor names are a ValueError, shapes it did
        # not expect fail deep inside. Any of them is deterministic for these bytes.
        raise VariantBuildError(
            kind, f"ai-edge-quantizer failed: {type(exc).__name__}: {exc}") from exc
    if result.quantized_model is None:
        raise VariantBuildError(kind, "ai-edge-quantizer returned no model")
    return bytes(result.quantized_model)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the quantizer's console output out of the worker's logs.

    0.10's calibration draws a tqdm bar on stderr with no switch to turn it off (it appears once
    a run visits 100 operators). Its warnings (its calibrating interpreter keeps every tensor,
    on purpose; a NaN weight casts badly) are not the verdict either: ``_check_result`` is.
    Both switches are process-wide, as a worker is.
    """
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _check_result(model: bytes, result: bytes, kind: str, operators: tuple[str, ...]) -> None:
    """Refuse a result that is not a new, valid, loadable model of ``kind``."""
    ops = ", ".join(operators)
    if result == model:
        raise VariantBuildError(
            kind, f"ai-edge-quantizer changed nothing: it quantizes none of this model's "
                  f"operators ({ops}) this way")
    try:
        inspect_model(result)
    except InvalidModelError as exc:
        raise VariantBuildError(
            kind, f"ai-edge-quantizer wrote a model the registry refuses: {exc}") from exc
    made = _kind(result)
    if made != kind:
        raise VariantBuildError(
            kind, f"ai-edge-quantizer quantized none of this model's operators ({ops}) this "
                  f"way: the result is a {made} model")
    try:
        # Imported here, not at the top: planning (in the worker's own process) needs no
        # interpreter, and building runs in a child (optimize.build).
        litert = import_interpreter("ai-edge-litert").cls
        litert(model_content=result, num_threads=1).allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise VariantBuildError(
            kind, f"ai-edge-litert cannot load what ai-edge-quantizer wrote: {exc}") from exc
