"""The trust core against documents signed as docs/contract.md specifies."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import trust
from agent.errors import (
    ArtifactMismatchError,
    ConfigurationError,
    DocumentError,
    ExpiredError,
    RollbackError,
    SignatureError,
    WrongDeviceError,
)
from protos import edgefleet_pb2 as pb
from tests.agent.support import desired_state_doc, entry, mlp_artifact, sign

DEVICE = str(uuid.uuid4())
NOW = datetime.now(UTC)


@pytest.fixture
def key(trust_pem: bytes):
    return trust.load_public_key(trust_pem)


@pytest.fixture(scope="module")
def artifact():
    return mlp_artifact()


def signed_state(signing_key, artifact, sequence=5, **fields):
    doc = desired_state_doc(DEVICE, sequence, [entry(signing_key, artifact, model="face")])
    doc.update(fields)
    return sign(signing_key, doc)


def verify(signed, key, held=3, device=DEVICE, now=NOW):
    return trust.verify_desired_state(signed, key, device_id=device, held_sequence=held, now=now)


def test_good_desired_state_is_accepted_with_verified_manifests(signing_key, key, artifact):
    state = verify(signed_state(signing_key, artifact), key)
    assert state is not None
    assert (state.device_id, state.sequence) == (DEVICE, 5)
    (e,) = state.entries
    assert (e.model, e.sha256, e.size) == ("face", artifact.sha256, artifact.size)
    assert e.manifest["inputs"] == artifact.inputs
    assert state.entry("face") is e and state.entry("other") is None


def test_flipped_signature_byte_is_refused(signing_key, key, artifact):
    signed = signed_state(signing_key, artifact)
    bad = bytearray(signed.signature)
    bad[0] ^= 1
    with pytest.raises(SignatureError):
        verify(pb.SignedDocument(payload=signed.payload, signature=bytes(bad)), key)


def test_document_signed_by_another_key_is_refused(key, artifact):
    other = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError):
        verify(signed_state(other, artifact), key)


def test_tampered_payload_is_refused_before_parsing(signing_key, key, artifact):
    signed = signed_state(signing_key, artifact)
    tampered = signed.payload.replace(b'"sequence":5', b'"sequence":9')
    assert tampered != signed.payload
    with pytest.raises(SignatureError):
        verify(pb.SignedDocument(payload=tampered, signature=signed.signature), key)


def test_signed_payload_that_is_not_json_is_a_document_error(signing_key, key):
    payload = b"not json"
    with pytest.raises(DocumentError):
        verify(pb.SignedDocument(payload=payload, signature=signing_key.sign(payload)), key)


def test_manifest_type_in_place_of_desired_state_is_refused(signing_key, key, artifact):
    with pytest.raises(DocumentError, match="type"):
        verify(signed_state(signing_key, artifact, type="edgefleet.manifest.v1"), key)


def test_older_sequence_is_refused_as_rollback(signing_key, key, artifact):
    with pytest.raises(RollbackError):
        verify(signed_state(signing_key, artifact, sequence=2), key, held=3)


def test_equal_sequence_means_nothing_to_do(signing_key, key, artifact):
    assert verify(signed_state(signing_key, artifact, sequence=3), key, held=3) is None


def test_expired_desired_state_is_refused(signing_key, key, artifact):
    signed = signed_state(signing_key, artifact)
    with pytest.raises(ExpiredError):
        verify(signed, key, now=NOW + timedelta(days=2))


def test_desired_state_for_another_device_is_refused(signing_key, key, artifact):
    with pytest.raises(WrongDeviceError):
        verify(signed_state(signing_key, artifact), key, device=str(uuid.uuid4()))


def test_checks_run_in_documented_order_device_before_expiry(signing_key, key, artifact):
    """A document both for another device and expired reports the device first."""
    signed = signed_state(signing_key, artifact)
    with pytest.raises(WrongDeviceError):
        verify(signed, key, device="someone-else", now=NOW + timedelta(days=2))


@pytest.mark.parametrize("field_name,value", [
    ("size", 1), ("sha256", "0" * 64), ("version", "9.9.9"), ("variant", "full_int8"),
])
def test_entry_disagreeing_with_its_manifest_is_refused(signing_key, key, artifact, field_name,
                                                        value):
    e = entry(signing_key, artifact, model="face")
    e[field_name] = value
    signed = sign(signing_key, desired_state_doc(DEVICE, 5, [e]))
    with pytest.raises(DocumentError, match=field_name):
        verify(signed, key)


def test_manifest_signed_by_another_key_is_refused(signing_key, key, artifact):
    e = entry(Ed25519PrivateKey.generate(), artifact, model="face")
    with pytest.raises(SignatureError):
        verify(sign(signing_key, desired_state_doc(DEVICE, 5, [e])), key)


def test_same_model_listed_twice_is_refused(signing_key, key, artifact):
    e = entry(signing_key, artifact, model="face")
    with pytest.raises(DocumentError, match="twice"):
        verify(sign(signing_key, desired_state_doc(DEVICE, 5, [e, e])), key)


@pytest.mark.parametrize("fields,held", [({}, False), ({"hold": False}, False),
                                         ({"hold": True}, True)])
def test_an_entry_s_hold_is_read_as_a_boolean_absent_meaning_false(signing_key, key, artifact,
                                                                    fields, held):
    signed = sign(signing_key, desired_state_doc(
        DEVICE, 5, [{**entry(signing_key, artifact, model="face"), **fields}]))
    state = verify(signed, key)
    assert state is not None and state.entries[0].hold is held


@pytest.mark.parametrize("value", [1, "true", None, [True]])
def test_a_hold_that_is_not_a_boolean_is_refused(signing_key, key, artifact, value):
    """Input tried: hold given as 1, "true", null and [true]."""
    e = {**entry(signing_key, artifact, model="face"), "hold": value}
    with pytest.raises(DocumentError, match="'hold' of face must be a boolean"):
        verify(sign(signing_key, desired_state_doc(DEVICE, 5, [e])), key)


def test_boolean_sequence_is_not_a_number(signing_key, key, artifact):
    with pytest.raises(DocumentError, match="sequence"):
        verify(signed_state(signing_key, artifact, sequence=True), key, held=0)


def test_stored_state_reverifies_after_expiry_but_not_with_a_bad_signature(signing_key, key,
                                                                           artifact):
    signed = signed_state(signing_key, artifact)
    state = trust.verify_stored_desired_state(signed, key, device_id=DEVICE)
    assert state.sequence == 5
    forged = pb.SignedDocument(payload=signed.payload, signature=bytes(64))
    with pytest.raises(SignatureError):
        trust.verify_stored_desired_state(forged, key, device_id=DEVICE)


def test_check_artifact_refuses_wrong_length_and_wrong_hash(artifact):
    manifest = {"size": artifact.size, "sha256": artifact.sha256}
    trust.check_artifact(artifact.size, artifact.sha256, manifest)
    with pytest.raises(ArtifactMismatchError, match="bytes"):
        trust.check_artifact(artifact.size - 1, artifact.sha256, manifest)
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        trust.check_artifact(artifact.size, hashlib.sha256(b"x").hexdigest(), manifest)


def test_trust_key_that_is_not_an_ed25519_pem_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        trust.load_public_key(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_key_id_matches_the_documented_derivation(signing_key, key):
    from protos.contract.documents import key_id as contract_key_id
    from tests.agent.support import key_id

    assert contract_key_id(key) == key_id(signing_key)


def test_documents_from_the_control_plane_signer_verify(artifact):
    """Interop: what controlplane.registry.signing writes, agent.trust accepts."""
    from controlplane.registry import signing

    signer = signing.Signer.generate()
    manifest = signer.sign_document(signing.build_manifest(
        model="face", version="1.0.0", variant="float32", sha256=artifact.sha256,
        size=artifact.size, inputs=artifact.inputs, outputs=artifact.outputs,
        min_runtime="2.3.0", created_at=NOW,
    ))
    state_doc = signer.sign_document(signing.build_desired_state(
        device_id=DEVICE, sequence=1, issued_at=NOW, expires_at=NOW + timedelta(hours=1),
        models=[{"manifest": manifest}],
    ))
    key = trust.load_public_key(signer.public_pem)
    state = trust.verify_desired_state(state_doc, key, device_id=DEVICE, held_sequence=0, now=NOW)
    assert state is not None and state.entries[0].sha256 == artifact.sha256


def test_a_manifest_s_golden_samples_reference_is_verified_with_it(signing_key, key, artifact):
    """Inputs tried: a well-formed golden reference, then ones with a bad digest, a zero size,
    no tolerance for the model's output, and a negative tolerance."""
    from tests.agent.support import manifest_doc

    output = artifact.outputs[0]["name"]
    good = {"sha256": "e" * 64, "size": 900, "samples": 4, "atol": {output: 0.01}}
    doc = {**manifest_doc(artifact), "golden": good}
    assert trust.verify_manifest(sign(signing_key, doc), key)["golden"] == good
    for bad in ({**good, "sha256": "E" * 64}, {**good, "size": 0}, {**good, "atol": {}},
                {**good, "atol": {output: -1.0}}, [good]):
        with pytest.raises(DocumentError, match="golden"):
            trust.verify_manifest(sign(signing_key, {**manifest_doc(artifact), "golden": bad}),
                                  key)
