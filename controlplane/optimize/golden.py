"""Choosing a variant's golden samples and their tolerance (the format is the contract's,
``protos.contract.golden``).

The samples are the first inputs the variant was measured on, as many as ``golden_samples`` and
``max_golden_bytes`` allow; the outputs are the variant's own in the first interpreter that ran
it within tolerance (the reference interpreter when it did), so a device whose interpreter runs
the variant correctly reproduces them.

The tolerance per output is the widest of:
- four times the largest difference seen between interpreters that ran the variant within
  tolerance (their honest disagreement, e.g. rounding ties, with room for other CPUs),
- 1% of the output's largest magnitude (float kernels differ across CPUs and builds),
- two quantization steps of a quantized output (one rounding step either way).
A runtime that computes the variant wrongly (uniform scores from a mis-run kernel) is off by far
more than that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from controlplane.config import Settings
from controlplane.registry.measure import Evaluation
from protos.contract import golden
from protos.contract.documents import TensorSpec

_RELATIVE = 0.01
_SPREAD_FACTOR = 4.0
_STEPS = 2.0
_FLOOR = 1e-6


@dataclass(frozen=True)
class GoldenSamples:
    data: bytes
    samples: int
    atol: dict[str, float]

    def ref(self, sha256: str) -> dict[str, Any]:
        """The manifest's ``golden`` field once ``data`` is stored under ``sha256``."""
        return golden.GoldenRef(sha256, len(self.data), self.samples, self.atol).to_json()


def make(samples: Mapping[str, np.ndarray], ok: Sequence[Evaluation],
         specs: tuple[list[dict[str, Any]], list[dict[str, Any]]], *,
         settings: Settings) -> GoldenSamples | None:
    """Golden samples for a variant that ``ok`` (at least one) ran within tolerance; None when
    not even one sample fits ``max_golden_bytes`` (the agent then builds inputs itself)."""
    inputs = [TensorSpec.from_json(t) for t in specs[0]]
    outputs = [TensorSpec.from_json(t) for t in specs[1]]
    if any(d < 0 for t in (*inputs, *outputs) for d in t.shape):
        return None   # open dimensions: the contract's samples need fixed shapes
    per_sample = 4 * sum(math.prod(t.shape) for t in (*inputs, *outputs))
    overhead = 256 * (len(inputs) + len(outputs)) + 256
    available = len(next(iter(samples.values())))
    count = min(settings.golden_samples, available,
                (settings.max_golden_bytes - overhead) // max(per_sample, 1))
    if count < 1:
        return None
    chosen = ok[0].outputs
    atol = {t.name: _tolerance(t, [e.outputs[t.name][:count] for e in ok]) for t in outputs}
    data = golden.encode(
        [np.asarray(samples[t.name][:count], np.float32).reshape(count, *t.shape)
         for t in inputs],
        [np.asarray(chosen[t.name][:count], np.float32).reshape(count, *t.shape)
         for t in outputs],
    )
    return GoldenSamples(data, count, atol)


def _tolerance(spec: TensorSpec, runs: list[np.ndarray]) -> float:
    first = runs[0].astype(np.float64)
    spread = max((float(np.max(np.abs(first - r.astype(np.float64)), initial=0.0))
                  for r in runs[1:]), default=0.0)
    candidates = [_SPREAD_FACTOR * spread, _RELATIVE * float(np.max(np.abs(first), initial=0.0)),
                  _FLOOR]
    if spec.quantization is not None:
        candidates.append(_STEPS * max(spec.quantization.scale))
    return float(max(candidates))
