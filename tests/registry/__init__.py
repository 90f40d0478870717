"""Tests of the registry domain's building blocks, and the helpers they share."""

from __future__ import annotations

from ai_edge_quantizer import quantizer, recipe

from controlplane import modelgen
from controlplane.registry.tflite import inspect_model

QUANTIZATIONS = ("static", "weight_only", "dynamic")


def quantize(model: bytes, which: str) -> bytes:
    """``model`` quantized by ai-edge-quantizer: "static" (int8 weights and activations,
    calibrated on ``modelgen.calibration_samples``), "weight_only" or "dynamic" (int8 weights)."""
    if which == "static":
        q = quantizer.Quantizer(bytearray(model), recipe.static_wi8_ai8())
        samples = modelgen.calibration_samples(inspect_model(model).inputs, samples=8, seed=1)
        runs = [{name: array[i] for name, array in samples.items()} for i in range(8)]
        result = q.quantize(q.calibrate({"serving_default": runs}), enable_progress_report=False)
    else:
        recipes = {"weight_only": recipe.weight_only_wi8_afp32, "dynamic": recipe.dynamic_wi8_afp32}
        q = quantizer.Quantizer(bytearray(model), recipes[which]())
        result = q.quantize(enable_progress_report=False)
    assert result.quantized_model is not None
    return bytes(result.quantized_model)
