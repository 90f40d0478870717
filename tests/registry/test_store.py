"""FilesystemArtifactStore: content addressing, crash-safe commits, bounded streaming reads."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.registry.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ModelTooLargeError,
    StorageError,
)
from controlplane.registry.store import FilesystemArtifactStore, StoredArtifact

DATA = bytes(range(256)) * 40 + b"tail"          # 10 244 bytes, not a multiple of any chunk
DIGEST = hashlib.sha256(DATA).hexdigest()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> FilesystemArtifactStore:
    return FilesystemArtifactStore(tmp_path / "artifacts")


def files_under(root: Path) -> list[str]:
    """Every file in the store, uploads in progress included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_upload_in_chunks_is_stored_under_its_sha256(store: FilesystemArtifactStore) -> None:
    with store.begin_upload(max_bytes=len(DATA)) as upload:
        for i in range(0, len(DATA), 1000):
            upload.write(DATA[i:i + 1000])
        stored = upload.commit(expected_sha256=DIGEST, expected_size=len(DATA))

    assert stored == StoredArtifact(sha256=DIGEST, size=len(DATA))
    assert store.path(DIGEST) == store.root / DIGEST[:2] / DIGEST
    assert files_under(store.root) == [f"{DIGEST[:2]}/{DIGEST}"]
    assert store.exists(DIGEST)
    assert store.size(DIGEST) == len(DATA)
    assert store.read_bytes(DIGEST, max_bytes=len(DATA)) == DATA


def test_storing_the_same_bytes_twice_keeps_one_file(store: FilesystemArtifactStore) -> None:
    assert store.put_bytes(DATA) == store.put_bytes(DATA)
    assert files_under(store.root) == [f"{DIGEST[:2]}/{DIGEST}"]


@pytest.mark.parametrize(("offset", "chunk"), [(0, 4096), (0, 1), (1000, 777), (len(DATA) - 3, 10)])
def test_open_range_streams_bounded_chunks_from_an_offset(
        store: FilesystemArtifactStore, offset: int, chunk: int) -> None:
    store.put_bytes(DATA)

    chunks = list(store.open_range(DIGEST, offset, chunk))

    assert b"".join(chunks) == DATA[offset:]
    assert all(0 < len(c) <= chunk for c in chunks)
    assert all(len(c) == chunk for c in chunks[:-1])


def test_open_range_with_a_length_stops_there(store: FilesystemArtifactStore) -> None:
    store.put_bytes(DATA)
    assert b"".join(store.open_range(DIGEST, 10, 64, length=100)) == DATA[10:110]


def test_open_range_at_the_end_yields_nothing(store: FilesystemArtifactStore) -> None:
    store.put_bytes(DATA)
    assert list(store.open_range(DIGEST, len(DATA), 64)) == []


def test_open_range_refuses_an_offset_past_the_end(store: FilesystemArtifactStore) -> None:
    store.put_bytes(DATA)
    with pytest.raises(ValueError, match="outside the artifact"):
        store.open_range(DIGEST, len(DATA) + 1, 64)


def test_open_range_of_an_unknown_digest_is_not_found(store: FilesystemArtifactStore) -> None:
    with pytest.raises(ArtifactNotFoundError, match=DIGEST):
        store.open_range(DIGEST, 0, 64)


def test_a_stream_of_an_artifact_deleted_before_reading_is_not_found(
        store: FilesystemArtifactStore) -> None:
    """A reader never mistakes a vanished artifact for an empty one."""
    store.put_bytes(DATA)
    chunks = store.open_range(DIGEST, 0, 1024)
    store.delete(DIGEST)
    with pytest.raises(ArtifactNotFoundError):
        next(chunks)


def test_a_stream_already_reading_survives_a_delete(store: FilesystemArtifactStore) -> None:
    """Garbage collection cannot cut a device's download short: the open file stays whole."""
    store.put_bytes(DATA)
    chunks = store.open_range(DIGEST, 0, 1024)
    first = next(chunks)
    store.delete(DIGEST)
    assert first + b"".join(chunks) == DATA


def test_upload_past_the_cap_is_refused_and_leaves_nothing(
        store: FilesystemArtifactStore) -> None:
    upload = store.begin_upload(max_bytes=1000)
    upload.write(DATA[:600])
    with pytest.raises(ModelTooLargeError, match="limit of 1000 bytes") as caught:
        upload.write(DATA[600:1200])
    assert caught.value.limit == 1000
    assert files_under(store.root) == []
    with pytest.raises(RuntimeError, match="already committed or aborted"):
        upload.write(b"x")


