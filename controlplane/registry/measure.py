"""Run models in a real TFLite interpreter on this machine: time them, or compute reference outputs.

``measure_latency`` loads the model in ai-edge-litert (the control plane's interpreter) or
tflite-runtime (the devices' usual one), fills every input with deterministic random data of the
input's own dtype and shape, runs a few warm-up invocations and then times ``invoke()`` alone.

Invariants:
- The same model, seed and interpreter get the same inputs every time.
- Only ``invoke()`` is timed; setting inputs and the warm-up runs are not.
- A model the interpreter refuses to load or run raises ``ModelRunError`` carrying the
  interpreter's own message; an interpreter that is not installed raises
  ``InterpreterUnavailableError``; a bad argument raises ``ValueError``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controlplane.registry.errors import InterpreterUnavailableError, ModelRunError

# Interpreter name (as hardware profiles spell it) -> (module, distribution).
INTERPRETERS: dict[str, tuple[str, str]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
}
_AUTO_ORDER = ("ai-edge-litert", "tflite-runtime")
_WARMUP_RUNS = 3


@dataclass(frozen=True)
class Measurement:
    """Latency of one ``invoke()`` over ``runs`` timed runs, in milliseconds."""

    latency_ms_median: float
    latency_ms_p95: float
    interpreter_name: str
    interpreter_version: str
    runs: int


def measure_latency(
    model_path: Path,
    *,
    runs: int,
    interpreter: str = "auto",
    num_threads: int = 1,
    seed: int = 0,
) -> Measurement:
    """Time ``runs`` invocations of the model after ``_WARMUP_RUNS`` untimed ones.

    ``interpreter`` is "auto" (ai-edge-litert, else tflite-runtime), "ai-edge-litert" or
    "tflite-runtime". One thread by default, so figures compare across machines and runs.

    Raises:
        ModelRunError: the interpreter could not load, allocate or run the model.
        InterpreterUnavailableError: the requested interpreter is not installed.
        ValueError: ``runs`` or ``num_threads`` < 1, or an unknown interpreter name.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if num_threads < 1:
        raise ValueError("num_threads must be at least 1")
    name, runner = _load(model_path, interpreter, num_threads)
    rng = np.random.default_rng(seed)
    for detail in runner.get_input_details():
        runner.set_tensor(detail["index"], random_input(detail, rng))

    timings_ns = []
    try:
        for i in range(_WARMUP_RUNS + runs):
            start = time.perf_counter_ns()
            runner.invoke()
            elapsed = time.perf_counter_ns() - start
            if i >= _WARMUP_RUNS:
                timings_ns.append(elapsed)
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"{name} could not run {Path(model_path).name}: {exc}") from exc

    ordered = sorted(t / 1e6 for t in timings_ns)
    return Measurement(
        latency_ms_median=statistics.median(ordered),
        # Nearest-rank percentile: an observed latency, never an interpolated one.
        latency_ms_p95=ordered[math.ceil(0.95 * len(ordered)) - 1],
        interpreter_name=name,
        interpreter_version=importlib.metadata.version(INTERPRETERS[name][1]),
        runs=runs,
    )


def reference_outputs(
    model_path: Path,
    inputs: Mapping[str, np.ndarray],
    *,
    interpreter: str = "auto",
) -> dict[str, np.ndarray]:
    """Run the model once on ``inputs`` (real values keyed by input name) and return its outputs
    keyed by output name, as real values whatever the model's own tensor types.

    Quantized inputs are quantized with the tensor's scale and zero point, quantized outputs
    dequantized to float32, the way ``edgefleet-agent predict`` presents a variant.

    Raises:
        ValueError: an input is missing, unexpected, or of the wrong size.
        ModelRunError, InterpreterUnavailableError: as ``measure_latency``.
    """
    name, runner = _load(model_path, interpreter, 1)
    details = runner.get_input_details()
    expected = {d["name"] for d in details}
    if set(inputs) != expected:
        raise ValueError(f"inputs must be exactly {sorted(expected)}, got {sorted(inputs)}")
    for d in details:
        value = np.asarray(inputs[d["name"]])
        if value.size != int(np.prod(d["shape"])):
            raise ValueError(f"input {d['name']!r} has shape {value.shape}, the model takes "
                             f"{tuple(int(x) for x in d['shape'])}")
        runner.set_tensor(d["index"], _to_tensor(value.reshape(d["shape"]), d))
    try:
        runner.invoke()
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"{name} could not run {Path(model_path).name}: {exc}") from exc
    return {d["name"]: _to_real(runner.get_tensor(d["index"]), d)
            for d in runner.get_output_details()}


def _to_tensor(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if scale and dtype.kind in "iu" and value.dtype.kind == "f":
        info = np.iinfo(dtype)
        q = np.round(value / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def _to_real(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if scale and value.dtype.kind in "iu":
        return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return value.copy()


def random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Deterministic data for one input tensor, as the interpreter describes it.

    Floats are uniform in [0, 1); 8/16-bit integers (quantized inputs) span their whole range;
    wider integers stay in {0, 1} because they are usually indices or lengths; bools are fair
    coin flips.

    Raises:
        ModelRunError: the input has a type no random data makes sense for (strings).
    """
    shape = tuple(int(d) for d in detail["shape"])
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.random(shape).astype(dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 1, size=shape, endpoint=True, dtype=dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    raise ModelRunError(f"cannot make test data for input {detail['name']!r} of type {dtype}")


def _load(model_path: Path, interpreter: str, num_threads: int) -> tuple[str, Any]:
    """An interpreter with the model loaded and tensors allocated."""
    name, module = _interpreter_module(interpreter)
    try:
        runner = module.Interpreter(model_path=str(model_path), num_threads=num_threads)
        runner.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"{name} could not load {Path(model_path).name}: {exc}") from exc
    return name, runner


def _interpreter_module(interpreter: str) -> tuple[str, Any]:
    if interpreter == "auto":
        for name in _AUTO_ORDER:
            try:
                return name, importlib.import_module(INTERPRETERS[name][0])
            except ImportError:
                continue
        raise InterpreterUnavailableError(
            "no TFLite interpreter is installed: install ai-edge-litert or tflite-runtime")
    if interpreter not in INTERPRETERS:
        raise ValueError(
            f"unknown interpreter {interpreter!r}: use auto, {', '.join(INTERPRETERS)}")
    try:
        return interpreter, importlib.import_module(INTERPRETERS[interpreter][0])
    except ImportError as exc:
        raise InterpreterUnavailableError(
            f"interpreter {interpreter} is not installed ({exc}); pip install "
            f"{INTERPRETERS[interpreter][1]}") from exc
