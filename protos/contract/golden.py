"""Golden samples: inputs a variant is run on and the outputs it must give, within a tolerance.

The control plane computes them where the variant runs correctly and stores them as an artifact
of their own; the variant's signed manifest references it by sha256 and size (so the file is as
trusted as the manifest) and carries the tolerance:

    "golden": {"sha256": "<64 hex>", "size": N, "samples": K, "atol": {"<output>": 0.004, ...}}

An agent proves, before activating a variant, that its own interpreter reproduces the outputs.

The artifact is a zip of ``.npy`` members (an ``.npz``), written byte-for-byte deterministically:
``input_<i>.npy`` / ``output_<j>.npy`` hold the manifest's i-th input and j-th output as float32
``(K, *shape)``, real values (a quantized tensor's values dequantized), members stored in that
order with a fixed timestamp.

Invariants:
- ``decode`` checks every member's declared size against what the manifest's tensors allow
  before reading it, so a crafted file cannot inflate past ``samples x tensor bytes``.
- ``mismatch`` passes only finite outputs within ``atol`` of every golden output.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protos.contract.documents import TensorSpec, is_json_int, is_json_number
from protos.contract.errors import ContractError
from protos.contract.identifiers import check_sha256

_EPOCH = (1980, 1, 1, 0, 0, 0)    # zip's earliest timestamp: the same bytes on every run
_NPY_HEADER_MAX = 4096            # a .npy header is padded to 64 bytes; ours are far smaller


@dataclass(frozen=True)
class GoldenRef:
    """The manifest's ``golden`` field."""

    sha256: str
    size: int
    samples: int
    atol: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "samples": self.samples,
                "atol": dict(self.atol)}

    @classmethod
    def from_json(cls, obj: object, outputs: Sequence[TensorSpec]) -> GoldenRef:
        """Raises ContractError unless ``obj`` is a well-formed reference for these outputs."""
        if not isinstance(obj, Mapping):
            raise ContractError("golden must be an object")
        try:
            sha256 = check_sha256(obj.get("sha256"))
        except ContractError as exc:
            raise ContractError(f"golden sha256: {exc}") from exc
        size, samples, atol = obj.get("size"), obj.get("samples"), obj.get("atol")
        if not isinstance(size, int) or not is_json_int(size) or size < 1:
            raise ContractError(f"golden size must be a positive integer: {size!r}")
        if not isinstance(samples, int) or not is_json_int(samples) or samples < 1:
            raise ContractError(f"golden samples must be a positive integer: {samples!r}")
        names = {t.name for t in outputs}
        if not isinstance(atol, Mapping) or set(atol) != names:
            raise ContractError(f"golden atol must give every output exactly once: {sorted(names)}")
        for name, value in atol.items():
            if not is_json_number(value) or not math.isfinite(value) or value < 0:
                raise ContractError(f"golden atol for {name!r} must be a finite number >= 0")
        return cls(sha256, int(size), int(samples), {k: float(v) for k, v in atol.items()})


@dataclass(frozen=True)
class Golden:
    """Decoded golden samples: ``inputs``/``outputs`` keyed by tensor name, ``(K, *shape)``."""

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]

    @property
    def samples(self) -> int:
        return len(next(iter(self.inputs.values())))


def encode(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> bytes:
    """The artifact's bytes for arrays in the manifest's input and output order."""
    counts = {len(a) for a in (*inputs, *outputs)}
    if len(counts) != 1 or 0 in counts:
        raise ContractError("golden samples need the same, non-zero count in every array")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for prefix, arrays in (("input", inputs), ("output", outputs)):
            for i, array in enumerate(arrays):
                member = io.BytesIO()
                np.lib.format.write_array(member, np.ascontiguousarray(array, np.float32),
                                          allow_pickle=False)
                archive.writestr(zipfile.ZipInfo(f"{prefix}_{i}.npy", _EPOCH), member.getvalue())
    return buffer.getvalue()


def decode(data: bytes, ref: GoldenRef, inputs: Sequence[TensorSpec],
           outputs: Sequence[TensorSpec]) -> Golden:
    """The samples in ``data``, checked against ``ref`` and the manifest's tensors.

    Raises ContractError for anything else: a wrong size, a missing or extra member, a member
    larger than its tensor allows, a dtype other than float32, a shape other than
    ``(ref.samples, *tensor shape)``.
    """
    if len(data) != ref.size:
        raise ContractError(f"golden samples are {len(data)} bytes, the manifest says {ref.size}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
        expected = [(f"input_{i}.npy", t) for i, t in enumerate(inputs)] + \
                   [(f"output_{j}.npy", t) for j, t in enumerate(outputs)]
        if set(members) != {name for name, _ in expected}:
            raise ContractError(f"golden samples hold {sorted(members)}, expected "
                                f"{[name for name, _ in expected]}")
        arrays = {}
        for name, spec in expected:
            arrays[spec.name, name] = _member(archive, members[name], spec, ref.samples)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ContractError):
            raise
        raise ContractError(f"golden samples are not a readable .npz: {exc}") from exc
    return Golden(
        inputs={spec: a for (spec, member), a in arrays.items() if member.startswith("input_")},
        outputs={spec: a for (spec, member), a in arrays.items() if member.startswith("output_")},
    )


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, spec: TensorSpec,
            samples: int) -> np.ndarray:
    values = samples * math.prod(d if d > 0 else 1 for d in spec.shape)
    if any(d < 0 for d in spec.shape):
        raise ContractError(f"tensor {spec.name!r} has an open dimension: golden samples need "
                            "fixed shapes")
    if info.file_size > values * 4 + _NPY_HEADER_MAX:
        raise ContractError(f"golden member {info.filename} is {info.file_size} bytes, more than "
                            f"{samples} sample(s) of {spec.name!r} take")
    with archive.open(info) as f:
        array = np.lib.format.read_array(f, allow_pickle=False)
    if array.dtype != np.float32 or array.shape != (samples, *spec.shape):
        raise ContractError(f"golden {info.filename} is {array.dtype}{list(array.shape)}, "
                            f"expected float32{[samples, *spec.shape]}")
    return array


@dataclass(frozen=True)
class Mismatch:
    """Where outputs left their golden values: the first sample and output off, how far
    (``error``, inf when not finite or of another shape) and the tolerance it broke."""

    sample: int       # -1: the whole output (another shape)
    output: str
    error: float
    limit: float
    message: str

    def __str__(self) -> str:
        return self.message


def mismatch(golden: Golden, actual: Mapping[str, np.ndarray],
             atol: Mapping[str, float]) -> Mismatch | None:
    """Why ``actual`` (``{output: (K, *shape)}`` real values) is not ``golden.outputs`` within
    ``atol``: the first sample and output off, with the error; None when all agree."""
    for name, expected in golden.outputs.items():
        got = np.asarray(actual[name], np.float64)
        if got.shape != expected.shape:
            return Mismatch(-1, name, math.inf, atol[name],
                            f"output {name!r} has shape {list(got.shape)}, expected "
                            f"{list(expected.shape)}")
        for k in range(expected.shape[0]):
            if not np.all(np.isfinite(got[k])):
                return Mismatch(k, name, math.inf, atol[name],
                                f"sample {k}, output {name!r}: non-finite values")
            error = float(np.max(np.abs(got[k] - expected[k].astype(np.float64)), initial=0.0))
            if error > atol[name]:
                return Mismatch(k, name, error, atol[name],
                                f"sample {k}, output {name!r}: max abs error {error:.6g} "
                                f"exceeds the tolerance {atol[name]:.6g}")
    return None
