"""The fleet simulator's own checks, without a server: the desired states a simulated device
accepts (signed by the control plane's own signer) and the behaviours it draws from.
The protocol against a real control plane is tests/e2e/test_fleetsim.py."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.fleetsim import Behaviour, behaviour_for, load_trust_key, verify_desired_state
from controlplane.registry.signing import Signer, build_desired_state, build_manifest
from protos.contract import ContractError
from protos.contract.documents import Signed

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DEVICE = "dev-1"
ARTIFACT = b"tflite bytes"
TENSOR = {"name": "x", "shape": [1, 4], "dtype": "float32", "quantization": None}


def desired(signer: Signer, *, sequence: int = 5, hold: bool | None = None,
            device: str = DEVICE, size: int = len(ARTIFACT)) -> Signed:
    manifest = signer.sign_document(build_manifest(
        model="mlp", version="1.0.0", variant="float32",
        sha256=hashlib.sha256(ARTIFACT).hexdigest(), size=len(ARTIFACT), inputs=[TENSOR],
        outputs=[TENSOR], min_runtime="2.3.0", created_at=NOW))
    doc: dict[str, Any] = build_desired_state(
        device_id=device, sequence=sequence, issued_at=NOW, expires_at=NOW + timedelta(days=1),
        models=[{"manifest": manifest}])
    doc["models"][0]["size"] = size
    if hold is not None:
        doc["models"][0]["hold"] = hold
    return signer.sign_document(doc)


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def test_a_desired_state_is_accepted_with_its_entries_and_hold(signer: Signer) -> None:
    key = load_trust_key(signer.public_pem)
    got = verify_desired_state(desired(signer, hold=True), key, device_id=DEVICE,
                               held_sequence=4, now=NOW)
    assert got is not None and got.sequence == 5
    [entry] = got.entries
    assert (entry.ref.model, entry.ref.version, entry.ref.variant, entry.size, entry.hold) == (
        "mlp", "1.0.0", "float32", len(ARTIFACT), True)
    plain = verify_desired_state(desired(signer), key, device_id=DEVICE, held_sequence=0,
                                 now=NOW)
    assert plain is not None and not plain.entries[0].hold
    assert verify_desired_state(desired(signer), key, device_id=DEVICE, held_sequence=5,
                                now=NOW) is None   # the one held: nothing new


@pytest.mark.parametrize("case, match", [
    ("older", "older than the held"),
    ("other device", "for device"),
    ("expired", "expired"),
    ("tampered", "signature"),
    ("other key", "signature"),
    ("entry disagrees", "disagree on size"),
])
def test_a_desired_state_is_refused(signer: Signer, case: str, match: str) -> None:
    key = load_trust_key(signer.public_pem)
    signed, now, held = desired(signer), NOW, 0
    if case == "older":
        held = 6
    elif case == "other device":
        signed = desired(signer, device="dev-2")
    elif case == "expired":
        now = NOW + timedelta(days=2)
    elif case == "tampered":
        signed = dataclasses.replace(signed, payload=signed.payload.replace(b"1.0.0", b"9.0.0"))
    elif case == "other key":
        signed = desired(Signer.generate())
    elif case == "entry disagrees":
        signed = desired(signer, size=len(ARTIFACT) + 1)
    with pytest.raises(ContractError, match=match):
        verify_desired_state(signed, key, device_id=DEVICE, held_sequence=held, now=now)


def test_behaviours_are_looked_up_by_version_and_variant_then_version_variant_and_default(
) -> None:
    exact, version, variant, default = (Behaviour(latency_p50_ms=ms) for ms in (1, 2, 3, 4))
    book = {"1.0.0/int8": exact, "1.0.0": version, "int8": variant, "*": default}
    assert behaviour_for(book, "1.0.0", "int8") is exact
    assert behaviour_for(book, "1.0.0", "float32") is version
    assert behaviour_for(book, "2.0.0", "int8") is variant
    assert behaviour_for(book, "2.0.0", "float32") is default
    assert behaviour_for({}, "2.0.0", "float32") == Behaviour()


@pytest.mark.parametrize("bad", [
    {"latency_p50_ms": 0}, {"error_rate": 1.5}, {"nonfinite_rate": -0.1},
    {"install_failure": "probation_errors"}, {"rollback": "golden_mismatch"},
])
def test_a_behaviour_that_cannot_happen_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Behaviour(**bad)
