"""The trust core: decides whether signed documents and artifact bytes may be used. No I/O.

Invariants (docs/contract.md is the contract):
- A payload is parsed only after its ed25519 signature verified against the trust key, and it is
  parsed from the exact signed bytes, never re-serialised.
- ``verify_desired_state`` applies the checks in the documented order: signature, type, device,
  expiry, sequence, then every entry's manifest (signature, type, agreement with the entry).
- Nothing here touches the network, the disk or the clock: callers pass ``now`` and bytes in, and
  get a frozen ``DesiredState`` or a typed ``AgentDataError`` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.errors import (
    ArtifactMismatchError,
    ConfigurationError,
    DocumentError,
    ExpiredError,
    RollbackError,
    SignatureError,
    WrongDeviceError,
)
from agent.refs import ModelRef
from protos.contract import ContractError
from protos.contract.documents import (
    DESIRED_STATE_TYPE,
    ENTRY_FIELDS,
    MANIFEST_TYPE,
    Signed,
    SignedLike,
    TensorSpec,
    key_id,
    parse_payload,
    parse_rfc3339,
)
from protos.contract.golden import GoldenRef
from protos.contract.identifiers import is_sha256
from protos.contract.latency import parse_latency

__all__ = [
    "DesiredEntry",
    "DesiredState",
    "Signed",
    "check_artifact",
    "load_public_key",
    "nested_signed",
    "verify_desired_state",
    "verify_manifest",
    "verify_signed",
    "verify_stored_desired_state",
]


def nested_signed(obj: object) -> Signed:
    """A nested signed document (the JSON form). Raises DocumentError when it is not one."""
    try:
        return Signed.from_json(obj)
    except ContractError as exc:
        raise DocumentError(str(exc)) from exc


@dataclass(frozen=True)
class DesiredEntry:
    """One model the device should run, with its verified manifest."""

    model: str
    version: str
    variant: str
    sha256: str
    size: int
    manifest: dict[str, Any]
    signed_manifest: Signed
    #: Fetch, verify and prove it, but do not activate it: the device keeps serving what it
    #: runs until a later desired state lists the same ref without ``hold``.
    hold: bool = False

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.model, self.version, self.variant, self.sha256)


@dataclass(frozen=True)
class DesiredState:
    """A verified desired state; ``signed`` is what to persist and re-verify at start."""

    device_id: str
    sequence: int
    issued_at: datetime
    expires_at: datetime
    entries: tuple[DesiredEntry, ...]
    signed: Signed

    def entry(self, model: str) -> DesiredEntry | None:
        return next((e for e in self.entries if e.model == model), None)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """The ed25519 trust key from SubjectPublicKeyInfo PEM bytes.

    Raises ConfigurationError when the bytes are not an ed25519 public key in PEM.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"the trust key is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError("the trust key must be an ed25519 public key")
    return key


