"""The project's one TFLite model generator: small, real, deterministic models without TensorFlow.

Tests, benchmarks and ``edgefleet demo`` need genuine TFLite flatbuffers that both interpreters
the fleet runs (tflite-runtime and ai-edge-litert) load and execute, and that ai-edge-quantizer can
optimise. This module writes them directly with the TFLite schema's object API.

Invariants:
- The same arguments give byte-identical output (weights come from ``numpy.random.default_rng``
  seeded with ``seed``; nothing reads the clock or the environment).
- Models are float32, schema version 3, file identifier ``TFL3``, one subgraph, and carry a
  ``serving_default`` signature naming their one input and one output.
- Constant buffers are 16-byte aligned inside the file, as the TFLite converter does, so kernels
  may read them in place.
- Weight layouts are TFLite's: CONV_2D filters ``[out, kh, kw, in]``, DEPTHWISE_CONV_2D filters
  ``[1, kh, kw, channels]`` (depth multiplier 1), FULLY_CONNECTED weights ``[out, in]``.
  ``cnn_params`` / ``mlp_params`` / ``mobilenet_params`` return exactly the arrays written.
- Convolutions use SAME padding as TFLite defines it: output extent ``ceil(in / stride)``, and
  ``max((out - 1) * stride + k - in, 0)`` padding split with the smaller half before (so a 3x3
  stride-2 layer on an even extent pads 0 before and 1 after). Pools use VALID padding.

Models: ``build_cnn`` (CONV_2D, pooling, FULLY_CONNECTED), ``build_mlp`` (two FULLY_CONNECTED),
``build_mobilenet`` (stem CONV_2D, depthwise-separable blocks, global AVERAGE_POOL_2D,
FULLY_CONNECTED); each ends in SOFTMAX.

Usage: ``python -m controlplane.modelgen OUT.tflite [--kind cnn|mlp|mobilenet] [--seed N]
[--calibration OUT.npz --samples N]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from controlplane.registry.tflite import inspect_model
from protos.contract.documents import TensorSpec

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"
SIGNATURE_KEY = "serving_default"
# The converter aligns constant data to 16 bytes; SIMD kernels read weights in place.
_BUFFER_ALIGNMENT = 16
# OperatorCode.deprecated_builtin_code is an int8; codes past it are stored as this placeholder.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

PoolKind = Literal["max", "avg"]
ModelKind = Literal["cnn", "mlp", "mobilenet"]

# Global average pooling leaves build_mobilenet's classifier features of rms ~0.2-0.3 (RELU6 of
# He-scaled layers, averaged over positions), so a 1/fan-in classifier would give logits that
# small and a near-uniform softmax (top probability 0.14-0.26 of 10 classes on uniform [0, 1)
# images, by seed). This gain on the classifier's standard deviation gives logits of order 1-2
# and a clear winner (0.25-0.8), as a trained classifier has, so quantization error shows.
_MOBILENET_LOGIT_GAIN = 4.0


@dataclass(frozen=True)
class CnnParams:
    """The weights of ``build_cnn``: what the generator writes, in TFLite layouts."""

    conv_filter: np.ndarray   # [filters, 3, 3, channels]
    conv_bias: np.ndarray     # [filters]
    fc_weights: np.ndarray    # [classes, flattened]
    fc_bias: np.ndarray       # [classes]


@dataclass(frozen=True)
class MlpParams:
    """The weights of ``build_mlp``, FULLY_CONNECTED layout ``[out, in]``."""

    hidden_weights: np.ndarray
    hidden_bias: np.ndarray
    out_weights: np.ndarray
    out_bias: np.ndarray


@dataclass(frozen=True)
class SeparableBlock:
    """One depthwise-separable block of ``build_mobilenet``, in TFLite layouts."""

    depthwise_filter: np.ndarray  # [1, 3, 3, channels]: one 3x3 filter per channel
    depthwise_bias: np.ndarray    # [channels]
    pointwise_filter: np.ndarray  # [2 * channels, 1, 1, channels]
    pointwise_bias: np.ndarray    # [2 * channels]


@dataclass(frozen=True)
class MobileNetParams:
    """The weights of ``build_mobilenet``: what the generator writes, in TFLite layouts."""

    stem_filter: np.ndarray       # [width, 3, 3, channels]
    stem_bias: np.ndarray         # [width]
    blocks: tuple[SeparableBlock, ...]  # block i takes width * 2**i channels to twice as many
    fc_weights: np.ndarray        # [classes, width * 2**blocks]
    fc_bias: np.ndarray           # [classes]


def cnn_params(
    *, seed: int = 0, input_shape: Sequence[int] = (1, 28, 28, 1), filters: int = 8,
    classes: int = 10,
) -> CnnParams:
    """The weights ``build_cnn`` writes (He-style scaling keeps the outputs varied)."""
    _, height, width, channels = _check_image_shape(input_shape)
    if height < 2 or width < 2:
        raise ValueError("a CNN input must be at least 2x2 so that 2x2 pooling leaves something")
    if filters < 1 or classes < 2:
        raise ValueError("a CNN needs at least 1 filter and 2 classes")
    rng = np.random.default_rng(seed)
    flat = (height // 2) * (width // 2) * filters
    conv_filter = rng.normal(0.0, np.sqrt(2.0 / (9 * channels)), (filters, 3, 3, channels))
    conv_bias = rng.normal(0.0, 0.1, filters)
    fc_weights = rng.normal(0.0, np.sqrt(1.0 / flat), (classes, flat))
    fc_bias = rng.normal(0.0, 0.1, classes)
    return CnnParams(*(a.astype(np.float32) for a in (conv_filter, conv_bias, fc_weights, fc_bias)))


def mlp_params(
    *, seed: int = 0, input_shape: Sequence[int] = (1, 16), hidden: int = 8, classes: int = 4,
    hidden_scale: float = 1.0,
) -> MlpParams:
    """The weights ``build_mlp`` writes for these arguments. ``hidden_scale`` multiplies the
    hidden layer's weights: 1e30 makes a model that is finite on inputs in [-1, 1] and
    overflows (NaN out of the softmax) on inputs of magnitude 1e9 and more, for tests of what
    a device does with a model that breaks on the field's data."""
    if len(input_shape) != 2 or min(input_shape) < 1:
        raise ValueError(f"an MLP input shape is (batch, features), got {tuple(input_shape)}")
    if hidden < 1 or classes < 2:
        raise ValueError("an MLP needs at least 1 hidden unit and 2 classes")
    features = input_shape[1]
    rng = np.random.default_rng(seed)
    arrays = (
        rng.normal(0.0, np.sqrt(2.0 / features), (hidden, features)) * hidden_scale,
        rng.normal(0.0, 0.1, hidden),
        rng.normal(0.0, np.sqrt(1.0 / hidden), (classes, hidden)),
        rng.normal(0.0, 0.1, classes),
    )
    return MlpParams(*(a.astype(np.float32) for a in arrays))


