"""Checking a calibration file (``model push --calibration FILE.npz``) without inflating it.

Layout (the CLI contract): one array per model input, keyed by the input's name, samples stacked
on a new first axis: ``(N, *input_shape)``, the same ``N`` for every input.

Invariants: the check reads only the zip directory and each ``.npy`` header: names, dtypes,
shapes and the inflated size are judged before a single array is loaded, so a small archive that
inflates to gigabytes costs nothing; every bound is a setting (``max_calibration_inflated_bytes``,
``max_calibration_samples``). A file that passes holds exactly what its headers say.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass

import numpy as np

from controlplane.errors import InvalidArgumentError, ResourceExhaustedError
from protos.contract.documents import TensorSpec

_NPY_HEADER_MAX = 64 * 1024  # numpy writes headers of a few hundred bytes


@dataclass(frozen=True)
class CalibrationSummary:
    samples: int
    inflated_bytes: int


def check_calibration(
    data: bytes,
    inputs: tuple[TensorSpec, ...],
    *,
    max_inflated_bytes: int,
    max_samples: int,
    min_samples: int = 1,
) -> CalibrationSummary:
    """Check ``data`` (the .npz bytes) against the model's ``inputs``.

    Raises InvalidArgumentError (not a readable .npz, names, dtypes or shapes that do not fit,
    fewer than ``min_samples``),
    ResourceExhaustedError (inflates past ``max_inflated_bytes``, more than ``max_samples``).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidArgumentError(f"calibration file is not a readable .npz: {exc}") from exc
    with archive:
        members = {_array_name(info): info for info in archive.infolist()}
        expected = {t.name for t in inputs}
        if set(members) != expected:
            raise InvalidArgumentError(
                f"calibration file holds arrays {sorted(members)[:10]}; it needs exactly one per "
                f"model input: {sorted(expected)}")
        inflated = sum(info.file_size for info in members.values())
        if inflated > max_inflated_bytes:
            raise ResourceExhaustedError(
                f"calibration file inflates to {inflated} bytes; this server accepts at most "
                f"{max_inflated_bytes} (setting max_calibration_inflated_bytes): use fewer samples")
        counts = {t.name: _check_array(archive, members[t.name], t) for t in inputs}
    samples = set(counts.values())
    if len(samples) != 1:
        raise InvalidArgumentError(
            f"calibration arrays hold different numbers of samples: {counts}")
    (n,) = samples
    if n < min_samples:
        raise InvalidArgumentError(
            f"calibration file holds {n} sample(s); full-integer calibration needs at least "
            f"{min_samples} (setting min_calibration_samples) to find activation ranges")
    if n > max_samples:
        raise ResourceExhaustedError(
            f"calibration file holds {n} samples; this server accepts at most {max_samples} "
            f"(setting max_calibration_samples)")
    return CalibrationSummary(samples=n, inflated_bytes=inflated)


def _array_name(info: zipfile.ZipInfo) -> str:
    # np.savez stores array "x" as member "x.npy"; anything else is not an array of the file.
    return info.filename[:-4] if info.filename.endswith(".npy") else info.filename


def _check_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, spec: TensorSpec) -> int:
    """The number of samples in the member for ``spec``, from its header alone."""
    name = spec.name
    try:
        with archive.open(info) as f:
            head = f.read(_NPY_HEADER_MAX)
        stream = io.BytesIO(head)
        version = np.lib.format.read_magic(stream)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, _fortran, dtype = reader(stream)
        header_bytes = stream.tell()
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidArgumentError(
            f"calibration array {name!r} is not a readable .npy entry: {exc}") from exc
    if dtype.kind not in "fiu" or dtype.hasobject:
        raise InvalidArgumentError(
            f"calibration array {name!r} is {dtype}; it must hold numbers (float32 preferred)")
    if len(shape) != len(spec.shape) + 1 or tuple(shape[1:]) != tuple(spec.shape):
        raise InvalidArgumentError(
            f"calibration array {name!r} has shape {tuple(shape)}; expected (N, "
            f"{', '.join(map(str, spec.shape))})")
    if shape[0] < 1:
        raise InvalidArgumentError(f"calibration array {name!r} holds no sample")
    if header_bytes + math.prod(shape) * dtype.itemsize != info.file_size:
        raise InvalidArgumentError(
            f"calibration array {name!r}: its header says {tuple(shape)} {dtype}, which does not "
            "match the entry's size (truncated or forged)")
    return int(shape[0])
