"""Affine quantization of (u)int8/int16 tensors, the arithmetic both sides use.

The agent quantizes float inputs and dequantizes outputs with these functions; the control plane
measures quantized variants against the float reference with the same ones, so the accuracy
figures it reports are the figures a device sees.

Conventions (TensorFlow Lite's own): ``real = scale * (q - zero_point)``; quantizing rounds half
away from zero (``std::round``) before adding the zero point and saturates to the integer type's
range. A tensor has one scale (per tensor) or one per channel along ``quantized_dimension``; a
missing zero point list means symmetric (zeros). Arithmetic is in float64; dequantized values are
float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protos.contract.documents import Quantization
from protos.contract.errors import ContractError

QUANTIZED_KINDS = "iu"   # numpy dtype kinds a quantization applies to


def is_quantized(dtype: np.dtype[Any] | str, quantization: Quantization | None) -> bool:
    """Whether values of ``dtype`` under ``quantization`` stand for real numbers."""
    return (quantization is not None and bool(quantization.scale)
            and np.dtype(dtype).kind in QUANTIZED_KINDS)


def quantize(values: Any, quantization: Quantization, dtype: np.dtype[Any] | str) -> np.ndarray:
    """Real ``values`` as integers of ``dtype``. Raises ContractError for non-finite values or a
    quantization that does not fit the array's shape."""
    real = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(real)):
        raise ContractError("cannot quantize NaN or infinite values")
    target = np.dtype(dtype)
    if target.kind not in QUANTIZED_KINDS:
        raise ContractError(f"cannot quantize to {target.name}: not an integer type")
    scale, zero_point = _broadcast(quantization, real.shape)
    scaled = real / scale
    # Half away from zero, as TFLite's kernels round; numpy's round() would go to even.
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
    info = np.iinfo(target)
    return np.clip(rounded, info.min, info.max).astype(target)


def dequantize(values: Any, quantization: Quantization) -> np.ndarray:
    """Integer ``values`` as the float32 reals they stand for. Raises ContractError for a
    quantization that does not fit the array's shape."""
    q = np.asarray(values)
    scale, zero_point = _broadcast(quantization, q.shape)
    return ((q.astype(np.float64) - zero_point) * scale).astype(np.float32)


def representable_range(quantization: Quantization, dtype: np.dtype[Any] | str,
                        shape: tuple[int, ...]) -> tuple[float, float]:
    """The smallest and largest real value the tensor can hold (over all its channels)."""
    info = np.iinfo(np.dtype(dtype))
    scale, zero_point = _broadcast(quantization, shape)
    lows = (info.min - zero_point) * scale
    highs = (info.max - zero_point) * scale
    return float(np.min(lows)), float(np.max(highs))


def _broadcast(quantization: Quantization, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """Scale and zero point shaped to broadcast against an array of ``shape``."""
    scale = np.asarray(quantization.scale, dtype=np.float64)
    if scale.size == 0:
        raise ContractError("quantization has no scale")
    zero_point = np.asarray(quantization.zero_point, dtype=np.float64)
    if zero_point.size == 0:
        zero_point = np.zeros_like(scale)
    elif zero_point.size != scale.size:
        raise ContractError(f"quantization has {scale.size} scales and {zero_point.size} "
                            "zero points")
    if scale.size == 1:
        return scale[0], zero_point[0]
    dim = quantization.quantized_dimension
    if not 0 <= dim < len(shape) or shape[dim] != scale.size:
        raise ContractError(f"{scale.size} per-channel scales do not fit dimension {dim} of a "
                            f"tensor shaped {list(shape)}")
    axes = [1] * len(shape)
    axes[dim] = scale.size
    return scale.reshape(axes), zero_point.reshape(axes)


def from_interpreter_detail(detail: dict[str, Any]) -> Quantization | None:
    """The quantization of a tensor as a TFLite ``Interpreter`` describes it (an entry of
    ``get_input_details()``/``get_output_details()``); None when it has none."""
    params = detail.get("quantization_parameters") or {}
    scales = [float(s) for s in np.asarray(params.get("scales", []), np.float64).ravel()]
    if not scales:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if not scale:
            return None
        return Quantization((float(scale),), (int(zero_point),), 0)
    zero_points = [int(z) for z in np.asarray(params.get("zero_points", []), np.int64).ravel()]
    return Quantization(tuple(scales), tuple(zero_points),
                        int(params.get("quantized_dimension", 0)))


def same_quantization(a: Quantization | None, b: Quantization | None) -> bool:
    """Whether two descriptions of a tensor's quantization agree: both none, or the same zero
    points, axis and scales equal to float32 precision (a model stores its scales as float32; a
    manifest carries them as JSON numbers)."""
    if a is None or b is None:
        return a is None and b is None
    if len(a.scale) != len(b.scale):
        return False
    if len(a.scale) > 1 and a.quantized_dimension != b.quantized_dimension:
        return False
    # An empty zero-point list means zeros (the manifest's JSON may leave it out).
    if (a.zero_point or (0,) * len(a.scale)) != (b.zero_point or (0,) * len(b.scale)):
        return False
    return bool(np.allclose(a.scale, b.scale, rtol=1e-6, atol=0.0))