def mobilenet_params(
    *, seed: int = 0, input_shape: Sequence[int] = (1, 32, 32, 3), width: int = 144,
    blocks: int = 2, classes: int = 10,
) -> MobileNetParams:
    """The weights ``build_mobilenet`` writes for these arguments.

    Every convolution draws from a normal distribution with variance 2 / fan-in (He scaling; the
    depthwise fan-in is the 9 taps of one channel, the pointwise one the input channels), so
    activations keep their order of magnitude through the RELU6 layers; the classifier has
    1 / fan-in as in ``cnn_params``, times ``_MOBILENET_LOGIT_GAIN`` so the softmax is far from
    uniform. Biases are normal with standard deviation 0.1.
    """
    channels = _check_image_shape(input_shape)[3]
    if width < 1 or blocks < 1 or classes < 2:
        raise ValueError("a MobileNet needs a width of at least 1, at least 1 block and 2 classes")
    rng = np.random.default_rng(seed)
    stem_filter = _f32(rng.normal(0.0, np.sqrt(2.0 / (9 * channels)), (width, 3, 3, channels)))
    stem_bias = _f32(rng.normal(0.0, 0.1, width))
    separable = []
    c = width
    for _ in range(blocks):
        separable.append(SeparableBlock(
            depthwise_filter=_f32(rng.normal(0.0, np.sqrt(2.0 / 9), (1, 3, 3, c))),
            depthwise_bias=_f32(rng.normal(0.0, 0.1, c)),
            pointwise_filter=_f32(rng.normal(0.0, np.sqrt(2.0 / c), (2 * c, 1, 1, c))),
            pointwise_bias=_f32(rng.normal(0.0, 0.1, 2 * c)),
        ))
        c *= 2
    fc_weights = _f32(rng.normal(0.0, _MOBILENET_LOGIT_GAIN * np.sqrt(1.0 / c), (classes, c)))
    fc_bias = _f32(rng.normal(0.0, 0.1, classes))
    return MobileNetParams(stem_filter, stem_bias, tuple(separable), fc_weights, fc_bias)


