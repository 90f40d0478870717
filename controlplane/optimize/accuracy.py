"""How far a variant's outputs are from the reference's, and whether that is within tolerance.

Pure numpy, no interpreter: the pipeline runs the models (``optimize.evaluate``) and hands the
outputs here. Outputs are real values (quantized outputs already dequantized), stacked over the
samples on a new first axis: ``{name: (samples, *shape)}``.

Invariants:
- Every figure is computed per output, over all samples: ``max_abs_error`` and
  ``mean_abs_error`` of the element-wise difference, ``cosine`` the mean over samples of the
  cosine similarity of the flattened sample (two all-zero samples agree: 1.0; one all-zero
  sample against a non-zero one: 0.0), ``top1`` the share of samples whose arg-max over the
  last axis is the reference's.
- ``top1`` is computed only for class-like outputs: one vector of at least two scores per
  sample (shape ``(K,)`` or ``(1, K)``, K >= 2). Elsewhere (boxes, feature maps) an arg-max
  means nothing and ``top1`` is None.
- A non-finite output value is never within tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from controlplane.errors import InvalidArgumentError


@dataclass(frozen=True)
class Tolerance:
    """What a variant must reach on every output to be offered: mean cosine similarity at least
    ``min_cosine`` and, for class-like outputs, top-1 agreement at least ``min_top1``."""

    min_cosine: float
    min_top1: float

    def __post_init__(self) -> None:
        for name in ("min_cosine", "min_top1"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0 \
                    or isinstance(value, bool):
                raise InvalidArgumentError(f"{name} must be a number from 0 to 1, got {value!r}")

    def to_json(self) -> dict[str, float]:
        return {"min_cosine": self.min_cosine, "min_top1": self.min_top1}

    def with_overrides(self, overrides: Mapping[str, float] | None) -> Tolerance:
        """This tolerance with the fields ``overrides`` gives replaced (a push's own)."""
        fields = self.to_json()
        fields.update(overrides or {})
        return Tolerance(float(fields["min_cosine"]), float(fields["min_top1"]))


@dataclass(frozen=True)
class OutputAccuracy:
    name: str
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    top1: float | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "max_abs_error": self.max_abs_error,
                "mean_abs_error": self.mean_abs_error, "cosine": self.cosine, "top1": self.top1}


def is_class_like(sample_shape: tuple[int, ...]) -> bool:
    """One score vector per sample: ``(K,)`` or ``(1, K)`` with K >= 2."""
    squeezed = tuple(d for d in sample_shape[:-1] if d != 1) + sample_shape[-1:]
    return len(squeezed) == 1 and squeezed[0] >= 2


def compare(reference: Mapping[str, np.ndarray],
            candidate: Mapping[str, np.ndarray]) -> list[OutputAccuracy]:
    """Per-output figures of ``candidate`` against ``reference``, in the reference's order.

    Raises ValueError when the two do not hold the same outputs with the same shapes (a
    variant's signature never differs from its reference's in names or shapes).
    """
    if set(reference) != set(candidate):
        raise ValueError(f"outputs differ: {sorted(reference)} vs {sorted(candidate)}")
    return [_compare_one(name, np.asarray(reference[name]), np.asarray(candidate[name]))
            for name in reference]


def _compare_one(name: str, ref: np.ndarray, got: np.ndarray) -> OutputAccuracy:
    if ref.shape != got.shape or ref.ndim < 1 or ref.shape[0] < 1:
        raise ValueError(f"output {name!r}: shapes {ref.shape} and {got.shape} differ or hold "
                         "no samples")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(ref64 - got64)
    samples = ref.shape[0]
    flat_ref, flat_got = ref64.reshape(samples, -1), got64.reshape(samples, -1)
    top1 = None
    if is_class_like(tuple(ref.shape[1:])):
        top1 = float(np.mean(flat_ref.argmax(axis=1) == flat_got.argmax(axis=1)))
    return OutputAccuracy(
        name=name,
        max_abs_error=_finite_or_inf(np.max(diff)),
        mean_abs_error=_finite_or_inf(np.mean(diff)),
        cosine=float(np.mean([_cosine(a, b) for a, b in zip(flat_ref, flat_got, strict=True)])),
        top1=top1,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def _finite_or_inf(value: Any) -> float:
    v = float(value)
    return v if math.isfinite(v) else math.inf


def judge(figures: list[OutputAccuracy], tolerance: Tolerance) -> str:
    """Why ``figures`` fall outside ``tolerance`` (the first failing figure, named), or "".

    The reason names the output, the figure and the bound, e.g.
    ``"scores: top-1 agreement 0.12 < 0.95"``.
    """
    for f in figures:
        if not math.isfinite(f.max_abs_error):
            return f"{f.name}: non-finite outputs"
        if f.cosine < tolerance.min_cosine:
            return f"{f.name}: cosine similarity {f.cosine:.4f} < {tolerance.min_cosine:g}"
        if f.top1 is not None and f.top1 < tolerance.min_top1:
            return f"{f.name}: top-1 agreement {f.top1:.3f} < {tolerance.min_top1:g}"
    return ""
