"""Content-addressed artifact store: bytes kept under their sha256, written crash-safely.

``ArtifactStore`` is the interface the registry uses; ``FilesystemArtifactStore`` keeps artifacts
in a directory as ``ROOT/ab/abcdef...`` (the first two hex digits fan the files out).

Invariants:
- A file exists under a digest only if its bytes hash to that digest and it was complete when it
  was renamed into place: uploads go to a temp file in ``ROOT/.uploads`` (same filesystem), are
  fsynced, checked against the expected size/sha256 and only then ``os.replace``d into place,
  after which the directory is fsynced.
- A failed, aborted, oversized or interrupted upload leaves nothing behind under any digest, and
  removes its temp file (``remove_stale_uploads`` clears what a killed process left).
- Every upload is length-capped; reads stream in bounded chunks and never load a whole artifact
  unless asked to through ``read_bytes`` with a cap.
- Digests are 64 lowercase hex characters; anything else is refused before it touches a path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from controlplane.registry.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ModelTooLargeError,
    StorageError,
)
from protos.contract.files import fsync_dir, move_into_place
from protos.contract.identifiers import check_sha256

_UPLOADS_DIR = ".uploads"
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredArtifact:
    """An artifact in the store: its content address and length."""

    sha256: str
    size: int


class Upload(Protocol):
    """An upload in progress. Use as a context manager: leaving it uncommitted aborts it."""

    @property
    def bytes_written(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...

    def read_back(self) -> bytes: ...

    def commit(self, expected_sha256: str | None = None,
               expected_size: int | None = None) -> StoredArtifact: ...

    def abort(self) -> None: ...

    def __enter__(self) -> Upload: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class ArtifactStore(Protocol):
    """What the registry needs from an artifact store (a filesystem one here; S3-like later)."""

    def begin_upload(self, max_bytes: int) -> Upload: ...

    def put_bytes(self, data: bytes, *, max_bytes: int | None = None) -> StoredArtifact: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def open_range(self, sha256: str, offset: int = 0, chunk_bytes: int = _READ_CHUNK,
                   length: int | None = None) -> Iterator[bytes]: ...

    def read_bytes(self, sha256: str, *, max_bytes: int) -> bytes: ...

    def delete(self, sha256: str) -> bool: ...


class FilesystemArtifactStore:
    """Artifacts as files under ``root``; safe for several processes sharing one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._uploads = self.root / _UPLOADS_DIR
        try:
            self._uploads.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create artifact store at {self.root}: {exc}") from exc

    def path(self, sha256: str) -> Path:
        """Where the artifact with this digest lives (whether or not it exists)."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def begin_upload(self, max_bytes: int) -> FilesystemUpload:
        """Start an upload of at most ``max_bytes`` bytes."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        return FilesystemUpload(self, max_bytes)

    def put_bytes(self, data: bytes, *, max_bytes: int | None = None) -> StoredArtifact:
        """Store ``data`` in one go (for bytes already in memory, such as a built variant)."""
        with self.begin_upload(len(data) if max_bytes is None else max_bytes) as upload:
            upload.write(data)
            return upload.commit()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        """Length in bytes. Raises ArtifactNotFoundError when absent."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise _not_found(sha256) from None

    def open_range(self, sha256: str, offset: int = 0, chunk_bytes: int = _READ_CHUNK,
                   length: int | None = None) -> Iterator[bytes]:
        """Stream the artifact from ``offset`` in chunks of at most ``chunk_bytes``.

        Existence and ``offset`` are checked now; the file is opened on the first ``next()``
        and closed when the iterator is exhausted or closed, so only one chunk is in memory.

        Raises:
            ArtifactNotFoundError: no such artifact.
            ValueError: ``offset`` outside ``0..size``, ``chunk_bytes`` < 1 or ``length`` < 0.
        """
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be at least 1")
        if length is not None and length < 0:
            raise ValueError("length must not be negative")
        size = self.size(sha256)
        if not 0 <= offset <= size:
            raise ValueError(f"offset {offset} is outside the artifact (0..{size} bytes)")
        end = size if length is None else min(size, offset + length)
        return self._chunks(sha256, offset, end, chunk_bytes)

    def _chunks(self, sha256: str, offset: int, end: int, chunk_bytes: int) -> Iterator[bytes]:
        try:
            f = self.path(sha256).open("rb")
        except FileNotFoundError:
            raise _not_found(sha256) from None
        with f:
            f.seek(offset)
            position = offset
            while position < end:
                chunk = f.read(min(chunk_bytes, end - position))
                if not chunk:
                    # Content-addressed files never shrink; a short read means it was deleted
                    # and replaced under us, which the caller must not mistake for the end.
                    raise StorageError(f"artifact {sha256} ended early at byte {position}")
                position += len(chunk)
                yield chunk

    def read_bytes(self, sha256: str, *, max_bytes: int) -> bytes:
        """The whole artifact in memory, for small files (e.g. measuring a model).

        Raises:
            ArtifactNotFoundError: no such artifact.
            ModelTooLargeError: it is larger than ``max_bytes``.
        """
        size = self.size(sha256)
        if size > max_bytes:
            raise ModelTooLargeError(
                f"artifact {sha256} is {size} bytes, over the {max_bytes}-byte limit",
                limit=max_bytes)
        return b"".join(self.open_range(sha256))

    def delete(self, sha256: str) -> bool:
        """Remove the artifact; True if it existed. Safe to repeat."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def remove_stale_uploads(self, older_than_seconds: float) -> int:
        """Delete temp files of uploads a killed process left behind; returns how many."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in self._uploads.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed

    def _install(self, temp: Path, sha256: str) -> None:
        """Move a complete, fsynced temp file into place under its digest."""
        final = self.path(sha256)
        shard = final.parent
        new_shard = not shard.exists()
        shard.mkdir(exist_ok=True)
        move_into_place(temp, final)
        if new_shard:
            fsync_dir(self.root)


class FilesystemUpload:
    """Bytes on their way into a ``FilesystemArtifactStore``; hashed and counted as they come."""

    def __init__(self, store: FilesystemArtifactStore, max_bytes: int) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._written = 0
        self._done = False
        try:
            fd, name = tempfile.mkstemp(dir=store._uploads, prefix="upload-", suffix=".part")
        except OSError as exc:
            raise _storage_error("cannot start an upload", exc) from exc
        self._temp = Path(name)
        self._file = os.fdopen(fd, "wb")

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``.

        Raises:
            ModelTooLargeError: the upload would pass ``max_bytes``; it is aborted.
            StorageError: the disk is full or failing; the upload is aborted.
        """
        self._check_open()
        if self._written + len(chunk) > self._max_bytes:
            self.abort()
            raise ModelTooLargeError(
                f"upload is larger than the limit of {self._max_bytes} bytes; nothing was stored",
                limit=self._max_bytes)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.abort()
            raise _storage_error("cannot write the upload", exc) from exc
        self._hash.update(chunk)
        self._written += len(chunk)

    def read_back(self) -> bytes:
        """The bytes written so far, so a caller can validate them before ``commit``."""
        self._check_open()
        try:
            self._file.flush()
            return self._temp.read_bytes()
        except OSError as exc:
            self.abort()
            raise _storage_error("cannot read the upload back", exc) from exc

    def commit(self, expected_sha256: str | None = None,
               expected_size: int | None = None) -> StoredArtifact:
        """Make the bytes durable under their sha256 and return where they are.

        Raises:
            ArtifactIntegrityError: size or sha256 differ from what was expected; nothing stored.
            StorageError: the disk failed while finishing; nothing stored.
        """
        self._check_open()
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        sha256 = self._hash.hexdigest()
        problem = None
        if expected_size is not None and expected_size != self._written:
            problem = f"expected {expected_size} bytes, received {self._written}"
        elif expected_sha256 is not None and expected_sha256 != sha256:
            problem = f"expected sha256 {expected_sha256}, received bytes hashing to {sha256}"
        if problem:
            self.abort()
            raise ArtifactIntegrityError(f"upload is not what was announced: {problem}; "
                                         "nothing was stored")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._store._install(self._temp, sha256)
        except OSError as exc:
            self.abort()
            raise _storage_error("cannot store the upload", exc) from exc
        self._done = True
        return StoredArtifact(sha256=sha256, size=self._written)

    def abort(self) -> None:
        """Drop the upload and its temp file. Safe to repeat."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("this upload is already committed or aborted")

    def __enter__(self) -> FilesystemUpload:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Leaving the block without a commit (an error, a cancelled stream) keeps nothing.
        self.abort()


def _not_found(sha256: str) -> ArtifactNotFoundError:
    return ArtifactNotFoundError(f"no artifact with sha256 {sha256} in the store")


def _storage_error(what: str, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"{what}: the artifact store's disk is full ({exc.strerror}); "
                            "free space and retry")
    return StorageError(f"{what}: {exc}")
