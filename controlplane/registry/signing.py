"""The control plane's ed25519 signing key, and the signed documents it issues.

The formats are the shared contract's (``protos.contract.documents``; docs/contract.md): a
payload is exactly ``canonical_json(doc)``, key ids and the nested JSON form are defined there.

Invariants:
- ``Signer.load_or_create`` never overwrites an existing private key. A new key is written in
  full to a temp file (mode 0600) and hard-linked into place, so a concurrent starter either
  wins or loads the complete key the winner wrote. The public half is written beside it and must
  match the private half, or loading fails.
- Documents are built only from validated fields; times are RFC 3339 UTC with a ``Z`` suffix.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.registry.errors import SigningKeyError
from protos.contract import ContractError
from protos.contract.documents import (
    DESIRED_STATE_TYPE,
    ENTRY_FIELDS,
    MANIFEST_TYPE,
    Signed,
    TensorSpec,
    canonical_json,
    key_id,
    parse_payload,
    rfc3339,
)
from protos.contract.files import fsync_dir, replace_atomically, write_temp_beside
from protos.contract.golden import GoldenRef
from protos.contract.identifiers import check_sha256
from protos.contract.latency import MeasuredLatency, latency_json

log = logging.getLogger(__name__)


class Signer:
    """Signs documents with the control plane's ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self.key_id = key_id(self._public_key)

    @classmethod
    def generate(cls) -> Signer:
        """A signer with a fresh key held only in memory (for tests and tools)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, private_path: Path, public_path: Path, *, create: bool = True
                       ) -> Signer:
        """Load the key pair, creating it on first use when ``create`` is true.

        Raises:
            SigningKeyError: a file is unreadable, not an ed25519 key, or the halves differ;
                or it does not exist and ``create`` is false.
        """
        private_path, public_path = Path(private_path), Path(public_path)
        if not private_path.exists():
            if not create:
                raise SigningKeyError(f"no signing key at {private_path}")
            _create_private_key(private_path)
        elif private_path.stat().st_mode & 0o077:
            # Not fatal (the operator may have reasons), but worth saying: the key signs for
            # the whole fleet.
            log.warning("signing key %s is readable by other users; chmod 600 it", private_path)
        try:
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(f"cannot load signing key {private_path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{private_path} is not an ed25519 private key")
        signer = cls(key)
        signer._ensure_public_file(public_path)
        return signer

    @property
    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM (what agents take as ``--trust-key``)."""
        return self._public_key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign_document(self, doc: Mapping[str, Any]) -> Signed:
        """Sign ``canonical_json(doc)``. Raises ContractError for a value JSON cannot carry."""
        payload = canonical_json(doc)
        return Signed(payload=payload, signature=self._private_key.sign(payload),
                         key_id=self.key_id)

    def verify(self, payload: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's signature over ``payload``."""
        try:
            self._public_key.verify(signature, payload)
        except InvalidSignature:
            return False
        return True

    def _ensure_public_file(self, public_path: Path) -> None:
        expected = self.public_pem
        try:
            existing = public_path.read_bytes()
        except FileNotFoundError:
            _write_atomically(public_path, expected, mode=0o644)
            return
        except OSError as exc:
            raise SigningKeyError(f"cannot read public key {public_path}: {exc}") from exc
        try:
            loaded = serialization.load_pem_public_key(existing)
        except ValueError as exc:
            raise SigningKeyError(f"{public_path} is not a PEM public key: {exc}") from exc
        if not isinstance(loaded, Ed25519PublicKey) or key_id(loaded) != self.key_id:
            raise SigningKeyError(
                f"{public_path} does not match the private key beside it: agents trusting it "
                "would reject everything; restore the matching pair or remove the .pub file "
                "to have it rewritten from the private key")


def build_manifest(
    *,
    model: str,
    version: str,
    variant: str,
    sha256: str,
    size: int,
    inputs: Sequence[TensorSpec | Mapping[str, Any]],
    outputs: Sequence[TensorSpec | Mapping[str, Any]],
    min_runtime: str,
    created_at: datetime,
    golden: Mapping[str, Any] | None = None,
    latency: Mapping[str, MeasuredLatency] | None = None,
) -> dict[str, Any]:
    """An ``edgefleet.manifest.v1`` document. ``golden`` is the reference to the variant's
    golden samples (``protos.contract.golden``), ``latency`` what each interpreter that ran it
    within tolerance measured (``protos.contract.latency``); each is left out when None or empty.

    Raises ValueError on an invalid field."""
    for field, value in (("model", model), ("version", version), ("variant", variant),
                         ("min_runtime", min_runtime)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"manifest {field} must be a non-empty string")
    try:
        check_sha256(sha256)
    except ContractError as exc:
        raise ValueError(f"manifest {exc}") from exc
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"manifest size must be a non-negative integer, got {size!r}")
    doc = {
        "type": MANIFEST_TYPE,
        "model": model,
        "version": version,
        "variant": variant,
        "sha256": sha256,
        "size": size,
        "min_runtime": min_runtime,
        "created_at": rfc3339(created_at),
        "inputs": [_tensor_json(t) for t in inputs],
        "outputs": [_tensor_json(t) for t in outputs],
    }
    if golden is not None:
        try:
            ref = GoldenRef.from_json(golden, [TensorSpec.from_json(t) for t in
                                               (_tensor_json(t) for t in outputs)])
        except ContractError as exc:
            raise ValueError(f"manifest {exc}") from exc
        doc["golden"] = ref.to_json()
    if latency:
        try:
            doc["latency_ms"] = latency_json(latency)
        except ContractError as exc:
            raise ValueError(f"manifest {exc}") from exc
    return doc