@pytest.mark.parametrize(("expected", "message"), [
    ({"expected_size": len(DATA) + 1}, "expected 10245 bytes, received 10244"),
    ({"expected_sha256": "0" * 64}, "expected sha256 0000"),
])
def test_commit_with_a_wrong_size_or_sha256_stores_nothing(
        store: FilesystemArtifactStore, expected: dict[str, object], message: str) -> None:
    upload = store.begin_upload(max_bytes=len(DATA))
    upload.write(DATA)
    with pytest.raises(ArtifactIntegrityError, match=message):
        upload.commit(**expected)  # type: ignore[arg-type]
    assert files_under(store.root) == []


def test_an_error_inside_the_upload_block_leaves_nothing(
        store: FilesystemArtifactStore) -> None:
    with pytest.raises(ConnectionError), store.begin_upload(max_bytes=len(DATA)) as upload:
        upload.write(DATA[:5000])
        raise ConnectionError("client went away mid-upload")
    assert files_under(store.root) == []


def test_leaving_the_upload_block_without_commit_leaves_nothing(
        store: FilesystemArtifactStore) -> None:
    with store.begin_upload(max_bytes=len(DATA)) as upload:
        upload.write(DATA)
    assert files_under(store.root) == []


def test_commit_twice_is_misuse(store: FilesystemArtifactStore) -> None:
    with store.begin_upload(max_bytes=3) as upload:
        upload.write(b"abc")
        upload.commit()
        with pytest.raises(RuntimeError):
            upload.commit()


def test_read_bytes_over_its_cap_is_refused(store: FilesystemArtifactStore) -> None:
    store.put_bytes(DATA)
    with pytest.raises(ModelTooLargeError, match="over the 100-byte limit"):
        store.read_bytes(DIGEST, max_bytes=100)


@pytest.mark.parametrize("digest", [
    "../" * 20 + "etc/passwd",
    DIGEST.upper(),
    DIGEST[:63],
    DIGEST + "0",
    "/" + DIGEST[1:],
    "",
])
def test_malformed_digests_never_reach_a_path(store: FilesystemArtifactStore, digest: str) -> None:
    for call in (store.path, store.exists, store.size, store.delete,
                 lambda d: store.open_range(d, 0, 1)):
        with pytest.raises(ValueError, match="not a sha256 digest"):
            call(digest)
    with store.begin_upload(max_bytes=3) as upload:
        upload.write(b"abc")
        with pytest.raises(ValueError, match="not a sha256 digest"):
            upload.commit(expected_sha256=digest)


def test_delete_is_idempotent(store: FilesystemArtifactStore) -> None:
    store.put_bytes(DATA)
    assert store.delete(DIGEST) is True
    assert store.delete(DIGEST) is False
    assert not store.exists(DIGEST)
    with pytest.raises(ArtifactNotFoundError):
        store.size(DIGEST)


def test_remove_stale_uploads_clears_what_a_killed_process_left(
        store: FilesystemArtifactStore) -> None:
    """A process SIGKILLed mid-upload leaves a temp file; the sweep removes it once it is old,
    and an upload in progress is not touched."""
    crash = (
        "import os, signal, sys\n"
        "from controlplane.registry.store import FilesystemArtifactStore\n"
        "upload = FilesystemArtifactStore(sys.argv[1]).begin_upload(max_bytes=100)\n"
        "upload.write(b'partial')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", crash, str(store.root)], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    [leftover] = (store.root / ".uploads").iterdir()
    live = store.begin_upload(max_bytes=10)
    live.write(b"live")

    assert store.remove_stale_uploads(older_than_seconds=600) == 0  # too recent to judge
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert store.remove_stale_uploads(older_than_seconds=600) == 1
    assert not leftover.exists()
    assert live.commit().size == 4
    live_digest = hashlib.sha256(b"live").hexdigest()
    assert files_under(store.root) == [f"{live_digest[:2]}/{live_digest}"]


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs, so the disk genuinely fills up (needs mount privileges)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mountpoint)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): disk-full test skipped")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_disk_fails_the_upload_clearly_and_leaves_nothing(tiny_filesystem: Path) -> None:
    store = FilesystemArtifactStore(tiny_filesystem / "artifacts")
    blob = os.urandom(1024 * 1024)
    with pytest.raises(StorageError, match="disk is full"), \
            store.begin_upload(max_bytes=len(blob)) as upload:
        for i in range(0, len(blob), 64 * 1024):
            upload.write(blob[i:i + 64 * 1024])
        upload.commit()
    assert files_under(store.root) == []
    # The space is back: a small artifact still fits.
    assert store.put_bytes(b"small").size == 5
