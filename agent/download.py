"""Resumable, length-capped artifact download into the store.

Invariants:
- Bytes go to ``downloads/<sha256>.part``; an interrupted stream resumes from the part file's
  length, with jittered backoff, and gives up after ``chunk_retries`` attempts in a row that
  brought no new byte.
- The part file never grows past the manifest's ``size`` (nor ``max_artifact_bytes``): a server
  sending more, or announcing another total, is refused.
- Only a complete part file whose length and sha256 match the signed manifest is moved into
  ``artifacts/``; on a mismatch the part file is deleted and ArtifactMismatchError raised. When
  the part file held bytes from an earlier run, the artifact is first downloaded whole once
  more: a torn write on this device must not be reported as the server's bad artifact.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path
from typing import Any

import grpc

from agent import failpoints
from agent.backoff import Backoff
from agent.errors import AgentTransportError, ArtifactMismatchError, InsufficientStorageError
from agent.findings import INSUFFICIENT_STORAGE, Finding
from agent.settings import AgentSettings
from agent.store import AgentStore, file_digest
from agent.transport import is_transient, transport_error
from agent.trust import check_artifact
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


def download_artifact(
    stub: pb_grpc.DeviceServiceStub,
    store: AgentStore,
    manifest: dict[str, Any],
    *,
    settings: AgentSettings,
    metadata: tuple[tuple[str, str], ...],
    stop: threading.Event | None = None,
) -> Path:
    """Fetch the artifact ``manifest`` describes (if not already on disk) and return its path.

    Raises ArtifactMismatchError (bytes disagree with the manifest, or too large),
    AgentTransportError (server unreachable after the retries, refused, or ``stop`` was set).
    """
    try:
        existing = store.verified_artifact(manifest)
    except ArtifactMismatchError as exc:
        log.warning("stored artifact was corrupt and is fetched again: %s", exc)
        existing = None
    if existing is not None:
        return existing

    sha256, size = manifest["sha256"], manifest["size"]
    if size > settings.max_artifact_bytes:
        raise ArtifactMismatchError(
            f"artifact {sha256[:12]} is {size} bytes, above max_artifact_bytes "
            f"{settings.max_artifact_bytes}"
        )
    part = store.part_path(sha256)
    if part.exists() and part.stat().st_size > size:
        part.unlink()
    part.touch()
    resumed = part.stat().st_size > 0
    stop = stop or threading.Event()
    _fill(stub, part, sha256, size, settings, metadata, stop)
    try:
        _check(part, manifest)
    except ArtifactMismatchError as exc:
        if not resumed:
            raise
        # Bytes written by an earlier run (a crash mid-write, a bad sector) may be what is
        # wrong, not the server's: one clean download decides before the agent says "failed".
        log.warning("%s after resuming a partial download; downloading it whole once more", exc)
        part.touch()
        _fill(stub, part, sha256, size, settings, metadata, stop)
        _check(part, manifest)
    return store.install_part(sha256)


def _fill(
    stub: pb_grpc.DeviceServiceStub,
    part: Path,
    sha256: str,
    size: int,
    settings: AgentSettings,
    metadata: tuple[tuple[str, str], ...],
    stop: threading.Event,
) -> None:
    """Append to ``part`` until it holds ``size`` bytes, resuming after interruptions."""
    backoff = Backoff(
        settings.backoff_min_seconds, settings.backoff_max_seconds, settings.sync_jitter
    )
    while (offset := part.stat().st_size) < size:
        try:
            _stream_into(stub, part, sha256, size, offset, settings, metadata)
        except ArtifactMismatchError:
            part.unlink(missing_ok=True)
            raise
        except grpc.RpcError as exc:
            if not is_transient(exc):
                raise transport_error(exc, f"download of {sha256[:12]}") from exc
            failure = transport_error(exc, f"download of {sha256[:12]}")
        else:
            if part.stat().st_size == size:
                break
            failure = AgentTransportError(f"download of {sha256[:12]} ended early")
        if part.stat().st_size > offset:
            backoff.reset()   # progress: the retry budget counts attempts that brought nothing
        if backoff.failures >= settings.chunk_retries:
            raise failure
        delay = backoff.next_delay()
        log.info("download interrupted at %d/%d bytes (%s); resuming in %.1fs",
                 part.stat().st_size, size, failure, delay)
        if stop.wait(delay):
            raise AgentTransportError(f"download of {sha256[:12]} stopped: agent shutting down")


def _check(part: Path, manifest: dict[str, Any]) -> None:
    """Length and sha256 of the complete part file against the manifest; deletes it if wrong."""
    got_size, digest = file_digest(part)
    try:
        check_artifact(got_size, digest, manifest)
    except ArtifactMismatchError:
        part.unlink(missing_ok=True)
        raise


def _stream_into(
    stub: pb_grpc.DeviceServiceStub,
    part: Path,
    sha256: str,
    size: int,
    offset: int,
    settings: AgentSettings,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    """Append one DownloadArtifact stream from ``offset`` to ``part``; checks every chunk."""
    request = pb.DownloadRequest(sha256=sha256, offset=offset)
    stream = stub.DownloadArtifact(
        request, timeout=settings.download_timeout_seconds, metadata=metadata
    )
    try:
        with open(part, "ab") as f:
            try:
                for chunk in stream:
                    problem = _chunk_problem(chunk, offset, size)
                    if problem:
                        raise ArtifactMismatchError(f"artifact {sha256[:12]}: {problem}")
                    f.write(chunk.data)
                    f.flush()
                    failpoints.hit("chunk")
                    offset += len(chunk.data)
                    if offset == size:
                        break
            finally:
                stream.cancel()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The disk filled under the download (something else wrote to it): give the space
        # back rather than hold a part file nobody can finish.
        part.unlink(missing_ok=True)
        raise InsufficientStorageError(
            f"the disk filled while downloading artifact {sha256[:12]} ({exc.strerror}); "
            "free space in the data dir", finding=Finding(INSUFFICIENT_STORAGE, limit=size)
        ) from exc


def _chunk_problem(chunk: pb.ArtifactChunk, offset: int, size: int) -> str | None:
    if chunk.total_size != size:
        return f"server announces {chunk.total_size} bytes, the manifest says {size}"
    if chunk.offset != offset:
        return f"server sent a chunk at offset {chunk.offset}, expected {offset}"
    if offset + len(chunk.data) > size:
        return f"server sent more than the manifest's {size} bytes"
    return None
