"""Golden samples: the artifact both sides read the same way, bounded before it is read."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest

from protos.contract import ContractError
from protos.contract.documents import TensorSpec
from protos.contract.golden import Golden, GoldenRef, decode, encode, mismatch

INPUTS = [TensorSpec("image", (1, 4, 4, 1), "float32")]
OUTPUTS = [TensorSpec("scores", (1, 3), "float32")]


def sample_arrays(k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.random((k, 1, 4, 4, 1), dtype=np.float32),
            rng.random((k, 1, 3), dtype=np.float32))


def ref_for(data: bytes, samples: int = 2, atol: float = 0.01) -> GoldenRef:
    return GoldenRef(hashlib.sha256(data).hexdigest(), len(data), samples, {"scores": atol})


def test_round_trip_is_exact_and_byte_for_byte_deterministic() -> None:
    x, y = sample_arrays()
    data = encode([x], [y])
    assert data == encode([x], [y])   # fixed timestamps: the same bytes, one artifact
    golden = decode(data, ref_for(data), INPUTS, OUTPUTS)
    assert golden.samples == 2
    np.testing.assert_array_equal(golden.inputs["image"], x)
    np.testing.assert_array_equal(golden.outputs["scores"], y)


def test_outputs_within_atol_pass_and_beyond_it_name_sample_output_and_error() -> None:
    x, y = sample_arrays()
    golden = Golden({"image": x}, {"scores": y})
    assert mismatch(golden, {"scores": y + 0.005}, {"scores": 0.01}) is None
    off = y.copy()
    off[1, 0, 2] += 0.5
    found = mismatch(golden, {"scores": off}, {"scores": 0.01})
    assert found is not None
    assert str(found).startswith("sample 1, output 'scores': max abs error 0.5")
    assert (found.sample, found.output, found.limit) == (1, "scores", 0.01)
    assert found.error == pytest.approx(0.5, abs=1e-6)
    nan = y.copy()
    nan[0, 0, 0] = np.nan
    found = mismatch(golden, {"scores": nan}, {"scores": 1.0})
    assert found is not None and "non-finite" in str(found) and found.sample == 0


@pytest.mark.parametrize("case", ["size", "member", "shape", "dtype", "inflated", "not-zip"])
def test_a_file_that_does_not_fit_its_manifest_is_refused(case: str) -> None:
    x, y = sample_arrays()
    data = encode([x], [y])
    ref = ref_for(data)
    if case == "size":                    # truncated in transit
        data = data[:-10]
    elif case == "member":                # an array for an output the manifest does not have
        data = encode([x], [y, y])
        ref = ref_for(data)
    elif case == "shape":                 # three samples where the manifest says two
        data = encode([x[[0, 1, 1]]], [y[[0, 1, 1]]])
        ref = ref_for(data)
    elif case == "dtype":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, a in (("input_0.npy", x.astype(np.float64)), ("output_0.npy", y)):
                member = io.BytesIO()
                np.lib.format.write_array(member, a)
                z.writestr(name, member.getvalue())
        data = buffer.getvalue()
        ref = ref_for(data)
    elif case == "inflated":              # a member that claims far more than two samples
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("input_0.npy", b"\0" * 10_000_000)
            z.writestr("output_0.npy", b"\0" * 10)
        data = buffer.getvalue()
        ref = ref_for(data)
    else:
        data = b"not a zip at all"
        ref = ref_for(data)
    with pytest.raises(ContractError):
        decode(data, ref, INPUTS, OUTPUTS)


def test_the_manifest_reference_is_checked_against_the_outputs() -> None:
    good = {"sha256": "a" * 64, "size": 10, "samples": 2, "atol": {"scores": 0.01}}
    assert GoldenRef.from_json(good, OUTPUTS).atol == {"scores": 0.01}
    for bad in ({**good, "sha256": "x"}, {**good, "size": 0}, {**good, "samples": True},
                {**good, "atol": {}}, {**good, "atol": {"scores": -1}},
                {**good, "atol": {"scores": float("inf")}}, "golden"):
        with pytest.raises(ContractError):
            GoldenRef.from_json(bad, OUTPUTS)