def build_cnn(
    *,
    seed: int = 0,
    input_shape: Sequence[int] = (1, 28, 28, 1),
    filters: int = 8,
    classes: int = 10,
    pool: PoolKind = "max",
    input_name: str = "image",
    output_name: str = "scores",
) -> bytes:
    """A small image classifier.

    CONV_2D 3x3 SAME stride 1 with fused RELU -> MAX_POOL_2D (or AVERAGE_POOL_2D) 2x2 stride 2
    VALID -> RESHAPE to ``[batch, -]`` -> FULLY_CONNECTED -> SOFTMAX. ``input_shape`` is NHWC.
    """
    batch = _check_image_shape(input_shape)[0]
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    params = cnn_params(seed=seed, input_shape=input_shape, filters=filters, classes=classes)
    flat = params.fc_weights.shape[1]

    g = _Graph()
    x = g.tensor(input_name, input_shape)
    conv = g.conv2d("conv", x, params.conv_filter, params.conv_bias, stride=1,
                    activation=schema.ActivationFunctionType.RELU)
    pool_op = {"max": schema.BuiltinOperator.MAX_POOL_2D,
               "avg": schema.BuiltinOperator.AVERAGE_POOL_2D}[pool]
    pooled = g.pool2d("pool", pool_op, conv, size=(2, 2), stride=2)
    flattened = g.reshape("flatten", pooled, (batch, flat))
    logits = g.dense("logits", flattened, params.fc_weights, params.fc_bias, batch, relu=False)
    out = g.softmax(output_name, logits, (batch, classes))
    return g.finish(inputs=[(input_name, x)], outputs=[(output_name, out)])


def build_mlp(
    *,
    seed: int = 0,
    input_shape: Sequence[int] = (1, 16),
    hidden: int = 8,
    classes: int = 4,
    input_name: str = "features",
    output_name: str = "scores",
    hidden_scale: float = 1.0,
) -> bytes:
    """A tiny classifier for fast tests: FULLY_CONNECTED+RELU -> FULLY_CONNECTED -> SOFTMAX
    (``hidden_scale``: see ``mlp_params``)."""
    params = mlp_params(seed=seed, input_shape=input_shape, hidden=hidden, classes=classes,
                        hidden_scale=hidden_scale)
    batch = input_shape[0]
    g = _Graph()
    x = g.tensor(input_name, input_shape)
    h = g.dense("hidden", x, params.hidden_weights, params.hidden_bias, batch, relu=True)
    logits = g.dense("logits", h, params.out_weights, params.out_bias, batch, relu=False)
    out = g.softmax(output_name, logits, (batch, classes))
    return g.finish(inputs=[(input_name, x)], outputs=[(output_name, out)])