def verify_signed(payload: bytes, signature: bytes, key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify ``signature`` over ``payload`` and only then parse the payload as a JSON object.

    Raises SignatureError (bad signature), DocumentError (verified bytes that are not a JSON
    object).
    """
    try:
        key.verify(bytes(signature), bytes(payload))
    except InvalidSignature as exc:
        raise SignatureError(
            f"signature does not verify against trust key {key_id(key)}"
        ) from exc
    try:
        return parse_payload(payload)
    except ContractError as exc:
        raise DocumentError(str(exc)) from exc


def verify_manifest(signed: SignedLike, key: Ed25519PublicKey) -> dict[str, Any]:
    """A verified artifact manifest. Raises SignatureError or DocumentError."""
    doc = verify_signed(signed.payload, signed.signature, key)
    _expect_type(doc, MANIFEST_TYPE)
    for name in ("model", "version", "variant"):
        _field(doc, name, str)
    _sha256_field(doc)
    _size_field(doc)
    for side in ("inputs", "outputs"):
        specs = _field(doc, side, list)
        if not specs:
            raise DocumentError(f"manifest lists no {side}")
        for spec in specs:
            _tensor_spec(spec, side)
    if doc.get("golden") is not None:
        try:
            GoldenRef.from_json(doc["golden"], [TensorSpec.from_json(t) for t in doc["outputs"]])
        except ContractError as exc:
            raise DocumentError(f"manifest {exc}") from exc
    if doc.get("latency_ms") is not None:
        try:
            parse_latency(doc["latency_ms"])
        except ContractError as exc:
            raise DocumentError(f"manifest {exc}") from exc
    return doc


def verify_desired_state(
    signed: SignedLike,
    key: Ed25519PublicKey,
    *,
    device_id: str,
    held_sequence: int,
    now: datetime,
) -> DesiredState | None:
    """Accept a desired state from the server, in the order docs/contract.md gives.

    Returns None when its sequence equals ``held_sequence`` (nothing to do).
    Raises SignatureError, DocumentError, WrongDeviceError, ExpiredError, RollbackError.
    """
    doc = verify_signed(signed.payload, signed.signature, key)
    _expect_type(doc, DESIRED_STATE_TYPE)
    _expect_device(doc, device_id)
    expires_at = _time_field(doc, "expires_at")
    if expires_at <= now:
        raise ExpiredError(f"desired state expired at {doc['expires_at']}")
    sequence = _sequence_field(doc)
    if sequence == held_sequence:
        return None
    if sequence < held_sequence:
        raise RollbackError(
            f"desired state sequence {sequence} is older than the held {held_sequence}"
        )
    return _desired_state(doc, signed, key, expires_at)


def verify_stored_desired_state(
    signed: SignedLike, key: Ed25519PublicKey, *, device_id: str
) -> DesiredState:
    """Re-verify the desired state the agent accepted earlier, at start.

    Signature, type, device and entries are checked again; expiry and sequence are not: they
    guard the acceptance of new documents, and a device that was offline past the expiry keeps
    serving what it last accepted.
    """
    doc = verify_signed(signed.payload, signed.signature, key)
    _expect_type(doc, DESIRED_STATE_TYPE)
    _expect_device(doc, device_id)
    _sequence_field(doc)
    return _desired_state(doc, signed, key, _time_field(doc, "expires_at"))


def check_artifact(size: int, sha256_hex: str, manifest: dict[str, Any]) -> None:
    """Raise ArtifactMismatchError unless ``size`` and ``sha256_hex`` are the manifest's."""
    if size != manifest["size"]:
        raise ArtifactMismatchError(
            f"artifact is {size} bytes, manifest says {manifest['size']}"
        )
    if sha256_hex.lower() != manifest["sha256"]:
        raise ArtifactMismatchError(
            f"artifact sha256 {sha256_hex} differs from the manifest's {manifest['sha256']}"
        )


def _desired_state(
    doc: dict[str, Any], signed: SignedLike, key: Ed25519PublicKey, expires_at: datetime
) -> DesiredState:
    entries = tuple(_entry(raw, key) for raw in _field(doc, "models", list))
    names = [e.model for e in entries]
    if len(names) != len(set(names)):
        raise DocumentError("desired state lists a model twice (one version per model)")
    return DesiredState(
        device_id=doc["device_id"],
        sequence=doc["sequence"],
        issued_at=_time_field(doc, "issued_at"),
        expires_at=expires_at,
        entries=entries,
        signed=Signed.of(signed),
    )


def _entry(raw: object, key: Ed25519PublicKey) -> DesiredEntry:
    if not isinstance(raw, dict):
        raise DocumentError("desired state entry is not an object")
    for name in ("model", "version", "variant"):
        _field(raw, name, str)
    _sha256_field(raw)
    _size_field(raw)
    signed_manifest = nested_signed(raw.get("manifest"))
    manifest = verify_manifest(signed_manifest, key)
    for name in ENTRY_FIELDS:
        if manifest[name] != raw[name]:
            raise DocumentError(
                f"manifest of {raw['model']} disagrees with the entry on {name}: "
                f"{manifest[name]!r} != {raw[name]!r}"
            )
    hold = raw.get("hold", False)
    if not isinstance(hold, bool):
        raise DocumentError(f"field 'hold' of {raw['model']} must be a boolean, got {hold!r}")
    return DesiredEntry(
        model=raw["model"],
        version=raw["version"],
        variant=raw["variant"],
        sha256=raw["sha256"],
        size=raw["size"],
        manifest=manifest,
        signed_manifest=signed_manifest,
        hold=hold,
    )


def _expect_type(doc: dict[str, Any], expected: str) -> None:
    if doc.get("type") != expected:
        raise DocumentError(f"document type is {doc.get('type')!r}, expected {expected!r}")


def _expect_device(doc: dict[str, Any], device_id: str) -> None:
    if doc.get("device_id") != device_id:
        raise WrongDeviceError(
            f"desired state is for device {doc.get('device_id')!r}, this is {device_id!r}"
        )


def _field(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    # bool is an int in Python; a JSON true is never a size or a sequence.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DocumentError(f"field {name!r} must be a {kind.__name__}, got {value!r}")
    return value


def _sha256_field(doc: dict[str, Any]) -> str:
    value = _field(doc, "sha256", str)
    if not is_sha256(value):
        raise DocumentError(f"sha256 {value!r} is not 64 lowercase hex characters")
    return value


def _size_field(doc: dict[str, Any]) -> int:
    value = _field(doc, "size", int)
    if value < 0:
        raise DocumentError(f"size {value} is negative")
    return value


def _sequence_field(doc: dict[str, Any]) -> int:
    value = _field(doc, "sequence", int)
    if value < 1:
        raise DocumentError(f"sequence {value} must be at least 1")
    return value


def _time_field(doc: dict[str, Any], name: str) -> datetime:
    try:
        return parse_rfc3339(_field(doc, name, str))
    except ContractError as exc:
        raise DocumentError(f"{name}: {exc}") from exc


def _tensor_spec(spec: object, side: str) -> None:
    try:
        TensorSpec.from_json(spec)
    except ContractError as exc:
        raise DocumentError(f"manifest {side}: {exc}") from exc
