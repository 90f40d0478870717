"""Loading TFLite artifacts into interpreters and running them with float inputs and outputs.

Invariants:
- Callers always speak float: ``ModelRunner.predict`` takes float arrays keyed by the manifest's
  input names and returns float32 arrays keyed by its output names; (u)int8 tensors are
  quantized and dequantized with the shared contract's arithmetic (``protos.contract``) and the
  scale and zero point the model file declares.
- A runner whose interpreter tensors (names, dtypes, shapes) contradict the signed manifest is
  never built (ModelLoadError).
- An interpreter is not thread-safe: each request borrows one from a small pool
  (``runner_pool_size``, ``agent.pool``) and returns it, so a runner serves concurrent callers
  safely.
- Requests are checked before any interpreter is touched (names, float dtype, exact shape, and
  so size; finite values for a quantized input); a malformed one raises InvalidInputError and
  changes nothing.
- What the checks and conversions need per tensor (index, dtype, shape, quantization, whether
  it is quantized) is read from the interpreter once, at load, and kept in ``_Binding``s: a
  request does no lookup in the interpreter's tensor details.
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.budget import LatencyBudget
from agent.errors import (
    ConfigurationError,
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    ValidationError,
)
from agent.findings import LATENCY_BUDGET, LOAD_FAILED, VALIDATION_FAILED, Finding
from agent.pool import InterpreterPool
from agent.settings import AgentSettings
from protos.contract import ContractError
from protos.contract.documents import Quantization
from protos.contract.interpreters import InterpreterMissing, import_interpreter
from protos.contract.quantization import (
    dequantize,
    from_interpreter_detail,
    is_quantized,
    quantize,
    representable_range,
    same_quantization,
)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class InterpreterInfo:
    name: str
    version: str


@functools.cache
def interpreter_factory(choice: str | None = None) -> tuple[Callable[..., Any], InterpreterInfo]:
    """The Interpreter class to use and what it is.

    ``choice`` None takes the shared contract's preference (tflite-runtime, else ai-edge-litert).
    Raises ConfigurationError when the chosen (or every) interpreter package is missing.
    """
    try:
        loaded = import_interpreter(choice)
    except (InterpreterMissing, ValueError) as exc:
        raise ConfigurationError(str(exc)) from exc
    return loaded.cls, InterpreterInfo(name=loaded.name, version=loaded.version)


@dataclass(frozen=True)
class _Binding:
    """One model tensor as the interpreter holds it, under its manifest name; built once at
    load, read by every request."""

    name: str
    index: int
    dtype: np.dtype
    shape: tuple[int, ...]
    quantization: Quantization | None
    quantized: bool

    def describe(self) -> str:
        return f"{self.name} (float {list(self.shape)})"


@dataclass(frozen=True)
class ValidationReport:
    runs: int
    latency_ms: float   # median over the runs


class ModelRunner:
    """A loaded artifact, ready to serve float requests from several threads."""

    def __init__(
        self, path: Path | str, manifest: dict[str, Any], *, settings: AgentSettings | None = None
    ) -> None:
        """Load ``path`` into ``settings.runner_pool_size`` interpreters.

        Raises ModelLoadError when the interpreter refuses the file or its tensors contradict
        ``manifest``; ConfigurationError when no interpreter package is installed.
        """
        self.settings = settings or AgentSettings()
        self.manifest = manifest
        factory, self.interpreter_info = interpreter_factory(self.settings.interpreter_choice)
        first = self._load(factory, path)
        self.inputs = _bindings(first.get_input_details(), manifest["inputs"], "input")
        self.outputs = _bindings(first.get_output_details(), manifest["outputs"], "output")
        self._input_names = frozenset(b.name for b in self.inputs)
        self._pool = InterpreterPool(
            [first, *(self._load(factory, path)
                      for _ in range(self.settings.runner_pool_size - 1))])

    def _load(self, factory: Callable[..., Any], path: Path | str) -> Any:
        try:
            interpreter = factory(
                model_path=str(path), num_threads=self.settings.interpreter_threads
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as exc:
            # The interpreter here refuses what the control plane built (an operator it lacks,
            # a delegate failing): a finding about this hardware, not about the bytes.
            raise ModelLoadError(f"{self.interpreter_info.name} cannot load {path}: {exc}",
                                 finding=Finding(LOAD_FAILED)) from exc
        return interpreter

    def predict(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run one inference; inputs and outputs are float arrays keyed by tensor name.

        Raises InvalidInputError (names, shapes, dtypes, non-finite values for a quantized
        input) before touching an interpreter, InferenceError if the interpreter fails.
        """
        feed = self._prepare(inputs)
        interpreter = self._pool.borrow()
        try:
            for binding, value in feed:
                interpreter.set_tensor(binding.index, value)
            interpreter.invoke()
            # get_tensor copies: the interpreter's buffers are reused by the next borrower.
            raw = [(b, interpreter.get_tensor(b.index)) for b in self.outputs]
        except (ValueError, RuntimeError) as exc:
            raise InferenceError(f"interpreter failed: {exc}") from exc
        finally:
            self._pool.give_back(interpreter)
        return {b.name: _dequantize(b, value) for b, value in raw}

    def validate(self, budget: LatencyBudget | None = None) -> ValidationReport:
        """Smoke-test before activation: zeros, then random inputs in range; outputs must be
        finite and the median latency within ``budget`` (default: the absolute
        ``validation_latency_budget_ms``).

        Raises ValidationError (its ``finding`` says which check failed, with the figures).
        """
        rng = np.random.default_rng(0)
        latencies = []
        for run in range(max(1, self.settings.validation_runs)):
            sample = {
                b.name: (np.zeros(b.shape, np.float32) if run == 0 else _random_input(b, rng))
                for b in self.inputs
            }
            started = time.perf_counter()
            try:
                outputs = self.predict(sample)
            except (InvalidInputError, InferenceError) as exc:
                raise ValidationError(f"smoke inference failed: {exc}",
                                      finding=Finding(VALIDATION_FAILED)) from exc
            latencies.append((time.perf_counter() - started) * 1000.0)
            for name, value in outputs.items():
                if not np.all(np.isfinite(value)):
                    raise ValidationError(
                        f"output {name!r} is not finite on a smoke input",
                        finding=Finding(VALIDATION_FAILED, observed=math.inf, output=name))
        median = statistics.median(latencies)
        budget = budget or LatencyBudget(self.settings.validation_latency_budget_ms,
                                         "the absolute budget")
        if median > budget.limit_ms:
            raise ValidationError(budget.describe(median, "median latency"),
                                  finding=Finding(LATENCY_BUDGET, observed=median,
                                                  limit=budget.limit_ms))
        return ValidationReport(runs=len(latencies), latency_ms=median)

    def _prepare(self, inputs: Mapping[str, Any]) -> list[tuple[_Binding, np.ndarray]]:
        if not isinstance(inputs, Mapping):
            raise InvalidInputError("inputs must be a mapping of input name to array")
        if inputs.keys() != self._input_names:
            expected = self._input_names
            unknown = sorted(set(inputs) - expected)
            missing = sorted(expected - set(inputs))
            takes = ", ".join(b.describe() for b in self.inputs)
            parts = ([f"unknown input(s) {unknown}"] if unknown else []) + (
                [f"missing input(s) {missing}"] if missing else []
            )
            raise InvalidInputError(f"{'; '.join(parts)}; the model takes: {takes}")
        return [(b, _quantize(b, inputs[b.name])) for b in self.inputs]