def build_mobilenet(
    *,
    seed: int = 0,
    input_shape: Sequence[int] = (1, 32, 32, 3),
    width: int = 144,
    blocks: int = 2,
    classes: int = 10,
    input_name: str = "image",
    output_name: str = "scores",
) -> bytes:
    """A MobileNet-like image classifier built from depthwise-separable blocks.

    Stem CONV_2D 3x3 stride 2 SAME with fused RELU6 to ``width`` channels -> ``blocks`` times
    [DEPTHWISE_CONV_2D 3x3 stride 2 SAME, depth multiplier 1, RELU6 -> CONV_2D 1x1 RELU6 doubling
    the channels] -> AVERAGE_POOL_2D over the whole remaining extent (global average pooling) ->
    RESHAPE to ``[batch, width * 2**blocks]`` -> FULLY_CONNECTED -> SOFTMAX. ``input_shape`` is
    NHWC. Each stride-2 layer halves the spatial extent rounding up, never below 1, so channels
    double as resolution halves, as in MobileNet, and any input size is accepted.

    The defaults (width 144, 2 blocks: 144 -> 288 -> 576 channels, ~870 KB) are sized for
    quantization: ai-edge-quantizer's int8 model stores, per output channel of every layer, a
    scale and an int64 zero point for the filter and again for the int32 bias. A depthwise or
    stem channel (9 or 27 weights) hardly shrinks, so only when most weights sit in layers with
    a fan-in above ~150 (here the 288 -> 576 pointwise) is the static int8 model under 0.3x the
    float32 one. One invoke stays far below a millisecond on one thread.
    """
    batch = _check_image_shape(input_shape)[0]
    params = mobilenet_params(seed=seed, input_shape=input_shape, width=width, blocks=blocks,
                              classes=classes)
    relu6 = schema.ActivationFunctionType.RELU6

    g = _Graph()
    x = g.tensor(input_name, input_shape)
    h = g.conv2d("stem", x, params.stem_filter, params.stem_bias, stride=2, activation=relu6)
    for i, block in enumerate(params.blocks):
        h = g.depthwise_conv2d(f"block{i}/depthwise", h, block.depthwise_filter,
                               block.depthwise_bias, stride=2, activation=relu6)
        h = g.conv2d(f"block{i}/pointwise", h, block.pointwise_filter, block.pointwise_bias,
                     stride=1, activation=relu6)
    _, height, width_left, channels = g.shape(h)
    pooled = g.pool2d("global_pool", schema.BuiltinOperator.AVERAGE_POOL_2D, h,
                      size=(height, width_left), stride=1)
    flattened = g.reshape("flatten", pooled, (batch, channels))
    logits = g.dense("logits", flattened, params.fc_weights, params.fc_bias, batch, relu=False)
    out = g.softmax(output_name, logits, (batch, classes))
    return g.finish(inputs=[(input_name, x)], outputs=[(output_name, out)])


def edit_model(data: bytes, edit: Callable[[schema.ModelT], object]) -> bytes:
    """Unpack a model into the schema's objects, let ``edit`` change them, and pack it again.

    For crafting variants of a real model, such as the broken ones tests feed the registry.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    edit(model)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def calibration_samples(
    inputs: Sequence[TensorSpec], *, samples: int, seed: int = 0,
) -> dict[str, np.ndarray]:
    """Calibration inputs in the project's ``.npz`` layout: ``{name: (samples, *shape)}`` float32.

    Values are uniform in [0, 1), like normalised pixels, from a generator seeded apart from the
    weights so the data does not mirror them.
    """
    if samples < 1:
        raise ValueError("calibration needs at least one sample")
    rng = np.random.default_rng([seed, 1])
    return {t.name: rng.random((samples, *t.shape), dtype=np.float32) for t in inputs}


def write_calibration(
    model_path: Path, out_path: Path, *, samples: int, seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write ``calibration_samples`` for the model at ``model_path`` to ``out_path`` (.npz)."""
    info = inspect_model(Path(model_path).read_bytes())
    arrays = calibration_samples(info.inputs, samples=samples, seed=seed)
    with Path(out_path).open("wb") as f:
        np.savez(f, **arrays)
    return arrays


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32)


def _check_image_shape(shape: Sequence[int]) -> tuple[int, int, int, int]:
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            f"a CNN input shape is NHWC (batch, height, width, channels), got {tuple(shape)}")
    batch, height, width, channels = (int(d) for d in shape)
    return batch, height, width, channels


def _options(obj: object, **fields: object) -> object:
    """Fill a schema options object (the generated ``...T`` classes take no keyword arguments)."""
    for name, value in fields.items():
        if not hasattr(obj, name):
            raise AttributeError(f"{type(obj).__name__} has no field {name}")
        setattr(obj, name, value)
    return obj


class _AlignedBuffer(schema.BufferT):
    """A ``BufferT`` whose data vector is aligned to ``_BUFFER_ALIGNMENT`` in the output file.

    ``BufferT.Pack`` aligns a byte vector to 1 byte only; this writes the same table with the
    vector started at a 16-byte boundary, which the builder supports through ``StartVector``.
    """

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw

    def Pack(self, builder: flatbuffers.Builder) -> int:  # the schema's method name
        builder.StartVector(1, len(self.raw), _BUFFER_ALIGNMENT)
        builder.head = builder.head - len(self.raw)
        builder.Bytes[builder.head : builder.head + len(self.raw)] = self.raw
        data = builder.EndVector()
        schema.BufferStart(builder)
        schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


