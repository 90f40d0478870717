"""Signer and the signed documents of docs/contract.md, verified the way an agent verifies them."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.registry.errors import SigningKeyError
from controlplane.registry.signing import Signer, build_desired_state, build_manifest
from protos.contract.documents import Quantization, Signed, TensorSpec

NOW = datetime(2026, 11, 28, 4, 0, 0, 123456, tzinfo=UTC)
SHA = "ab" * 32


def agent_verify(public_pem: bytes, signed: Signed) -> dict[str, Any]:
    """What a device does: check the signature over the exact bytes, then parse them."""
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, Ed25519PublicKey)
    key.verify(signed.signature, signed.payload)
    return json.loads(signed.payload)


def manifest(signer: Signer, model: str = "face", size: int = 123456) -> Signed:
    return signer.sign_document(build_manifest(
        model=model, version="1.2.0", variant="float32", sha256=SHA, size=size,
        inputs=[TensorSpec("image", (1, 28, 28, 1), "float32", None)],
        outputs=[TensorSpec("scores", (1, 10), "int8", Quantization((0.1,), (0,), 0))],
        min_runtime="2.3.0", created_at=NOW,
    ))


# -- key files ------------------------------------------------------------------------------------

def test_first_start_creates_a_0600_pkcs8_key_and_its_public_pem(tmp_path: Path) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"

    signer = Signer.load_or_create(private, public)

    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert public.read_bytes() == signer.public_pem
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")   # SubjectPublicKeyInfo
    raw = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing-key", "signing-key.pub"]


def test_loading_again_keeps_the_key_and_never_rewrites_it(tmp_path: Path) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"
    first = Signer.load_or_create(private, public)
    before = (private.read_bytes(), private.stat().st_mtime_ns, public.stat().st_mtime_ns)

    second = Signer.load_or_create(private, public)

    assert second.key_id == first.key_id
    assert (private.read_bytes(), private.stat().st_mtime_ns, public.stat().st_mtime_ns) == before


def test_a_missing_public_file_is_rewritten_from_the_private_key(tmp_path: Path) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"
    signer = Signer.load_or_create(private, public)
    public.unlink()

    assert Signer.load_or_create(private, public).key_id == signer.key_id
    assert public.read_bytes() == signer.public_pem


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"
    barrier = threading.Barrier(6)
    key_ids: list[str] = []

    def start() -> None:
        barrier.wait()
        key_ids.append(Signer.load_or_create(private, public).key_id)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(key_ids) == 6
    assert len(set(key_ids)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing-key", "signing-key.pub"]


def test_a_key_readable_by_others_still_loads_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"
    signer = Signer.load_or_create(private, public)
    private.chmod(0o644)

    assert Signer.load_or_create(private, public).key_id == signer.key_id
    assert "readable by other users" in caplog.text
    assert stat.S_IMODE(private.stat().st_mode) == 0o644  # left as the operator set it


def test_refuses_a_public_file_of_another_key(tmp_path: Path) -> None:
    private, public = tmp_path / "signing-key", tmp_path / "signing-key.pub"
    Signer.load_or_create(private, public)
    public.write_bytes(Signer.generate().public_pem)

    with pytest.raises(SigningKeyError, match="does not match the private key"):
        Signer.load_or_create(private, public)


def test_refuses_a_private_key_that_is_not_ed25519(tmp_path: Path) -> None:
    private = tmp_path / "signing-key"
    private.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))

    with pytest.raises(SigningKeyError, match="not an ed25519 private key"):
        Signer.load_or_create(private, tmp_path / "signing-key.pub")


def test_refuses_a_private_key_file_that_is_not_pem(tmp_path: Path) -> None:
    private = tmp_path / "signing-key"
    private.write_bytes(b"not a key at all")

    with pytest.raises(SigningKeyError, match="cannot load signing key"):
        Signer.load_or_create(private, tmp_path / "signing-key.pub")


# -- signed documents ---------------------------------------------------------------------------

def test_payload_is_the_canonical_json_and_verifies_with_the_public_pem() -> None:
    signer = Signer.generate()
    doc = {"b": [1, 2], "a": "é", "c": {"z": None, "y": 1.5}}

    signed = signer.sign_document(doc)

    assert signed.payload == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert signed.payload == b'{"a":"\\u00e9","b":[1,2],"c":{"y":1.5,"z":null}}'
    assert len(signed.signature) == 64
    assert signed.key_id == signer.key_id
    assert agent_verify(signer.public_pem, signed) == doc
    assert signer.verify(signed.payload, signed.signature)


def test_a_tampered_payload_fails_verification() -> None:
    signer = Signer.generate()
    signed = signer.sign_document({"sequence": 7})
    tampered = signed.payload.replace(b"7", b"8")

    assert not signer.verify(tampered, signed.signature)
    with pytest.raises(InvalidSignature):
        agent_verify(signer.public_pem, Signed(tampered, signed.signature, signed.key_id))


def test_manifest_has_exactly_the_trust_md_fields() -> None:
    signer = Signer.generate()
    doc = agent_verify(signer.public_pem, manifest(signer))

    assert doc == {
        "type": "edgefleet.manifest.v1", "model": "face", "version": "1.2.0",
        "variant": "float32", "sha256": SHA, "size": 123456, "min_runtime": "2.3.0",
        "created_at": "2026-11-28T04:00:00Z",
        "inputs": [{"name": "image", "shape": [1, 28, 28, 1], "dtype": "float32",
                    "quantization": None}],
        "outputs": [{"name": "scores", "shape": [1, 10], "dtype": "int8",
                     "quantization": {"scale": [0.1], "zero_point": [0],
                                      "quantized_dimension": 0}}],
    }


def test_manifest_accepts_tensors_already_in_json_form() -> None:
    tensor = {"name": "x", "shape": [1, 4], "dtype": "float32", "quantization": None}
    doc = build_manifest(model="m", version="1", variant="float32", sha256=SHA, size=1,
                         inputs=[tensor], outputs=[tensor], min_runtime="2.3.0", created_at=NOW)
    assert doc["inputs"] == [tensor]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("sha256", "../etc", "not a sha256 digest"),
    ("size", -1, "non-negative integer"),
    ("model", "", "non-empty string"),
    ("created_at", datetime(2026, 1, 1), "timezone-aware"),
])
def test_manifest_refuses_an_invalid_field(field: str, value: object, message: str) -> None:
    fields: dict[str, Any] = dict(model="m", version="1", variant="float32", sha256=SHA, size=1,
                                  inputs=[], outputs=[], min_runtime="2.3.0", created_at=NOW)
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        build_manifest(**fields)


def test_desired_state_embeds_each_signed_manifest() -> None:
    signer = Signer.generate()
    face, ocr = manifest(signer, "face"), manifest(signer, "ocr", size=99)

    doc = build_desired_state(
        device_id="dev-1", sequence=7, issued_at=NOW, expires_at=NOW + timedelta(days=7),
        models=[{"manifest": face}, {"model": "ocr", "size": 99, "manifest": ocr.to_json()}],
    )
    state = agent_verify(signer.public_pem, signer.sign_document(doc))

    assert state["type"] == "edgefleet.desired_state.v1"
    assert (state["device_id"], state["sequence"]) == ("dev-1", 7)
    assert (state["issued_at"], state["expires_at"]) == ("2026-11-28T04:00:00Z",
                                                        "2026-12-05T04:00:00Z")
    first = state["models"][0]
    assert {k: first[k] for k in ("model", "version", "variant", "sha256", "size")} == {
        "model": "face", "version": "1.2.0", "variant": "float32", "sha256": SHA, "size": 123456}
    # The embedded manifest verifies on its own and agrees with the entry.
    embedded = Signed.from_json(first["manifest"])
    assert agent_verify(signer.public_pem, embedded)["model"] == "face"
    assert state["models"][1]["manifest"] == ocr.to_json()


def test_desired_state_refuses_an_entry_that_disagrees_with_its_manifest() -> None:
    signer = Signer.generate()
    with pytest.raises(ValueError, match="size=1 disagrees with its manifest"):
        build_desired_state(device_id="d", sequence=1, issued_at=NOW,
                            expires_at=NOW + timedelta(hours=1),
                            models=[{"size": 1, "manifest": manifest(signer)}])


def test_desired_state_passes_an_entry_s_hold_through_and_refuses_a_non_boolean() -> None:
    """Input tried: hold true, hold absent, hold 1 and "yes"."""
    signer = Signer.generate()
    doc = build_desired_state(device_id="d", sequence=1, issued_at=NOW,
                              expires_at=NOW + timedelta(hours=1),
                              models=[{"manifest": manifest(signer, "face"), "hold": True},
                                      {"manifest": manifest(signer, "ocr")}])
    state = agent_verify(signer.public_pem, signer.sign_document(doc))
    assert [m.get("hold") for m in state["models"]] == [True, None]
    for value in (1, "yes"):
        with pytest.raises(ValueError, match=f"hold={value!r} is not a boolean"):
            build_desired_state(device_id="d", sequence=1, issued_at=NOW,
                                expires_at=NOW + timedelta(hours=1),
                                models=[{"manifest": manifest(signer), "hold": value}])


def test_desired_state_refuses_one_model_twice() -> None:
    signer = Signer.generate()
    with pytest.raises(ValueError, match="appears twice"):
        build_desired_state(device_id="d", sequence=1, issued_at=NOW,
                            expires_at=NOW + timedelta(hours=1),
                            models=[{"manifest": manifest(signer)}, {"manifest": manifest(signer)}])


def test_desired_state_refuses_an_expiry_before_issue() -> None:
    with pytest.raises(ValueError, match="later than issued_at"):
        build_desired_state(device_id="d", sequence=1, issued_at=NOW, expires_at=NOW, models=[])


def test_desired_state_refuses_a_manifest_of_another_type() -> None:
    other = Signer.generate().sign_document({"type": "edgefleet.desired_state.v1"})
    with pytest.raises(ValueError, match=r"not edgefleet\.manifest\.v1"):
        build_desired_state(device_id="d", sequence=1, issued_at=NOW,
                            expires_at=NOW + timedelta(hours=1), models=[{"manifest": other}])
