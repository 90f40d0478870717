"""Run models in a real TFLite interpreter on this machine: time them, or compute reference outputs.

``measure_latency`` loads the model in the interpreter asked for ("auto": the first of the
shared contract's ``PREFERENCE`` installed here, as on a device), fills every input with
deterministic random data of the input's own dtype and shape, runs a few warm-up invocations and
then times ``invoke()`` alone.

Invariants:
- The same model, seed and interpreter get the same inputs every time.
- Quantized tensors are quantized and dequantized with the shared contract's arithmetic, so a
  figure computed here is the figure a device computes.
- Only ``invoke()`` is timed; setting inputs and the warm-up runs are not.
- A model the interpreter refuses to load or run raises ``ModelRunError`` carrying the
  interpreter's own message; an interpreter that is not installed raises
  ``InterpreterUnavailableError``; a bad argument raises ``ValueError``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controlplane.registry.errors import InterpreterUnavailableError, ModelRunError
from protos.contract.interpreters import INTERPRETERS, InterpreterMissing, import_interpreter
from protos.contract.quantization import (
    dequantize,
    from_interpreter_detail,
    is_quantized,
    quantize,
)

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

    ``interpreter`` is "auto" (the contract's preference), "tflite-runtime" or
    "ai-edge-litert". One thread by default, so figures compare across machines and runs.

    Raises:
        ModelRunError: the interpreter could not load, allocate or run the model.
        InterpreterUnavailableError: the requested interpreter is not installed.
        ValueError: ``runs`` or ``num_threads`` < 1, or an unknown interpreter name.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if num_threads < 1:
        raise ValueError("num_threads must be at least 1")
    name, version, runner = _load(model_path, interpreter, num_threads)
    rng = np.random.default_rng(seed)
    for detail in runner.get_input_details():
        runner.set_tensor(detail["index"], random_input(detail, rng))

    try:
        median, p95 = _timed_invokes(runner, runs, lambda _i: None)
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"{name} could not run {Path(model_path).name}: {exc}") from exc
    return Measurement(
        latency_ms_median=median,
        latency_ms_p95=p95,
        interpreter_name=name,
        interpreter_version=version,
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
    name, _, runner = _load(model_path, interpreter, 1)
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


@dataclass(frozen=True)
class Evaluation:
    """A model run on every sample of a batch: its real-valued outputs stacked over the samples
    (``{name: (samples, *shape)}``) and the latency of ``invoke()`` over ``runs`` timed runs."""

    outputs: dict[str, np.ndarray]
    latency_ms_median: float
    latency_ms_p95: float
    interpreter_name: str
    interpreter_version: str


def evaluate(
    model_path: Path,
    samples: Mapping[str, np.ndarray],
    *,
    runs: int,
    interpreter: str = "auto",
) -> Evaluation:
    """Run the model on each sample of ``samples`` (``{input name: (N, *shape)}``, real values),
    then time ``runs`` invocations cycling over the samples after ``_WARMUP_RUNS`` untimed ones.

    Raises:
        ValueError: the samples do not fit the model's inputs, or ``runs`` < 1.
        ModelRunError, InterpreterUnavailableError: as ``measure_latency``.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    name, version, runner = _load(model_path, interpreter, 1)
    details = runner.get_input_details()
    if set(samples) != {d["name"] for d in details}:
        raise ValueError(f"samples must be exactly {sorted(d['name'] for d in details)}, "
                         f"got {sorted(samples)}")
    count = {len(np.asarray(v)) for v in samples.values()}
    if len(count) != 1 or 0 in count:
        raise ValueError("every input needs the same, non-zero number of samples")
    n = count.pop()
    tensors = [[(d["index"], _to_tensor(np.asarray(samples[d["name"]][i]).reshape(d["shape"]), d))
                for d in details] for i in range(n)]
    outputs: dict[str, list[np.ndarray]] = {d["name"]: [] for d in runner.get_output_details()}

    def set_sample(i: int) -> None:
        for index, value in tensors[i % n]:
            runner.set_tensor(index, value)

    try:
        for i in range(n):
            set_sample(i)
            runner.invoke()
            for d in runner.get_output_details():
                outputs[d["name"]].append(_to_real(runner.get_tensor(d["index"]), d))
        median, p95 = _timed_invokes(runner, runs, set_sample)
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"{name} could not run {Path(model_path).name}: {exc}") from exc
    return Evaluation(
        outputs={k: np.stack(v) for k, v in outputs.items()},
        latency_ms_median=median, latency_ms_p95=p95,
        interpreter_name=name, interpreter_version=version,
    )


def _timed_invokes(runner: Any, runs: int, prepare: Callable[[int], None]) -> tuple[float, float]:
    """(median, p95) in milliseconds of ``runs`` ``invoke()`` calls after ``_WARMUP_RUNS``
    untimed ones; ``prepare(i)`` sets the inputs of call ``i`` and is not timed. The p95 is
    nearest-rank: an observed latency, never an interpolated one."""
    timings_ns = []
    for i in range(_WARMUP_RUNS + runs):
        prepare(i)
        start = time.perf_counter_ns()
        runner.invoke()
        elapsed = time.perf_counter_ns() - start
        if i >= _WARMUP_RUNS:
            timings_ns.append(elapsed)
    ordered = sorted(t / 1e6 for t in timings_ns)
    return statistics.median(ordered), ordered[math.ceil(0.95 * len(ordered)) - 1]


def _to_tensor(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    quantization = from_interpreter_detail(detail)
    if value.dtype.kind == "f" and quantization is not None and is_quantized(dtype, quantization):
        return quantize(value, quantization, dtype)
    return value.astype(dtype)


def _to_real(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    quantization = from_interpreter_detail(detail)
    if quantization is not None and is_quantized(value.dtype, quantization):
        return dequantize(value, quantization)
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


def _load(model_path: Path, interpreter: str, num_threads: int) -> tuple[str, str, Any]:
    """An interpreter with the model loaded and tensors allocated: (name, version, runner)."""
    if interpreter != "auto" and interpreter not in INTERPRETERS:
        raise ValueError(
            f"unknown interpreter {interpreter!r}: use auto, {', '.join(INTERPRETERS)}")
    try:
        loaded = import_interpreter(None if interpreter == "auto" else interpreter)
    except InterpreterMissing as exc:
        raise InterpreterUnavailableError(str(exc)) from exc
    try:
        runner = loaded.cls(model_path=str(model_path), num_threads=num_threads)
        runner.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(
            f"{loaded.name} could not load {Path(model_path).name}: {exc}") from exc
    return loaded.name, loaded.version, runner
