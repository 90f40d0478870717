"""Signed documents as both sides write and read them (docs/contract.md, "Signed documents").

- A signed payload is ``canonical_json(doc)``: sorted keys, no spaces, UTF-8, NaN and infinities
  refused, so the bytes are always JSON. A verifier checks the signature over the exact bytes and
  parses them only then; nobody re-serialises a payload.
- ``key_id`` is the first 16 hex characters of sha256 over the 32-byte raw ed25519 public key.
- Inside JSON a signed document nests as ``{"payload": b64, "signature": b64, "key_id": str}``
  (standard base64 with padding): ``Signed.to_json`` / ``Signed.from_json``.
- Times are RFC 3339 UTC strings ending in ``Z``, whole seconds when written.
- A manifest describes each input and output as a ``TensorSpec`` (name, shape, dtype,
  quantization); ``TensorSpec.from_json`` is the one check of that shape.

Signing is the control plane's and verifying the agent's trust core's; this module holds only
what both must agree on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protos.contract.errors import ContractError

MANIFEST_TYPE = "edgefleet.manifest.v1"
DESIRED_STATE_TYPE = "edgefleet.desired_state.v1"
#: Fields on which a desired-state entry and the manifest it carries must agree.
ENTRY_FIELDS = ("model", "version", "variant", "sha256", "size")

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


class SignedLike(Protocol):
    """Anything shaped like a ``pb.SignedDocument`` (the proto message or ``Signed``)."""

    @property
    def payload(self) -> bytes: ...

    @property
    def signature(self) -> bytes: ...

    @property
    def key_id(self) -> str: ...


@dataclass(frozen=True)
class Signed:
    """Signed bytes as they travel: the exact payload, its signature and the signer's key id."""

    payload: bytes
    signature: bytes
    key_id: str

    @classmethod
    def of(cls, doc: SignedLike) -> Signed:
        return cls(bytes(doc.payload), bytes(doc.signature), str(doc.key_id))

    def to_json(self) -> dict[str, str]:
        """The nested JSON form (standard base64 with padding)."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "key_id": self.key_id,
        }

    @classmethod
    def from_json(cls, obj: object) -> Signed:
        """Parse the nested JSON form. Raises ContractError when ``obj`` is not one."""
        if not isinstance(obj, Mapping):
            raise ContractError("a nested signed document must be an object")
        try:
            payload, signature = obj["payload"], obj["signature"]
            key = obj.get("key_id", "")
            if not (isinstance(payload, str) and isinstance(signature, str)
                    and isinstance(key, str)):
                raise TypeError("payload, signature and key_id must be strings")
            return cls(base64.b64decode(payload, validate=True),
                       base64.b64decode(signature, validate=True), key)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ContractError(f"malformed nested signed document: {exc}") from exc


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The exact bytes that get signed for ``doc``. Raises ContractError for NaN/infinity or a
    value JSON cannot carry."""
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ContractError(f"document cannot be signed as JSON: {exc}") from exc


def parse_payload(payload: bytes) -> dict[str, Any]:
    """A verified payload as a JSON object. Raises ContractError when it is not one.

    Call only after the signature over ``payload`` verified.
    """
    try:
        doc = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"signed payload is not UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ContractError("signed payload is not a JSON object")
    return doc


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of sha256 over the 32-byte raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def rfc3339(moment: datetime) -> str:
    """``2026-11-28T04:00:00Z`` for an aware datetime (fractions of a second are dropped).

    Raises ValueError for a naive datetime: a time without a zone cannot go on the wire.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: object) -> datetime:
    """Inverse of ``rfc3339`` (fractional seconds accepted). Raises ContractError."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ContractError(f"not an RFC 3339 UTC time ending in Z: {text!r}")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:   # 2026-13-45T...
        raise ContractError(f"not a valid time: {text!r} ({exc})") from exc


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``, per channel along
    ``quantized_dimension`` when there is more than one scale."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": list(self.scale),
            "zero_point": list(self.zero_point),
            "quantized_dimension": self.quantized_dimension,
        }

    @classmethod
    def from_json(cls, obj: object) -> Quantization:
        """Raises ContractError unless ``obj`` is a well-formed quantization object."""
        if not isinstance(obj, Mapping):
            raise ContractError("quantization must be an object or null")
        scale, zero_point = obj.get("scale"), obj.get("zero_point", [])
        dim = obj.get("quantized_dimension", 0)
        if (not isinstance(scale, list) or not scale
                or not all(is_json_number(s) and math.isfinite(s) and s > 0 for s in scale)):
            raise ContractError(f"quantization scale must be a list of positive numbers: {scale!r}")
        if not isinstance(zero_point, list) or not all(is_json_int(z) for z in zero_point):
            raise ContractError(f"quantization zero_point must be a list of integers: "
                                f"{zero_point!r}")
        if zero_point and len(zero_point) != len(scale):
            raise ContractError(f"quantization has {len(scale)} scales and {len(zero_point)} "
                                "zero points")
        if not is_json_int(dim) or dim < 0:
            raise ContractError(f"quantized_dimension must be a non-negative integer: {dim!r}")
        return cls(tuple(float(s) for s in scale), tuple(int(z) for z in zero_point), dim)


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as a manifest describes it. ``shape`` may hold -1 for a
    dimension the model leaves open; ``dtype`` is a numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "quantization": None if self.quantization is None else self.quantization.to_json(),
        }

    @classmethod
    def from_json(cls, obj: object) -> TensorSpec:
        """Raises ContractError unless ``obj`` is a well-formed tensor spec."""
        if not isinstance(obj, Mapping):
            raise ContractError("a tensor spec must be an object")
        name, shape, dtype = obj.get("name"), obj.get("shape"), obj.get("dtype")
        if not isinstance(name, str) or not name:
            raise ContractError(f"tensor name must be a non-empty string: {name!r}")
        if not isinstance(dtype, str) or not dtype:
            raise ContractError(f"tensor {name!r}: dtype must be a non-empty string")
        if not isinstance(shape, list) or not all(is_json_int(d) and d >= -1 for d in shape):
            raise ContractError(f"tensor {name!r}: shape {shape!r} is not a list of integers")
        quant = obj.get("quantization")
        return cls(name, tuple(shape), dtype,
                   None if quant is None else Quantization.from_json(quant))


def is_json_int(value: object) -> bool:
    # bool is an int in Python; a JSON true is never a dimension or a zero point.
    return isinstance(value, int) and not isinstance(value, bool)


def is_json_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
