"""The live model table: which runner answers for which model name, swapped without a pause.

Invariants:
- The table is copy-on-write: a request picks the runner from the dict it sees, and a swap
  publishes a new dict, so requests in flight finish on the runner they started with and no
  request waits for, or fails because of, an activation.
- One active version per model name.
- The agent changes the table only through ``agent.status.StatusBoard``, so that a model going
  live or away and the install state ``status`` shows for it change in one step.
- Every inference the table runs is measured (latency, ok/error) in the ``MetricsRecorder``;
  requests refused before reaching a model (bad input, unknown model) are not model errors and
  are not counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.errors import AmbiguousModelError, InferenceError, ModelNotFoundError, NoModelLoadedError
from agent.metrics import MetricsRecorder
from agent.refs import ModelRef
from agent.runtime import ModelRunner
from agent.trust import Signed


@dataclass(frozen=True)
class LiveModel:
    ref: ModelRef
    runner: ModelRunner
    signed_manifest: Signed


@dataclass(frozen=True)
class Prediction:
    outputs: dict[str, np.ndarray]
    ref: ModelRef
    latency_ms: float


class ModelTable:
    def __init__(self, metrics: MetricsRecorder) -> None:
        self._metrics = metrics
        self._write_lock = threading.Lock()
        self._models: dict[str, LiveModel] = {}

    def snapshot(self) -> dict[str, LiveModel]:
        """The live models now; a consistent view that later swaps do not change."""
        return self._models

    def resolve(self, model: str | None) -> LiveModel:
        """The live model answering for ``model`` (None: the only one).

        Raises NoModelLoadedError, ModelNotFoundError, AmbiguousModelError.
        """
        models = self._models
        if not models:
            raise NoModelLoadedError("no model is loaded yet; check `edgefleet-agent status`")
        if not model:
            if len(models) > 1:
                raise AmbiguousModelError(
                    f"several models are loaded ({', '.join(sorted(models))}); name one"
                )
            return next(iter(models.values()))
        try:
            return models[model]
        except KeyError:
            raise ModelNotFoundError(
                f"model {model!r} is not loaded; loaded: {', '.join(sorted(models))}"
            ) from None

    def predict(self, model: str | None, inputs: Mapping[str, Any]) -> Prediction:
        """Run ``inputs`` on the live model for ``model``; see ``ModelRunner.predict``."""
        live = self.resolve(model)
        started = time.perf_counter()
        try:
            outputs = live.runner.predict(inputs)
        except InferenceError:
            self._metrics.record(live.ref, _ms_since(started), ok=False)
            raise
        latency_ms = _ms_since(started)
        finite = all(np.isfinite(v).all() for v in outputs.values())
        self._metrics.record(live.ref, latency_ms, ok=True, finite=finite)
        return Prediction(outputs=outputs, ref=live.ref, latency_ms=latency_ms)

    def activate(self, live: LiveModel) -> LiveModel | None:
        """Make ``live`` answer for its model name; returns the model it replaced."""
        with self._write_lock:
            models = dict(self._models)
            previous = models.get(live.ref.model)
            models[live.ref.model] = live
            self._models = models
        return previous

    def remove(self, model: str) -> LiveModel | None:
        """Stop serving ``model``; returns what was live."""
        with self._write_lock:
            models = dict(self._models)
            previous = models.pop(model, None)
            self._models = models
        return previous


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
