"""Read and validate a TFLite flatbuffer without running it: signature, operators, runtime floor.

``inspect_model(data)`` is the registry's gate for uploaded bytes. It either returns a
``ModelInfo`` or raises ``InvalidModelError`` with a message a person can act on; on hostile
input (random bytes, truncations, forged offsets) it raises nothing else and never loops for
longer than the size of the input allows. It does not run the model (``measure`` does that).

What is checked: the file is non-empty and carries the ``TFL3`` identifier at bytes 4..8; the
schema version is 3; the flatbuffer parses (any parse failure is wrapped); there is at least one
subgraph and the main one (index 0) has inputs and outputs with unique, non-empty names; every
tensor's buffer index, dtype and shape are valid; every buffer's data lies inside the file,
including the offset/size buffers of models stored past 2 GB; a constant tensor's buffer holds
at least the bytes its shape needs; every operator refers to existing operator codes and tensors.

``min_runtime`` is the oldest TensorFlow Lite runtime release (tflite-runtime numbering, e.g.
"2.14.0") that implements every operator at the version the model needs. The needed version is
the larger of the version the file declares and the version implied by the operator's tensor
types, because some tools (ai-edge-quantizer 0.10 among them) write version 1 for hybrid and
quantized kernels that only newer runtimes implement. Versions map to releases through
``_RUNTIME_BY_OP_VERSION``, a subset of TensorFlow Lite's own runtime_version table; nothing is
reported below ``RUNTIME_FLOOR``; anything the table does not know is reported as
``RUNTIME_UNKNOWN_OP`` (the newest release the table names), which keeps the answer
conservative: a device is never told it can run what we cannot vouch for. A model's own
``min_runtime_version`` metadata, when present, is honoured too. The floor is a promise about
operator support only; correctness on a given runtime is proven on the device (golden samples).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ai_edge_litert import schema_py_generated as schema

from controlplane.registry.errors import InvalidModelError
from protos.contract.documents import Quantization, TensorSpec
from protos.contract.versions import is_version, version_key

FILE_IDENTIFIER = b"TFL3"
SUPPORTED_SCHEMA_VERSION = 3
RUNTIME_FLOOR = "2.3.0"
RUNTIME_UNKNOWN_OP = "2.23.0"

_T = schema.TensorType
# numpy's names where numpy has the type, ml_dtypes' names for the narrow float/int types.
_DTYPE_NAMES: dict[int, str] = {
    _T.FLOAT32: "float32", _T.FLOAT16: "float16", _T.INT32: "int32", _T.UINT8: "uint8",
    _T.INT64: "int64", _T.STRING: "bytes", _T.BOOL: "bool", _T.INT16: "int16",
    _T.COMPLEX64: "complex64", _T.INT8: "int8", _T.FLOAT64: "float64",
    _T.COMPLEX128: "complex128", _T.UINT64: "uint64", _T.RESOURCE: "resource",
    _T.VARIANT: "variant", _T.UINT32: "uint32", _T.UINT16: "uint16", _T.INT4: "int4",
    _T.BFLOAT16: "bfloat16", _T.INT2: "int2", _T.UINT4: "uint4",
    _T.FLOAT8_E4M3FN: "float8_e4m3fn", _T.FLOAT8_E5M2: "float8_e5m2",
}
# Bytes per element, for the types whose constant buffers have a fixed size per element.
_ITEM_SIZES: dict[int, int] = {
    _T.FLOAT32: 4, _T.FLOAT16: 2, _T.INT32: 4, _T.UINT8: 1, _T.INT64: 8, _T.BOOL: 1,
    _T.INT16: 2, _T.COMPLEX64: 8, _T.INT8: 1, _T.FLOAT64: 8, _T.COMPLEX128: 16, _T.UINT64: 8,
    _T.UINT32: 4, _T.UINT16: 2, _T.BFLOAT16: 2, _T.FLOAT8_E4M3FN: 1, _T.FLOAT8_E5M2: 1,
}
# Narrow types old runtimes lack; only ops with a type rule in ``_implied_version`` get a floor.
_NARROW_TYPES = frozenset({_T.INT4, _T.INT2, _T.UINT4, _T.BFLOAT16, _T.FLOAT8_E4M3FN,
                           _T.FLOAT8_E5M2})

_OPS_WITH_TYPE_RULES = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D",
                                   "DEQUANTIZE", "QUANTIZE"})

_OP_NAMES: dict[int, str] = {
    code: name for name, code in vars(schema.BuiltinOperator).items()
    if name.isupper() and isinstance(code, int)
}
_CUSTOM = schema.BuiltinOperator.CUSTOM
# Builtin codes below this existed before the extended ``builtin_code`` field (TF 2.4).
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# Release that first implements version N of an op, at index N-1 (TensorFlow Lite's
# tools/versioning/runtime_version table, for the ops common in vision and MLP models and in
# quantized variants). Ops absent here count only at version 1 and codes below 127.
_RUNTIME_BY_OP_VERSION: dict[str, tuple[str, ...]] = {
    "ADD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0", "2.13.0", "2.23.0"),
    "ARG_MAX": ("1.9.0", "1.14.0", "2.9.0"),
    "AVERAGE_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "BATCH_MATMUL": ("2.3.0", "2.3.0", "2.4.0", "2.5.0"),
    "CAST": ("1.5.0", "2.7.0", "2.8.0", "2.9.0", "2.12.0", "2.15.0", "2.17.0", "2.21.0"),
    "CONCATENATION": ("1.5.0", "1.14.0", "2.3.0", "2.14.0", "2.21.0"),
    "CONV_2D": ("1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0", "2.11.0", "2.15.0"),
    "CUMSUM": ("2.4.0",),
    "DEPTHWISE_CONV_2D": ("1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0", "2.11.0"),
    "DEQUANTIZE": ("1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0", "2.18.0", "2.21.0",
                   "2.22.0"),
    "DIV": ("1.6.0", "2.3.0"),
    "EXP": ("1.7.0", "2.12.0"),
    "EXPAND_DIMS": ("1.10.0",),
    "FULLY_CONNECTED": ("1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0",
                        "2.3.0", "2.3.0", "2.11.0", "2.15.0", "2.17.0", "2.18.0", "2.21.0"),
    "GATHER": ("1.6.0", "1.14.0", "1.15.0", "2.4.0", "2.5.0", "2.13.0", "2.15.0"),
    "GELU": ("2.9.0", "2.9.0"),
    "HARD_SWISH": ("1.15.0",),
    "LEAKY_RELU": ("1.13.1", "2.3.0"),
    "LOGISTIC": ("1.14.0", "1.14.0", "2.3.0"),
    "MAX_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "MAXIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MEAN": ("1.6.0", "1.14.0", "2.4.0"),
    "MINIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MUL": ("1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0", "2.11.0", "2.13.0", "2.23.0"),
    "PACK": ("1.11.0", "1.14.0", "2.3.0", "2.13.0"),
    "PAD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0", "2.20.0"),
    "PADV2": ("1.9.0", "1.14.0", "2.4.0", "2.6.0", "2.20.0"),
    "QUANTIZE": ("1.14.0", "1.15.0", "2.7.0", "2.21.0", "2.21.0", "2.21.0"),
    "REDUCE_MAX": ("1.11.0", "1.14.0", "2.5.0"),
    "RELU": ("1.5.0", "2.1.0", "2.5.0"),
    "RELU6": ("1.5.0", "1.14.0", "2.5.0"),
    "RESHAPE": ("1.5.0",),
    "RESIZE_BILINEAR": ("1.7.0", "1.14.0", "2.2.0", "2.5.0"),
    "RESIZE_NEAREST_NEIGHBOR": ("1.13.1", "1.14.0", "2.3.0", "2.4.0"),
    "RSQRT": ("1.10.0", "2.5.0", "2.15.0"),
    "SLICE": ("1.14.0", "1.14.0", "1.14.0", "2.4.0", "2.5.0", "2.14.0", "2.21.0"),
    "SOFTMAX": ("1.5.0", "1.14.0", "2.3.0"),
    "SPLIT": ("1.5.0", "1.14.0", "1.14.0", "2.3.0"),
    "SQRT": ("1.10.0", "2.21.0"),
    "SQUEEZE": ("1.6.0", "2.5.0"),
    "STRIDED_SLICE": ("1.6.0", "1.14.0", "2.1.0", "2.2.0", "2.5.0", "2.6.0", "2.14.0",
                      "2.14.0"),
    "SUB": ("1.6.0", "1.14.0", "2.3.0", "2.4.0", "2.4.0"),
    "SUM": ("1.10.0", "1.15.0"),
    "TANH": ("1.14.0", "1.14.0", "2.3.0"),
    "TRANSPOSE": ("1.6.0", "1.14.0", "1.15.0", "2.3.0", "2.4.0", "2.12.0", "2.14.4", "2.22.0"),
    "TRANSPOSE_CONV": ("1.9.0", "2.2.0", "2.3.0", "2.13.0", "2.15.0"),
}

# Errors the generated flatbuffer accessors raise on out-of-range or garbled offsets.
_PARSE_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError, KeyError,
                 UnicodeDecodeError, AttributeError)


@dataclass(frozen=True)
class ModelInfo:
    """What the registry records about a model: its signature, operators and runtime floor."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operators: tuple[str, ...]
    schema_version: int
    min_runtime: str
    subgraph_count: int
    # Bytes of every tensor without constant data, over all subgraphs: what an interpreter's
    # arena holds at most (its memory planner shares space between tensors, so often less).
    arena_bytes: int = 0


