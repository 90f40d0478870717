"""The trust state: which desired state this device holds, decided from signed bytes alone.

Like python-tuf's ``TrustedMetadataSet``, one object holds what trust rests on (the trust key,
this device's id) and what it has accepted so far (the desired state and its sequence); every
new document is offered to it, and it either takes it or raises. It wraps ``agent.trust``'s
verification functions, and nothing else in the agent decides whether a desired state or a
manifest may be used.

Invariants:
- No I/O: no disk, no network, no clock of its own (callers pass ``now``), no threads. It is
  owned by one thread at a time: start-up (``restore``), then the sync thread (``accept``).
- ``desired`` is None or a desired state whose signature, type, device id and every entry's
  manifest verified against ``key`` for ``device_id``.
- ``sequence`` never goes down through ``accept``: a document with a lower sequence is refused
  (RollbackError), an equal one is "nothing new" (None).
- A refused document changes nothing: the state held before is still held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.errors import DocumentError
from agent.refs import ModelRef
from agent.trust import (
    DesiredState,
    verify_desired_state,
    verify_manifest,
    verify_stored_desired_state,
)
from protos.contract.documents import SignedLike


class TrustState:
    """The trust key, this device's id and the desired state accepted under them."""

    def __init__(self, key: Ed25519PublicKey, device_id: str | None = None) -> None:
        self.key = key
        self._device_id = device_id
        self._desired: DesiredState | None = None

    @property
    def device_id(self) -> str | None:
        """The device documents must be addressed to; None until ``bind``."""
        return self._device_id

    @property
    def desired(self) -> DesiredState | None:
        """The accepted desired state, None before the first one."""
        return self._desired

    @property
    def sequence(self) -> int:
        """The held desired state's sequence; 0 before the first one."""
        return self._desired.sequence if self._desired is not None else 0

    def bind(self, device_id: str) -> None:
        """Say which device this is (from the stored credential, or once enrolled).

        Raises ValueError when it is already bound to another device: a trust state never
        changes the device it accepts documents for.
        """
        if self._device_id not in (None, device_id):
            raise ValueError(f"trust state is for device {self._device_id}, not {device_id}")
        self._device_id = device_id

    def restore(self, signed: SignedLike) -> DesiredState:
        """Hold the desired state the data dir kept, after verifying it again.

        Expiry and sequence are not checked (see ``verify_stored_desired_state``).
        Raises SignatureError, DocumentError, WrongDeviceError; then nothing is held.
        """
        self._desired = None
        self._desired = verify_stored_desired_state(signed, self.key,
                                                    device_id=self._bound())
        return self._desired

    def accept(self, signed: SignedLike, now: datetime) -> DesiredState | None:
        """Offer a desired state from the server; returns it once accepted, None if its
        sequence is the one held (nothing new).

        Raises SignatureError, DocumentError, WrongDeviceError, ExpiredError, RollbackError;
        then the state held before is still held.
        """
        desired = verify_desired_state(signed, self.key, device_id=self._bound(),
                                       held_sequence=self.sequence, now=now)
        if desired is not None:
            self._desired = desired
        return desired

    def manifest(self, signed: SignedLike, ref: ModelRef) -> dict[str, Any]:
        """The verified manifest of a model the data dir says was active, which must describe
        exactly ``ref``. Raises SignatureError, DocumentError."""
        manifest = verify_manifest(signed, self.key)
        described = ModelRef(manifest["model"], manifest["version"], manifest["variant"],
                             manifest["sha256"])
        if described != ref:
            raise DocumentError(f"stored manifest describes {described}, not {ref}")
        return manifest

    def _bound(self) -> str:
        if self._device_id is None:
            raise RuntimeError("the trust state has no device id yet: bind() it first")
        return self._device_id
