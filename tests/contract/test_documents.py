"""protos.contract.documents: the formats of signed documents, written once for both sides."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protos.contract import ContractError
from protos.contract.documents import (
    Quantization,
    Signed,
    TensorSpec,
    canonical_json,
    key_id,
    parse_payload,
    parse_rfc3339,
    rfc3339,
)

NOW = datetime(2026, 11, 28, 4, 0, 0, 123456, tzinfo=UTC)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    doc = {"b": [1, 2], "a": "é", "c": {"z": None, "y": 1.5}}
    assert canonical_json(doc) == b'{"a":"\\u00e9","b":[1,2],"c":{"y":1.5,"z":null}}'
    assert canonical_json(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), object()])
def test_canonical_json_refuses_what_json_cannot_carry(value: object) -> None:
    """Input tried: NaN, +/-infinity and a Python object in a document to sign."""
    with pytest.raises(ContractError, match="cannot be signed"):
        canonical_json({"scale": value})


def test_nested_form_round_trips_as_standard_padded_base64() -> None:
    signed = Signed(b'{"x":1}', bytes(range(64)), "0123456789abcdef")
    nested = signed.to_json()

    assert base64.b64decode(nested["payload"], validate=True) == signed.payload
    assert nested["signature"].endswith("=")  # 64 bytes encode with padding
    assert Signed.from_json(nested) == signed


@pytest.mark.parametrize("nested", [
    {"payload": "***", "signature": "", "key_id": "k"},      # not base64
    {"signature": "AA==", "key_id": "k"},                     # no payload
    {"payload": 5, "signature": "AA==", "key_id": "k"},       # payload not a string
    {"payload": "AA==", "signature": "AA==", "key_id": 7},    # key id not a string
    ["payload", "signature"],                                 # not an object
])
def test_a_malformed_nested_document_is_refused(nested: object) -> None:
    with pytest.raises(ContractError, match="signed document"):
        Signed.from_json(nested)


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"[1, 2]", b"{not json"])
def test_parse_payload_accepts_only_a_utf8_json_object(payload: bytes) -> None:
    """Input tried: invalid UTF-8, a JSON array, broken JSON."""
    with pytest.raises(ContractError, match="signed payload"):
        parse_payload(payload)


def test_key_id_is_16_hex_of_sha256_over_the_raw_key() -> None:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(public) == hashlib.sha256(raw).hexdigest()[:16]


def test_rfc3339_is_utc_with_z_and_round_trips() -> None:
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert rfc3339(berlin) == "2026-11-28T04:00:00Z"
    assert parse_rfc3339("2026-11-28T04:00:00Z") == NOW.replace(microsecond=0)
    assert parse_rfc3339("2026-11-28T04:00:00.5Z").microsecond == 500000


def test_rfc3339_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2026, 1, 1))


@pytest.mark.parametrize("text", ["2026-11-28T04:00:00+00:00", "2026-11-28 04:00:00Z",
                                  "yesterday", "2026-13-45T04:00:00Z", 12])
def test_parse_rfc3339_refuses_anything_but_a_valid_utc_z_time(text: object) -> None:
    with pytest.raises(ContractError):
        parse_rfc3339(text)


def test_tensor_spec_round_trips_with_per_channel_quantization() -> None:
    spec = TensorSpec("w", (8, 3), "int8", Quantization((0.5, 0.25, 0.125), (0, 0, 0), 1))
    assert TensorSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert spec.to_json()["quantization"] == {
        "scale": [0.5, 0.25, 0.125], "zero_point": [0, 0, 0], "quantized_dimension": 1}


@pytest.mark.parametrize("bad", [
    {"name": "", "shape": [1], "dtype": "float32"},
    {"name": "x", "shape": [1.5], "dtype": "float32"},
    {"name": "x", "shape": [True], "dtype": "float32"},
    {"name": "x", "shape": [1], "dtype": ""},
    {"name": "x", "shape": [1], "dtype": "int8", "quantization": {"scale": []}},
    {"name": "x", "shape": [1], "dtype": "int8", "quantization": {"scale": [float("nan")]}},
    {"name": "x", "shape": [1], "dtype": "int8", "quantization": {"scale": [-1.0]}},
    {"name": "x", "shape": [1], "dtype": "int8",
     "quantization": {"scale": [1.0, 2.0], "zero_point": [0]}},
    {"name": "x", "shape": [1], "dtype": "int8", "quantization": "0.5"},
])
def test_a_malformed_tensor_spec_is_refused(bad: dict[str, object]) -> None:
    """Input tried: empty name, fractional and boolean dimensions, empty dtype, an empty, NaN or
    negative scale, scales and zero points that disagree in number, a quantization string."""
    with pytest.raises(ContractError):
        TensorSpec.from_json(bad)