def inspect_model(data: bytes) -> ModelInfo:
    """Parse and validate a TFLite flatbuffer.

    Raises:
        InvalidModelError: the bytes are not a valid TFLite model; the message says why.
    """
    data = bytes(data)
    if not data:
        raise InvalidModelError("file is empty: expected a TFLite model (.tflite)")
    if len(data) < 8:
        raise InvalidModelError(
            f"file is not a TFLite model: only {len(data)} bytes, too short for a flatbuffer")
    if data[4:8] != FILE_IDENTIFIER:
        raise InvalidModelError(
            "file is not a TFLite model: missing TFL3 identifier at bytes 4..8 "
            "(is it a SavedModel, a Keras file or a compressed archive?)")
    try:
        return _Parser(data).parse()
    except InvalidModelError:
        raise
    except _PARSE_ERRORS as exc:
        raise InvalidModelError(
            "file is not a valid TFLite model: the flatbuffer is truncated or corrupt "
            f"({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: int
    quantization: Quantization | None
    activation_bytes: int = 0     # its size when it has no constant data, else 0


class _Parser:
    """One pass over the flatbuffer through the generated accessors, checking as it goes.

    Every vector length is checked against the file size before it is walked, and every table
    visited spends from a budget proportional to the file size, so tables that alias each other
    cannot make a small file cost quadratic time.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.budget = len(data) // 4 + 64

    def parse(self) -> ModelInfo:
        model = schema.Model.GetRootAs(self.data, 0)
        version = model.Version()
        if version != SUPPORTED_SCHEMA_VERSION:
            raise InvalidModelError(
                f"unsupported TFLite schema version {version}: interpreters load version "
                f"{SUPPORTED_SCHEMA_VERSION}; re-export the model with a current converter")
        buffer_sizes = self._buffer_sizes(model)
        opcodes = self._opcodes(model)
        n_subgraphs = self._length(model.SubgraphsLength(), 4, "subgraphs")
        if n_subgraphs == 0:
            raise InvalidModelError("model has no subgraph: there is nothing to run")

        main_inputs: tuple[TensorSpec, ...] = ()
        main_outputs: tuple[TensorSpec, ...] = ()
        used_ops: set[str] = set()
        runtimes = [RUNTIME_FLOOR, self._metadata_runtime(model, buffer_sizes)]
        arena = 0
        for index in range(n_subgraphs):
            subgraph = model.Subgraphs(index)
            tensors = self._tensors(subgraph, index, buffer_sizes)
            arena += sum(t.activation_bytes for t in tensors)
            where = f"subgraph {index}"
            inputs = self._indices(subgraph.InputsIsNone(), subgraph.InputsAsNumpy, len(tensors),
                                   f"{where} inputs", allow_optional=False)
            outputs = self._indices(subgraph.OutputsIsNone(), subgraph.OutputsAsNumpy,
                                    len(tensors), f"{where} outputs", allow_optional=False)
            for name, op_runtime in self._operators(subgraph, where, tensors, opcodes):
                used_ops.add(name)
                runtimes.append(op_runtime)
            if index == 0:
                if not inputs or not outputs:
                    raise InvalidModelError(
                        "the main subgraph has no inputs or no outputs: a model must take at "
                        "least one input tensor and produce at least one output tensor")
                main_inputs = _signature(tensors, inputs, "input")
                main_outputs = _signature(tensors, outputs, "output")
        return ModelInfo(
            inputs=main_inputs,
            outputs=main_outputs,
            operators=tuple(sorted(used_ops)),
            schema_version=version,
            min_runtime=max((r for r in runtimes if r), key=version_key),
            subgraph_count=n_subgraphs,
            arena_bytes=arena,
        )

    # -- structure -------------------------------------------------------------------------

    def _spend(self, items: int) -> None:
        self.budget -= items
        if self.budget < 0:
            raise InvalidModelError(
                "file is not a valid TFLite model: it declares more tables than its size "
                "can hold (corrupt or crafted offsets)")

    def _length(self, n: int, item_bytes: int, what: str) -> int:
        if n < 0 or n * item_bytes > len(self.data):
            raise InvalidModelError(
                f"file is not a valid TFLite model: {what} claims {n} entries, more than the "
                f"{len(self.data)}-byte file can hold (truncated or corrupt)")
        self._spend(n)
        return n

    def _buffer_sizes(self, model: schema.Model) -> list[int]:
        sizes = []
        for i in range(self._length(model.BuffersLength(), 4, "the buffer list")):
            buffer = model.Buffers(i)
            size = 0
            if not buffer.DataIsNone():
                # A numpy view checks that the whole vector lies inside the file.
                size = int(buffer.DataAsNumpy().size)
            offset, external_size = buffer.Offset(), buffer.Size()
            # offset 0/1 mean "no external data" (1 marks a placeholder in >2 GB models).
            if offset > 1:
                if offset + external_size > len(self.data):
                    raise InvalidModelError(
                        f"buffer {i} points outside the file (offset {offset}, size "
                        f"{external_size}, file {len(self.data)} bytes): the model is truncated")
                size = external_size
            sizes.append(size)
        return sizes

    def _opcodes(self, model: schema.Model) -> list[tuple[str, int]]:
        opcodes = []
        for i in range(self._length(model.OperatorCodesLength(), 4, "the operator code list")):
            code = model.OperatorCodes(i)
            builtin = max(code.DeprecatedBuiltinCode(), code.BuiltinCode())
            if builtin == _CUSTOM:
                custom = code.CustomCode()
                name = "CUSTOM:" + (custom.decode("utf-8") if custom else "?")
            else:
                name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
            version = code.Version()
            if version < 1:
                raise InvalidModelError(f"operator code {i} ({name}) has invalid version {version}")
            opcodes.append((name, version))
        return opcodes

    def _tensors(self, subgraph: schema.SubGraph, index: int,
                 buffer_sizes: list[int]) -> list[_Tensor]:
        tensors = []
        for t in range(self._length(subgraph.TensorsLength(), 4, f"subgraph {index} tensors")):
            tensor = subgraph.Tensors(t)
            raw_name = tensor.Name()
            name = raw_name.decode("utf-8") if raw_name else ""
            where = f"tensor {t} ({name or 'unnamed'}) in subgraph {index}"
            dtype = tensor.Type()
            if dtype not in _DTYPE_NAMES:
                raise InvalidModelError(f"{where} has unknown element type {dtype}")
            shape = () if tensor.ShapeIsNone() else tuple(int(d) for d in tensor.ShapeAsNumpy())
            if any(d < 0 for d in shape):
                raise InvalidModelError(f"{where} has a negative dimension in shape {list(shape)}")
            buffer = tensor.Buffer()
            if buffer >= len(buffer_sizes):
                raise InvalidModelError(
                    f"{where} refers to buffer {buffer}, but the model has only "
                    f"{len(buffer_sizes)} buffers")
            stored = buffer_sizes[buffer]
            item = _ITEM_SIZES.get(dtype)
            if stored and item and tensor.Sparsity() is None:
                needed = math.prod(shape) * item
                if stored < needed:
                    raise InvalidModelError(
                        f"{where} needs {needed} bytes of constant data for shape "
                        f"{list(shape)} but its buffer holds only {stored}")
            activation = 0 if stored else math.prod(shape) * (item or 0)
            tensors.append(_Tensor(name, shape, dtype, _quantization(tensor.Quantization()),
                                   activation))
        return tensors

    def _indices(self, absent: bool, as_numpy: Any, n_tensors: int, what: str, *,
                 allow_optional: bool) -> list[int]:
        if absent:
            return []
        indices = [int(i) for i in as_numpy()]
        self._spend(len(indices))
        low = -1 if allow_optional else 0
        for i in indices:
            if not low <= i < n_tensors:
                raise InvalidModelError(
                    f"{what} refer to tensor {i}, but the subgraph has {n_tensors} tensors")
        return indices

    def _operators(self, subgraph: schema.SubGraph, where: str, tensors: list[_Tensor],
                   opcodes: list[tuple[str, int]]) -> Iterable[tuple[str, str]]:
        """Check each operator's references; yield its name and the runtime it needs."""
        for o in range(self._length(subgraph.OperatorsLength(), 4, f"{where} operators")):
            op = subgraph.Operators(o)
            index = op.OpcodeIndex()
            if index >= len(opcodes):
                raise InvalidModelError(
                    f"operator {o} in {where} uses operator code {index}, but the model "
                    f"defines {len(opcodes)}")
            name, declared = opcodes[index]
            ins = self._indices(op.InputsIsNone(), op.InputsAsNumpy, len(tensors),
                                f"operator {o} ({name}) inputs in {where}", allow_optional=True)
            outs = self._indices(op.OutputsIsNone(), op.OutputsAsNumpy, len(tensors),
                                 f"operator {o} ({name}) outputs in {where}",
                                 allow_optional=True)
            in_tensors = [tensors[i] if i >= 0 else None for i in ins]
            out_tensors = [tensors[i] if i >= 0 else None for i in outs]
            version = max(declared, _implied_version(name, in_tensors, out_tensors))
            yield name, _runtime_for(name, version, in_tensors + out_tensors)

    def _metadata_runtime(self, model: schema.Model, buffer_sizes: list[int]) -> str:
        """The converter's ``min_runtime_version`` metadata, when present and readable."""
        for i in range(self._length(model.MetadataLength(), 4, "the metadata list")):
            entry = model.Metadata(i)
            if entry.Name() != b"min_runtime_version":
                continue
            buffer = entry.Buffer()
            if buffer >= len(buffer_sizes):
                raise InvalidModelError(
                    f"metadata min_runtime_version refers to missing buffer {buffer}")
            data = model.Buffers(buffer)
            if data.DataIsNone():
                return ""
            text = bytes(data.DataAsNumpy()).rstrip(b"\0").decode("ascii", "replace")
            return text if is_version(text) else ""
        return ""


def _quantization(q: schema.QuantizationParameters | None) -> Quantization | None:
    if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
        return None
    scale = tuple(float(s) for s in q.ScaleAsNumpy())
    zero_point = () if q.ZeroPointIsNone() else tuple(int(z) for z in q.ZeroPointAsNumpy())
    if not all(math.isfinite(s) for s in scale):
        raise InvalidModelError("a tensor has a non-finite quantization scale")
    return Quantization(scale, zero_point, int(q.QuantizedDimension()))


def _signature(tensors: list[_Tensor], indices: Sequence[int], kind: str) -> tuple[TensorSpec, ...]:
    infos = []
    seen: set[str] = set()
    for i in indices:
        t = tensors[i]
        if not t.name:
            raise InvalidModelError(
                f"{kind} tensor {i} has no name: EdgeFleet addresses inputs and outputs by name")
        if t.name in seen:
            raise InvalidModelError(
                f"two {kind}s are both named {t.name!r}: {kind} names must be unique")
        seen.add(t.name)
        infos.append(TensorSpec(t.name, t.shape, _DTYPE_NAMES[t.dtype], t.quantization))
    return tuple(infos)


def _per_channel(t: _Tensor | None) -> bool:
    return t is not None and t.quantization is not None and len(t.quantization.scale) > 1


def _implied_version(op: str, ins: list[_Tensor | None], outs: list[_Tensor | None]) -> int:
    """The operator version TFLite's own versioning assigns for these tensor types.

    A subset of tools/versioning/op_version: the kernels quantized variants use. Returns 1 when
    no rule applies, so the declared version stands.
    """
    def dtype(ts: list[_Tensor | None], i: int) -> int | None:
        t = ts[i] if i < len(ts) else None
        return None if t is None else t.dtype

    x, w, y = dtype(ins, 0), dtype(ins, 1), dtype(outs, 0)
    f32, i8, i16, i4 = _T.FLOAT32, _T.INT8, _T.INT16, _T.INT4
    weights = ins[1] if len(ins) > 1 else None
    if op == "FULLY_CONNECTED":
        rules = [
            (x == i16 and w == i4 and y == i16, 13),
            (x == f32 and w == i8 and y == f32 and _per_channel(weights), 12),
            (x == i8 and w == i4 and y == i8, 10),
            (x == i16 and w == i8 and y == i16, 7),
            (x == i8 and w == i8 and y == i8, 4),
            (x == f32 and w in (i8, _T.UINT8) and y == f32, 3),
        ]
    elif op == "CONV_2D":
        rules = [
            (x == i8 and w == i4 and y == i8, 7),
            (x == f32 and w == i8 and y == f32 and _per_channel(weights), 5),
            (x == i16, 4),
            (x == i8 and w == i8 and y == i8, 3),
            (x == f32 and w == i8 and y == f32, 2),
        ]
    elif op == "DEPTHWISE_CONV_2D":
        rules = [
            (x == i8 and w == i4 and y == i8, 7),
            (x == f32 and w == i8 and y == f32 and _per_channel(weights), 6),
            (x == i16, 5),
            (x == f32 and w == i8 and y == f32, 4),
            (x == i8 and w == i8 and y == i8, 3),
        ]
    elif op == "DEQUANTIZE":
        rules = [
            (x == i4, 6),
            (x == i8 and _per_channel(ins[0] if ins else None), 5),
            (x in (i16, _T.FLOAT16), 3),
            (x == i8, 2),
        ]
    elif op == "QUANTIZE":
        rules = [
            (x == i4 or y == i4, 4),
            (_per_channel(outs[0] if outs else None), 3),
            (y == i16, 2),
        ]
    elif op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        rules = [(x == i16 and y == i16, 3), (x == i8, 2)]
    elif op == "SOFTMAX":
        rules = [(x == i16, 3), (x == i8, 2)]
    else:
        rules = []
    return max((version for applies, version in rules if applies), default=1)


def _runtime_for(op: str, version: int, tensors: list[_Tensor | None]) -> str:
    """The oldest runtime release implementing ``op`` at ``version`` (conservative on unknowns)."""
    releases = _RUNTIME_BY_OP_VERSION.get(op)
    if releases is not None:
        if version > len(releases):
            return RUNTIME_UNKNOWN_OP
        needed = releases[version - 1]
    elif version == 1 and _is_old_builtin(op):
        needed = RUNTIME_FLOOR
    else:
        return RUNTIME_UNKNOWN_OP
    if op not in _OPS_WITH_TYPE_RULES and any(
            t is not None and t.dtype in _NARROW_TYPES for t in tensors):
        # int4/bfloat16/float8 tensors on an op without a type rule: we cannot vouch for it.
        return RUNTIME_UNKNOWN_OP
    return max(needed, RUNTIME_FLOOR, key=version_key)


def _is_old_builtin(op: str) -> bool:
    code = getattr(schema.BuiltinOperator, op, None)
    return isinstance(code, int) and code < _PLACEHOLDER_FOR_GREATER_OP_CODES and code != _CUSTOM