class _Graph:
    """Accumulates one subgraph's tensors, constant buffers and operators, then packs a model."""

    def __init__(self) -> None:
        # Buffer 0 is the schema's "no data" sentinel every activation tensor points at.
        self.buffers: list[schema.BufferT] = [schema.BufferT()]
        self.tensors: list[schema.TensorT] = []
        self.operators: list[schema.OperatorT] = []
        self.opcode_index: dict[int, int] = {}

    def tensor(self, name: str, shape: Sequence[int], *, buffer: int = 0,
               dtype: int = schema.TensorType.FLOAT32) -> int:
        t = schema.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = dtype
        t.buffer = buffer
        self.tensors.append(t)
        return len(self.tensors) - 1

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(self.tensors[t].shape)

    def constant(self, name: str, value: np.ndarray) -> int:
        dtypes = {np.dtype(np.float32): schema.TensorType.FLOAT32,
                  np.dtype(np.int32): schema.TensorType.INT32}
        array = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
        self.buffers.append(_AlignedBuffer(array.tobytes()))
        return self.tensor(name, array.shape, buffer=len(self.buffers) - 1,
                           dtype=dtypes[array.dtype])

    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int,
           options: object) -> None:
        if code not in self.opcode_index:
            self.opcode_index[code] = len(self.opcode_index)
        o = schema.OperatorT()
        o.opcodeIndex = self.opcode_index[code]
        o.inputs = inputs
        o.outputs = outputs
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)

    def conv2d(self, name: str, x: int, filters: np.ndarray, bias: np.ndarray, *, stride: int,
               activation: int) -> int:
        """CONV_2D, SAME padding: ``filters`` is ``[out, kh, kw, in]``, the output NHWC with
        ``out`` channels and each spatial extent ``ceil(extent / stride)``."""
        return self._conv(
            name, schema.BuiltinOperator.CONV_2D, x, filters, bias, stride=stride,
            channels=filters.shape[0], options_type=schema.BuiltinOptions.Conv2DOptions,
            options=_options(schema.Conv2DOptionsT(), padding=schema.Padding.SAME,
                             strideW=stride, strideH=stride, fusedActivationFunction=activation,
                             dilationWFactor=1, dilationHFactor=1),
        )

    def depthwise_conv2d(self, name: str, x: int, filters: np.ndarray, bias: np.ndarray, *,
                         stride: int, activation: int) -> int:
        """DEPTHWISE_CONV_2D, depth multiplier 1, SAME padding: ``filters`` is
        ``[1, kh, kw, channels]``, one spatial filter per input channel; the output keeps the
        channels and, like ``conv2d``, has each spatial extent ``ceil(extent / stride)``."""
        channels = self.shape(x)[3]
        if filters.shape[0] != 1 or filters.shape[3] != channels:
            raise ValueError(f"a depthwise filter for {channels} channels is [1, kh, kw, "
                             f"{channels}], got {list(filters.shape)}")
        return self._conv(
            name, schema.BuiltinOperator.DEPTHWISE_CONV_2D, x, filters, bias, stride=stride,
            channels=channels, options_type=schema.BuiltinOptions.DepthwiseConv2DOptions,
            options=_options(schema.DepthwiseConv2DOptionsT(), padding=schema.Padding.SAME,
                             strideW=stride, strideH=stride, depthMultiplier=1,
                             fusedActivationFunction=activation,
                             dilationWFactor=1, dilationHFactor=1),
        )

    def _conv(self, name: str, code: int, x: int, filters: np.ndarray, bias: np.ndarray, *,
              stride: int, channels: int, options_type: int, options: object) -> int:
        batch, height, width, _ = self.shape(x)
        # SAME padding covers every input position, so the output is ceil(extent / stride).
        out = self.tensor(name, (batch, -(-height // stride), -(-width // stride), channels))
        self.op(code, [x, self.constant(f"{name}/filter", filters),
                       self.constant(f"{name}/bias", bias)],
                [out], options_type, options)
        return out

    def pool2d(self, name: str, code: int, x: int, *, size: tuple[int, int], stride: int) -> int:
        """MAX_POOL_2D or AVERAGE_POOL_2D over ``size`` (height, width) windows, VALID padding:
        windows lie wholly inside the input, so each extent is ``(extent - size) // stride + 1``."""
        batch, height, width, channels = self.shape(x)
        if size[0] > height or size[1] > width:
            raise ValueError(f"a {size[0]}x{size[1]} pool does not fit a {height}x{width} input")
        out = self.tensor(name, (batch, (height - size[0]) // stride + 1,
                                 (width - size[1]) // stride + 1, channels))
        self.op(code, [x], [out], schema.BuiltinOptions.Pool2DOptions,
                _options(schema.Pool2DOptionsT(), padding=schema.Padding.VALID,
                         strideW=stride, strideH=stride, filterWidth=size[1],
                         filterHeight=size[0],
                         fusedActivationFunction=schema.ActivationFunctionType.NONE))
        return out

    def reshape(self, name: str, x: int, shape: Sequence[int]) -> int:
        """RESHAPE to ``shape``, given both as the constant second input and in the options
        (older kernels read only the options)."""
        out = self.tensor(name, shape)
        self.op(schema.BuiltinOperator.RESHAPE,
                [x, self.constant(f"{name}/shape", np.array(shape, np.int32))],
                [out], schema.BuiltinOptions.ReshapeOptions,
                _options(schema.ReshapeOptionsT(), newShape=[int(d) for d in shape]))
        return out

    def dense(self, name: str, x: int, weights: np.ndarray, bias: np.ndarray, batch: int, *,
              relu: bool) -> int:
        out = self.tensor(name, (batch, weights.shape[0]))
        act = schema.ActivationFunctionType.RELU if relu else schema.ActivationFunctionType.NONE
        self.op(
            schema.BuiltinOperator.FULLY_CONNECTED,
            [x, self.constant(f"{name}/weights", weights), self.constant(f"{name}/bias", bias)],
            [out],
            schema.BuiltinOptions.FullyConnectedOptions,
            _options(schema.FullyConnectedOptionsT(), fusedActivationFunction=act,
                     weightsFormat=schema.FullyConnectedOptionsWeightsFormat.DEFAULT,
                     keepNumDims=False),
        )
        return out

    def softmax(self, name: str, x: int, shape: Sequence[int]) -> int:
        out = self.tensor(name, shape)
        self.op(schema.BuiltinOperator.SOFTMAX, [x], [out], schema.BuiltinOptions.SoftmaxOptions,
                _options(schema.SoftmaxOptionsT(), beta=1.0))
        return out

    def finish(self, *, inputs: list[tuple[str, int]], outputs: list[tuple[str, int]]) -> bytes:
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.inputs = [i for _, i in inputs]
        subgraph.outputs = [i for _, i in outputs]
        subgraph.operators = self.operators
        subgraph.name = "main"

        signature = schema.SignatureDefT()
        signature.signatureKey = SIGNATURE_KEY
        signature.subgraphIndex = 0
        signature.inputs = [_tensor_map(name, i) for name, i in inputs]
        signature.outputs = [_tensor_map(name, i) for name, i in outputs]

        model = schema.ModelT()
        model.version = SCHEMA_VERSION
        model.description = "edgefleet modelgen"
        # dicts keep insertion order, which is the order indices were handed out in.
        model.operatorCodes = [_operator_code(c) for c in self.opcode_index]
        model.subgraphs = [subgraph]
        model.buffers = self.buffers
        model.signatureDefs = [signature]

        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())


def _tensor_map(name: str, index: int) -> schema.TensorMapT:
    m = schema.TensorMapT()
    m.name = name
    m.tensorIndex = index
    return m


def _operator_code(code: int) -> schema.OperatorCodeT:
    c = schema.OperatorCodeT()
    # Readers take max(deprecated_builtin_code, builtin_code); the old field is an int8.
    c.deprecatedBuiltinCode = min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
    c.builtinCode = code
    c.version = 1
    return c


# What ``--kind`` names: each builder with its defaults but the seed.
_BUILDERS: dict[ModelKind, Callable[..., bytes]] = {
    "cnn": build_cnn, "mlp": build_mlp, "mobilenet": build_mobilenet}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controlplane.modelgen",
        description="Write a small deterministic TFLite model (and optionally calibration data).",
    )
    parser.add_argument("out", type=Path, help="where to write the .tflite file")
    parser.add_argument("--kind", choices=tuple(_BUILDERS), default="cnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration", type=Path, help="also write calibration inputs (.npz)")
    parser.add_argument("--samples", type=int, default=32, help="calibration samples (default 32)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")

    args.out.write_bytes(_BUILDERS[args.kind](seed=args.seed))
    if args.calibration is not None:
        write_calibration(args.out, args.calibration, samples=args.samples, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
