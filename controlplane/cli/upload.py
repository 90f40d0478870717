"""The client side of ``model push``: local checks, then a lazily read stream of push messages.

Invariants: the model file is never held whole in memory (one chunk at a time, ``chunk_bytes``
each); the header is always the first message and carries the exact size and sha256 of the bytes
that follow, so the server can refuse a file that changed under us; local checks only exist to
give a friendly error early, the server remains the authority on what a valid model is.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from controlplane.cli.errors import CliError, ExitCode
from protos import edgefleet_pb2 as pb


@dataclass(frozen=True)
class ModelFile:
    path: Path
    size: int
    sha256: str


def _readable_file(path: Path, what: str) -> int:
    """The size of ``path``; CliError (INVALID) when it is missing, not a file or unreadable."""
    if not path.exists():
        raise CliError(f"{what} {path} does not exist", ExitCode.INVALID)
    if not path.is_file():
        raise CliError(f"{what} {path} is not a regular file", ExitCode.INVALID)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", ExitCode.INVALID) from exc
    return path.stat().st_size


def iter_file_chunks(path: Path, chunk_bytes: int, limit: int) -> Iterator[bytes]:
    """At most ``limit`` bytes of ``path`` in ``chunk_bytes`` pieces, read as they are asked for."""
    remaining = limit
    with path.open("rb") as f:
        while remaining > 0 and (chunk := f.read(min(chunk_bytes, remaining))):
            remaining -= len(chunk)
            yield chunk


def inspect_model_file(path: Path, chunk_bytes: int) -> ModelFile:
    """Size and sha256 of the model file, hashed in chunks before anything is sent.

    Raises ``CliError`` (INVALID) when the file is missing, unreadable or empty.
    """
    size = _readable_file(path, "model file")
    if size == 0:
        raise CliError(f"model file {path} is empty", ExitCode.INVALID)
    digest = hashlib.sha256()
    try:
        for chunk in iter_file_chunks(path, chunk_bytes, size):
            digest.update(chunk)
    except OSError as exc:
        raise CliError(f"cannot read model file {path}: {exc.strerror}", ExitCode.INVALID) from exc
    return ModelFile(path=path, size=size, sha256=digest.hexdigest())


def read_calibration(path: Path) -> bytes:
    """The bytes of a calibration ``.npz`` after checking numpy can load every array in it.

    Raises ``CliError`` (INVALID) for a missing file, a file that is not an ``.npz`` (a ``.npy``
    included), one with pickled objects, or one without arrays; (GENERIC) when numpy is missing.
    """
    _readable_file(path, "calibration file")
    data = path.read_bytes()
    try:
        import numpy as np
    except ModuleNotFoundError as exc:
        raise CliError(
            "checking a calibration file needs numpy: pip install 'edgefleet[controlplane]'"
        ) from exc
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CliError(
                f"calibration file {path} is a single array, not an .npz archive: save it with "
                "numpy.savez(path, **{input_name: samples})",
                ExitCode.INVALID,
            )
        with loaded:
            names = list(loaded.files)
            for name in names:
                loaded[name]  # decoding each array is the check
    except CliError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CliError(
            f"calibration file {path} is not a valid .npz archive: {exc}", ExitCode.INVALID
        ) from exc
    if not names:
        raise CliError(f"calibration file {path} holds no arrays", ExitCode.INVALID)
    return data


class PushStream:
    """The request iterator of ``PushModel``: the header, then the file in chunks.

    A read error mid-stream ends the stream early (the server then refuses the short upload)
    and is kept in ``read_error`` so the caller reports it instead of the server's complaint;
    an exception escaping a gRPC request iterator would only be logged by grpc.
    """

    def __init__(
        self,
        model: ModelFile,
        *,
        name: str,
        version: str,
        calibration: bytes,
        chunk_bytes: int,
        on_chunk: Callable[[int], None],
        tolerance: pb.Tolerance | None = None,
    ) -> None:
        self._model = model
        self._header = pb.PushModelHeader(
            name=name, version=version, size=model.size, sha256=model.sha256,
            calibration_size=len(calibration),
            calibration_sha256=hashlib.sha256(calibration).hexdigest() if calibration else "",
            tolerance=tolerance,
        )
        self._calibration = calibration
        self._chunk_bytes = chunk_bytes
        self._on_chunk = on_chunk
        self.read_error: OSError | None = None

    def __iter__(self) -> Iterator[pb.PushModelRequest]:
        yield pb.PushModelRequest(header=self._header)
        for start in range(0, len(self._calibration), self._chunk_bytes):
            yield pb.PushModelRequest(
                calibration_chunk=self._calibration[start:start + self._chunk_bytes])
        try:
            for chunk in iter_file_chunks(self._model.path, self._chunk_bytes, self._model.size):
                yield pb.PushModelRequest(chunk=chunk)
                self._on_chunk(len(chunk))
        except OSError as exc:
            self.read_error = exc
