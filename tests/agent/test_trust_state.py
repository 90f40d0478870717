"""The trust state with no I/O: signed bytes and a time in, a desired state (or a typed refusal)
out, and what it holds afterwards. No server, no disk, no clock: every input is built here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import trust
from agent.errors import (
    DocumentError,
    ExpiredError,
    RollbackError,
    SignatureError,
    WrongDeviceError,
)
from agent.refs import ModelRef
from agent.trust_state import TrustState
from protos import edgefleet_pb2 as pb
from tests.agent.support import desired_state_doc, entry, mlp_artifact, sign

DEVICE = str(uuid.uuid4())
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def artifact():
    return mlp_artifact()


@pytest.fixture
def state(trust_pem: bytes) -> TrustState:
    return TrustState(trust.load_public_key(trust_pem), DEVICE)


def signed(key: Ed25519PrivateKey, artifact, sequence: int, device: str = DEVICE,
           **fields) -> pb.SignedDocument:
    doc = desired_state_doc(device, sequence, [entry(key, artifact, model="face")])
    doc.update(fields)
    return sign(key, doc)


def test_a_fresh_state_holds_nothing_at_sequence_0(state):
    """Input tried: no document at all."""
    assert state.desired is None and state.sequence == 0 and state.device_id == DEVICE


def test_accept_takes_a_newer_state_and_returns_it(state, signing_key, artifact):
    """Input tried: sequence 3 then sequence 7, both well signed for this device."""
    first = state.accept(signed(signing_key, artifact, 3), NOW)
    assert first is not None and state.desired is first and state.sequence == 3
    second = state.accept(signed(signing_key, artifact, 7), NOW)
    assert second is not None and state.sequence == 7
    assert second.entries[0].sha256 == artifact.sha256


def test_the_held_sequence_again_is_nothing_new(state, signing_key, artifact):
    """Input tried: the same sequence offered twice (a server repeating itself)."""
    held = state.accept(signed(signing_key, artifact, 4), NOW)
    assert state.accept(signed(signing_key, artifact, 4), NOW) is None
    assert state.desired is held


@pytest.mark.parametrize("case,error", [
    ("older sequence", RollbackError),
    ("another key", SignatureError),
    ("another device", WrongDeviceError),
    ("expired", ExpiredError),
    ("manifest type", DocumentError),
])
def test_a_refused_document_raises_and_leaves_the_held_state(state, signing_key, artifact, case,
                                                             error):
    """Inputs tried, each after sequence 5 was accepted: sequence 4; sequence 6 signed by another
    key; sequence 6 for another device; sequence 6 offered after its expiry; a document of the
    manifest type. Each raises its data error and sequence 5 stays held."""
    held = state.accept(signed(signing_key, artifact, 5), NOW)
    now = NOW
    if case == "older sequence":
        bad = signed(signing_key, artifact, 4)
    elif case == "another key":
        bad = signed(Ed25519PrivateKey.generate(), artifact, 6)
    elif case == "another device":
        bad = signed(signing_key, artifact, 6, device=str(uuid.uuid4()))
    elif case == "expired":
        bad, now = signed(signing_key, artifact, 6), NOW + timedelta(days=2)
    else:
        bad = signed(signing_key, artifact, 6, type="edgefleet.manifest.v1")
    with pytest.raises(error):
        state.accept(bad, now)
    assert state.desired is held and state.sequence == 5


def test_restore_takes_a_stored_state_past_its_expiry(state, signing_key, artifact):
    """Input tried: a stored state (sequence 9) whose expires_at passed, as for a device offline
    for long: it is held again (only new documents must be unexpired), then sequence 8."""
    stored = sign(signing_key, desired_state_doc(DEVICE, 9, [entry(signing_key, artifact)],
                                                 expires_in=timedelta(seconds=-60)))
    restored = state.restore(stored)
    assert state.desired is restored and state.sequence == 9
    with pytest.raises(RollbackError):   # and the restored sequence guards what comes next
        state.accept(signed(signing_key, artifact, 8), NOW)


def test_restore_of_a_state_signed_by_another_key_holds_nothing(state, artifact):
    """Input tried: a stored state signed by a key that is not the trust key (planted)."""
    planted = signed(Ed25519PrivateKey.generate(), artifact, 50)
    with pytest.raises(SignatureError):
        state.restore(planted)
    assert state.desired is None and state.sequence == 0


def test_manifest_must_verify_and_describe_the_model_it_is_stored_for(state, signing_key,
                                                                      artifact):
    """Inputs tried: a stored active model's manifest signed by the trust key (accepted), the
    same manifest stored under another sha256 (refused), and one signed by another key."""
    desired = state.accept(signed(signing_key, artifact, 1), NOW)
    assert desired is not None
    (e,) = desired.entries
    assert state.manifest(e.signed_manifest, e.ref)["sha256"] == artifact.sha256
    with pytest.raises(DocumentError, match="describes"):
        state.manifest(e.signed_manifest, ModelRef("face", e.version, e.variant, "0" * 64))
    other = entry(Ed25519PrivateKey.generate(), artifact, model="face")["manifest"]
    with pytest.raises(SignatureError):
        state.manifest(trust.nested_signed(other), e.ref)


def test_an_unbound_state_refuses_to_decide(trust_pem, signing_key, artifact):
    """Input tried: a document offered before the device id is known (before enrollment)."""
    unbound = TrustState(trust.load_public_key(trust_pem))
    with pytest.raises(RuntimeError, match="bind"):
        unbound.accept(signed(signing_key, artifact, 1), NOW)
    unbound.bind(DEVICE)
    assert unbound.accept(signed(signing_key, artifact, 1), NOW) is not None
    with pytest.raises(ValueError, match="device"):
        unbound.bind(str(uuid.uuid4()))
