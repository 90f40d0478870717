"""Accuracy figures of a variant against the reference, and the tolerance that judges them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controlplane.errors import InvalidArgumentError
from controlplane.optimize.accuracy import Tolerance, compare, is_class_like, judge

TOLERANCE = Tolerance(min_cosine=0.99, min_top1=0.95)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def scores(seed: int = 0, samples: int = 32) -> np.ndarray:
    return softmax(np.random.default_rng(seed).normal(0, 3, (samples, 1, 10))).astype(np.float32)


def test_identical_outputs_agree_perfectly() -> None:
    ref = scores()
    (f,) = compare({"scores": ref}, {"scores": ref.copy()})
    assert (f.max_abs_error, f.mean_abs_error, f.top1) == (0.0, 0.0, 1.0)
    assert f.cosine == pytest.approx(1.0)
    assert judge([f], TOLERANCE) == ""


def test_uniform_scores_from_a_misrun_kernel_are_rejected_on_top1_and_cosine() -> None:
    # What tflite-runtime 2.14 gives for a dynamic-range CNN: every class 0.1.
    ref = scores()
    uniform = np.full_like(ref, 0.1)
    (f,) = compare({"scores": ref}, {"scores": uniform})
    assert f.cosine < 0.9 and f.top1 is not None and f.top1 < 0.5
    assert judge([f], TOLERANCE).startswith("scores: cosine similarity")
    assert "top-1 agreement" in judge([f], Tolerance(min_cosine=0.0, min_top1=0.95))


def test_small_quantization_noise_is_within_tolerance() -> None:
    ref = scores()
    noisy = ref + np.random.default_rng(1).normal(0, 1e-3, ref.shape).astype(np.float32)
    (f,) = compare({"scores": ref}, {"scores": noisy})
    assert 0 < f.max_abs_error < 0.01 and f.top1 == 1.0
    assert judge([f], TOLERANCE) == ""


def test_non_finite_outputs_are_never_within_tolerance() -> None:
    ref = scores()
    bad = ref.copy()
    bad[3, 0, 2] = np.nan
    (f,) = compare({"scores": ref}, {"scores": bad})
    assert math.isinf(f.max_abs_error)
    assert judge([f], Tolerance(0.0, 0.0)) == "scores: non-finite outputs"


def test_top1_only_for_class_like_outputs() -> None:
    assert is_class_like((10,)) and is_class_like((1, 10))
    assert not is_class_like((1,)) and not is_class_like((4, 4)) and not is_class_like((1, 8, 8, 3))
    boxes = np.random.default_rng(2).random((8, 4, 4)).astype(np.float32)
    (f,) = compare({"boxes": boxes}, {"boxes": boxes})
    assert f.top1 is None


def test_zero_outputs_agree_with_zero_and_not_with_anything_else() -> None:
    zero = np.zeros((2, 3), np.float32)
    assert compare({"y": zero}, {"y": zero})[0].cosine == 1.0
    assert compare({"y": zero}, {"y": zero + 1})[0].cosine == 0.0


def test_outputs_that_do_not_match_are_an_error_not_a_figure() -> None:
    with pytest.raises(ValueError, match="outputs differ"):
        compare({"a": scores()}, {"b": scores()})
    with pytest.raises(ValueError, match="shapes"):
        compare({"a": scores(samples=4)}, {"a": scores(samples=5)})


def test_a_tolerance_outside_0_to_1_is_refused_and_overrides_apply() -> None:
    with pytest.raises(InvalidArgumentError, match="min_cosine"):
        Tolerance(1.5, 0.9)
    with pytest.raises(InvalidArgumentError, match="min_top1"):
        Tolerance(0.9, float("nan"))
    assert TOLERANCE.with_overrides({"min_top1": 0.5}) == Tolerance(0.99, 0.5)
    assert TOLERANCE.with_overrides(None) == TOLERANCE
