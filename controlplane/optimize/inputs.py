"""The inputs every variant of a version is measured on.

The push's calibration samples when it brought some (at most ``measure_samples`` of them, in
their order), else ``synthetic_samples`` deterministic ones made from the input signature: the
same version always gets the same inputs, so figures can be compared run to run.

Inputs are real values keyed by input name, stacked on a new first axis: ``(N, *shape)``;
the evaluator quantizes them for a quantized input, as the agent does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from controlplane.config import Settings
from controlplane.registry.models import ModelVersion
from protos.contract.documents import TensorSpec
from protos.contract.quantization import is_quantized, representable_range

Source = Literal["calibration", "synthetic"]
_SEED = 20_261_202


def measurement_inputs(mv: ModelVersion, calibration: Path | None, *,
                       settings: Settings) -> tuple[dict[str, np.ndarray], Source]:
    specs = [TensorSpec.from_json(t) for t in mv.inputs]
    if calibration is not None:
        # Checked at push (names, shapes, dtypes, inflated size) before it was stored.
        with np.load(calibration, allow_pickle=False) as archive:
            return ({s.name: np.asarray(archive[s.name][:settings.measure_samples], np.float32)
                     for s in specs}, "calibration")
    return synthetic_inputs(specs, settings.synthetic_samples), "synthetic"


def synthetic_inputs(specs: list[TensorSpec], samples: int) -> dict[str, np.ndarray]:
    """Uniform values in [0, 1) for float inputs (normalised pixels or features), the whole
    representable range for a quantized one, 0 or 1 for integer inputs (indices, lengths)."""
    rng = np.random.default_rng(_SEED)
    out = {}
    for spec in specs:
        shape = (samples, *(d if d > 0 else 1 for d in spec.shape))
        dtype = np.dtype(spec.dtype)
        if spec.quantization is not None and is_quantized(dtype, spec.quantization):
            lo, hi = representable_range(spec.quantization, dtype, spec.shape)
            out[spec.name] = rng.uniform(np.min(lo), np.max(hi), shape).astype(np.float32)
        elif dtype.kind == "f":
            out[spec.name] = rng.random(shape, dtype=np.float32)
        elif dtype.kind in "iub":
            out[spec.name] = rng.integers(0, 1, shape, endpoint=True).astype(dtype)
        else:
            raise ValueError(f"input {spec.name!r} is {dtype}: no synthetic inputs for it; push "
                             "calibration data")
    return out