def build_desired_state(
    *,
    device_id: str,
    sequence: int,
    issued_at: datetime,
    expires_at: datetime,
    models: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """An ``edgefleet.desired_state.v1`` document.

    Each entry of ``models`` has ``manifest`` (a ``Signed`` or its nested JSON form) and may
    repeat ``model``, ``version``, ``variant``, ``sha256``, ``size``; missing ones are taken from
    the manifest, given ones must agree with it, since an agent refuses an entry that disagrees.
    An entry may carry ``hold`` (a boolean, passed through; absent means false).

    Raises:
        ValueError: a field is invalid, an entry disagrees with its manifest, or a model name
            appears twice (a device runs one version per model).
    """
    if not isinstance(device_id, str) or not device_id:
        raise ValueError("device_id must be a non-empty string")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"sequence must be a non-negative integer, got {sequence!r}")
    issued, expires = rfc3339(issued_at), rfc3339(expires_at)
    if expires_at <= issued_at:
        raise ValueError("expires_at must be later than issued_at")
    entries = [_desired_entry(m) for m in models]
    names = [e["model"] for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"a model appears twice in one desired state: {sorted(names)}")
    return {
        "type": DESIRED_STATE_TYPE,
        "device_id": device_id,
        "sequence": sequence,
        "issued_at": issued,
        "expires_at": expires,
        "models": entries,
    }


def _desired_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    raw = entry.get("manifest")
    if isinstance(raw, Signed):
        manifest = raw
    elif isinstance(raw, Mapping):
        manifest = Signed.from_json(raw)
    else:
        raise ValueError("each desired-state entry needs its signed manifest under 'manifest'")
    doc = parse_payload(manifest.payload)
    if doc.get("type") != MANIFEST_TYPE:
        raise ValueError(f"entry manifest has type {doc.get('type')!r}, not {MANIFEST_TYPE}")
    result: dict[str, Any] = {}
    for field in ENTRY_FIELDS:
        value = entry.get(field, doc.get(field))
        if value != doc.get(field):
            raise ValueError(
                f"desired-state entry {field}={value!r} disagrees with its manifest "
                f"({doc.get(field)!r})")
        result[field] = value
    result["manifest"] = manifest.to_json()
    if "hold" in entry:
        # Not a manifest field: outside its maintenance window the device fetches and proves
        # the variant but keeps serving what it runs (docs/contract.md, "Desired state").
        if not isinstance(entry["hold"], bool):
            raise ValueError(f"desired-state entry hold={entry['hold']!r} is not a boolean")
        result["hold"] = entry["hold"]
    return result


def _tensor_json(tensor: TensorSpec | Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's tensor entry; a mapping is checked against the contract's shape."""
    if isinstance(tensor, TensorSpec):
        return tensor.to_json()
    return TensorSpec.from_json(tensor).to_json()


def _create_private_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _write_temp(path, pem, mode=0o600)
    try:
        # link() fails if the key appeared meanwhile: then the other starter's key stands.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
            fsync_dir(path.parent)
    except OSError as exc:
        raise SigningKeyError(f"cannot create signing key {path}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    try:
        replace_atomically(path, data, mode=mode)
    except OSError as exc:
        raise SigningKeyError(f"cannot write {path}: {exc}") from exc


def _write_temp(path: Path, data: bytes, *, mode: int) -> Path:
    """A fully written, fsynced file with ``mode`` beside ``path``."""
    try:
        return write_temp_beside(path, data, mode=mode)
    except OSError as exc:
        raise SigningKeyError(f"cannot write beside {path}: {exc}") from exc