def _bindings(
    details: list[dict[str, Any]], specs: list[dict[str, Any]], side: str
) -> tuple[_Binding, ...]:
    by_name = {d["name"]: d for d in details}
    if len(details) != len(specs):
        raise ModelLoadError(
            f"model has {len(details)} {side}s, the manifest lists {len(specs)}"
        )
    bindings = []
    for spec in specs:
        d = by_name.get(spec["name"])
        if d is None:
            raise ModelLoadError(
                f"manifest {side} {spec['name']!r} is not in the model (it has {sorted(by_name)})"
            )
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(x) for x in d["shape"])
        if dtype.name != spec["dtype"]:
            raise ModelLoadError(
                f"{side} {spec['name']!r} is {dtype.name} in the model, {spec['dtype']} in the "
                "manifest"
            )
        if len(shape) != len(spec["shape"]) or any(
            m not in (-1, s) for m, s in zip(spec["shape"], shape, strict=True)
        ):
            raise ModelLoadError(
                f"{side} {spec['name']!r} has shape {list(shape)} in the model, "
                f"{spec['shape']} in the manifest"
            )
        quantization = from_interpreter_detail(d)
        declared = spec.get("quantization")
        declared_q = Quantization.from_json(declared) if declared is not None else None
        if not same_quantization(quantization, declared_q):
            # A signed manifest and its model disagree on how to read a tensor: predictions
            # would be quietly wrong, so the model is not loaded.
            raise ModelLoadError(
                f"{side} {spec['name']!r} is quantized as {quantization} in the model, "
                f"{declared_q} in the manifest"
            )
        bindings.append(
            _Binding(
                name=spec["name"],
                index=int(d["index"]),
                dtype=dtype,
                shape=shape,
                quantization=quantization,
                quantized=is_quantized(dtype, quantization),
            )
        )
    return tuple(bindings)


def _quantize(binding: _Binding, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise InvalidInputError(
            f"input {binding.name!r} has dtype {array.dtype.name}; send float arrays "
            "(the agent quantizes for quantized models)"
        )
    if array.shape != binding.shape:
        raise InvalidInputError(
            f"input {binding.name!r} has shape {list(array.shape)}, the model takes "
            f"{list(binding.shape)}"
        )
    if not binding.quantized:
        # No copy when the caller's array already is C-contiguous of the tensor's dtype:
        # set_tensor copies it into the interpreter anyway.
        return np.ascontiguousarray(array, dtype=binding.dtype)
    assert binding.quantization is not None
    try:
        return quantize(array, binding.quantization, binding.dtype)
    except ContractError as exc:
        raise InvalidInputError(f"input {binding.name!r}: {exc}") from exc


def _dequantize(binding: _Binding, value: np.ndarray) -> np.ndarray:
    if not binding.quantized:
        return np.asarray(value, dtype=np.float32)
    assert binding.quantization is not None
    return dequantize(value, binding.quantization)


def _random_input(binding: _Binding, rng: np.random.Generator) -> np.ndarray:
    """Float values the input can represent: its quantized range, or [-1, 1] for floats."""
    lo, hi = -1.0, 1.0
    if binding.quantized:
        assert binding.quantization is not None
        lo, hi = representable_range(binding.quantization, binding.dtype, binding.shape)
    return rng.uniform(lo, hi, binding.shape).astype(np.float32)
