"""Calibration files are judged from their zip directory and .npy headers, before any array is
loaded (audit finding M1: a 1.5 MB .npz took the server from 121 MB to 1.7 GB before it was
refused, because every array was loaded before names and shapes were checked)."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from controlplane.errors import InvalidArgumentError, ResourceExhaustedError
from controlplane.registry.calibration import check_calibration
from protos.contract.documents import TensorSpec

IMAGE = TensorSpec("image", (1, 28, 28, 1), "float32")
LIMITS = {"max_inflated_bytes": 64 * 1024 * 1024, "max_samples": 1000}


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_a_well_formed_file_passes_and_reports_what_its_headers_say() -> None:
    data = npz(image=np.zeros((8, 1, 28, 28, 1), np.float32))
    summary = check_calibration(data, (IMAGE,), **LIMITS)
    assert summary.samples == 8 and summary.inflated_bytes > 8 * 28 * 28 * 4


def test_an_archive_that_inflates_past_the_cap_is_refused_without_inflating_it() -> None:
    """Input tried: a few hundred KB of compressed zeros that inflate to 256 MiB (a zip bomb
    shaped like a calibration file; the cap here is 64 MiB). Refused from the zip directory;
    peak Python memory stays tiny."""
    buf = io.BytesIO()
    rows, chunk = 256 * 1024 * 1024 // (28 * 28 * 4), 4096
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, 1, 28, 28, 1)}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("image.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        zeros = bytes(28 * 28 * 4 * chunk)
        for _ in range(rows // chunk):
            f.write(zeros)
    data = buf.getvalue()
    assert len(data) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ResourceExhaustedError, match="max_calibration_inflated_bytes"):
            check_calibration(data, (IMAGE,), **LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(("arrays", "says"), [
    ({"picture": np.zeros((2, 1, 28, 28, 1), np.float32)}, "exactly one per model input"),
    ({"image": np.zeros((2, 1, 28, 28, 1), np.float32),
      "extra": np.zeros(1, np.float32)}, "exactly one per model input"),
    ({"image": np.zeros((1, 28, 28, 1), np.float32)}, "expected \\(N, 1, 28, 28, 1\\)"),
    ({"image": np.zeros((2, 1, 28, 29, 1), np.float32)}, "expected \\(N, 1, 28, 28, 1\\)"),
    ({"image": np.zeros((0, 1, 28, 28, 1), np.float32)}, "no sample"),
    ({"image": np.full((2, 1, 28, 28, 1), "x")}, "must hold numbers"),
    ({"image": np.zeros((2, 1, 28, 28, 1), np.complex64)}, "must hold numbers"),
])
def test_names_dtypes_and_shapes_are_checked_from_the_headers(
        arrays: dict[str, np.ndarray], says: str) -> None:
    """Input tried: a wrongly named array, an extra array, samples not stacked on a new axis,
    a wrong spatial size, zero samples, strings, complex numbers."""
    with pytest.raises(InvalidArgumentError, match=says):
        check_calibration(npz(**arrays), (IMAGE,), **LIMITS)


def test_inputs_with_different_numbers_of_samples_are_refused() -> None:
    """Input tried: a two-input model calibrated with 3 samples of one input and 4 of the other."""
    a, b = TensorSpec("a", (1, 4), "float32"), TensorSpec("b", (1, 2), "float32")
    data = npz(a=np.zeros((3, 1, 4), np.float32), b=np.zeros((4, 1, 2), np.float32))
    with pytest.raises(InvalidArgumentError, match="different numbers of samples"):
        check_calibration(data, (a, b), **LIMITS)


def test_more_samples_than_the_setting_allows_are_refused() -> None:
    data = npz(image=np.zeros((11, 1, 28, 28, 1), np.float32))
    with pytest.raises(ResourceExhaustedError, match="max_calibration_samples"):
        check_calibration(data, (IMAGE,), max_inflated_bytes=10**9, max_samples=10)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(40),
                                  np.lib.format.magic(1, 0) + bytes(100)])
def test_bytes_that_are_not_an_npz_are_refused(data: bytes) -> None:
    """Input tried: nothing, text, a truncated zip header, a bare .npy (not an .npz)."""
    with pytest.raises(InvalidArgumentError, match=r"not a readable \.npz"):
        check_calibration(data, (IMAGE,), **LIMITS)


def test_a_header_that_lies_about_the_entrys_size_is_refused() -> None:
    """Input tried: an entry whose .npy header claims 100 samples but holds bytes for 2
    (a forged or truncated file)."""
    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (100, 1, 28, 28, 1)}
    with zipfile.ZipFile(buf, "w") as zf, zf.open("image.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(2 * 28 * 28 * 4))
    with pytest.raises(InvalidArgumentError, match="does not match the entry's size"):
        check_calibration(buf.getvalue(), (IMAGE,), **LIMITS)
