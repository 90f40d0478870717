"""On-disk agent state: modes, crash-safe replacement, artifact verification, pruning."""

from __future__ import annotations

import os
import stat

import pytest

from agent.errors import (
    ArtifactMismatchError,
    ConfigurationError,
    DocumentError,
    InsufficientStorageError,
)
from agent.refs import ModelRef
from agent.store import ActiveModel, AgentStore, Credential, StoredState
from agent.trust import Signed
from tests.agent.support import manifest_doc, mlp_artifact


@pytest.fixture
def store(data_dir):
    s = AgentStore(data_dir)
    s.ensure()
    return s


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_credential_file_is_private_and_round_trips(store):
    credential = Credential("dev-1", "secret", "127.0.0.1:7443")
    store.write_credential(credential)
    assert mode(store.credential_path) == 0o600
    assert mode(store.data_dir) == 0o700
    assert store.read_credential() == credential


def test_corrupt_credential_file_says_how_to_recover(store):
    store.credential_path.write_text("{")
    with pytest.raises(ConfigurationError, match="enroll-token"):
        store.read_credential()


def test_state_round_trips(store):
    signed = Signed(b'{"a":1}', b"s" * 64, "abcd")
    state = StoredState(
        desired_state=signed,
        active=(ActiveModel(ModelRef("face", "1", "float32", "a" * 64), signed),),
        kept=(ActiveModel(ModelRef("face", "0", "int8", "b" * 64), signed),),
        staged=(ActiveModel(ModelRef("face", "2", "float32", "c" * 64), signed),),
        probation={"face": ("a" * 64, 1_700_000_000.5)},
    )
    store.write_state(state)
    assert store.read_state() == state


def test_a_state_file_from_before_kept_manifests_reads_as_nothing_kept(store):
    """Input tried: the earlier layout's ``"previous": {model: sha256}``, which cannot be served
    again without its manifest."""
    store.state_path.write_text('{"desired_state": null, "active": [], '
                                '"previous": {"face": "' + "b" * 64 + '"}}')
    assert store.read_state() == StoredState()


def test_missing_state_is_empty_and_garbage_state_is_a_document_error(store):
    assert store.read_state() == StoredState()
    store.state_path.write_text('{"active": [{"model": 1}]}')
    with pytest.raises(DocumentError):
        store.read_state()


def test_verified_artifact_quarantines_a_corrupt_file(store):
    artifact = mlp_artifact()
    manifest = manifest_doc(artifact)
    assert store.verified_artifact(manifest) is None
    path = store.artifact_path(artifact.sha256)
    path.write_bytes(artifact.data)
    assert store.verified_artifact(manifest) == path
    path.write_bytes(artifact.data[:-1] + b"\0")
    with pytest.raises(ArtifactMismatchError, match=r"set aside as .*quarantine"):
        store.verified_artifact(manifest)
    assert not path.exists()
    [quarantined] = store.quarantine_dir.iterdir()
    assert quarantined.read_bytes() == artifact.data[:-1] + b"\0"
    assert store.verified_artifact(manifest) is None   # gone from where loads look


def test_quarantine_keeps_only_the_newest_files(tmp_path):
    """Input tried: six corrupt files set aside with max_quarantined=2."""
    store = AgentStore(tmp_path / "data", max_quarantined=2)
    store.ensure()
    for k in range(6):
        path = store.artifact_path(f"{k:064x}")
        path.write_bytes(bytes([k]))
        store.quarantine(path)
    kept = sorted(p.read_bytes() for p in store.quarantine_dir.iterdir())
    assert kept == [bytes([4]), bytes([5])]


def test_check_room_refuses_an_artifact_that_would_eat_the_reserve(store):
    """Input tried: a reserve larger than the file system's free space (the real statvfs
    figure), then a part file that already holds all but one byte."""
    import shutil

    free = shutil.disk_usage(store.data_dir).free
    with pytest.raises(InsufficientStorageError, match="free space") as caught:
        store.check_room("c" * 64, 10, reserve=free + 1)
    assert caught.value.finding.reason == "insufficient_storage"
    assert caught.value.finding.observed <= free + 4096 * 1024
    store.part_path("c" * 64).write_bytes(b"x" * 9)
    store.check_room("c" * 64, 10, reserve=free // 2)   # 1 byte left to fetch: room


def test_prune_keeps_only_named_artifacts_and_parts(store):
    for sha in ("a" * 64, "b" * 64):
        store.artifact_path(sha).write_bytes(b"x")
        store.part_path(sha).write_bytes(b"x")
    store.prune({"a" * 64})
    assert store.artifact_path("a" * 64).exists() and store.part_path("a" * 64).exists()
    assert not store.artifact_path("b" * 64).exists() and not store.part_path("b" * 64).exists()


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"windows": 7}', b"[]", b"\xff\xfe"])
def test_unreadable_metrics_files_are_read_as_empty_and_logged_not_fatal(store, content, caplog):
    """Input tried: an empty file, broken JSON, a wrong type, a wrong top-level shape, bytes that
    are not UTF-8; in each of the three metrics files."""
    for path in (store.metrics_buffer_path, store.open_windows_path,
                 store.legacy_pending_windows_path):
        path.write_bytes(content)
    assert store.read_metrics_buffer() in ({}, {"windows": 7})
    assert store.read_open_windows() == []
    assert store.read_legacy_pending_windows() == []
    if content != b'{"windows": 7}':
        assert "is unreadable" in caplog.text or "JSON object" in caplog.text


def test_open_windows_file_goes_away_when_no_window_is_open(store):
    store.write_open_windows([{"window_id": "w1"}])
    assert store.read_open_windows() == [{"window_id": "w1"}]
    assert mode(store.open_windows_path) == 0o644
    store.write_open_windows([])
    assert not store.open_windows_path.exists()
    store.write_open_windows([])     # nothing to remove: not an error
