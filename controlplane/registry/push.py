"""Receiving a model push: the upload protocol, the checks, registration, and what follows.

Protocol (``PushModel``): a header (name, version, sizes and optional sha256 of the model and of
an optional calibration .npz), then every calibration chunk, then every model chunk.

Invariants:
- Nothing reaches the database before both parts are complete, of the announced sizes,
  hash-checked, accepted by ``inspect_model`` and within the message bounds of the settings, and
  the calibration file fits the model's inputs (checked from its headers, ``calibration``).
- A refused, truncated or abandoned push leaves no file: the uploads are opened lazily, one at a
  time, and ``PushReceiver.abort`` (or any failure inside the receiver) removes every one.
- Registration asks for the version's optimize pipeline (``optimize.run_pipeline``) in the same
  transaction, sent only after it commits.

Everything here blocks on the disk: async callers run it off the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.errors import AlreadyExistsError, InvalidArgumentError
from controlplane.jobs.outbox import enqueue_after_commit
from controlplane.registry import services
from controlplane.registry.calibration import check_calibration
from controlplane.registry.errors import InvalidModelError, ModelTooLargeError
from controlplane.registry.models import ModelVersion
from controlplane.registry.store import FilesystemArtifactStore, FilesystemUpload, StoredArtifact
from controlplane.registry.tflite import ModelInfo, inspect_model
from protos.contract import ContractError
from protos.contract.identifiers import check_sha256

Part = Literal["calibration", "model"]
PIPELINE_TASK = "optimize.run_pipeline"


@dataclass(frozen=True)
class PushHeader:
    name: str
    version: str
    size: int
    sha256: str = ""
    calibration_size: int = 0
    calibration_sha256: str = ""
    # The push's own accuracy tolerance ({"min_cosine": x, "min_top1": y}, either may be left
    # out): what its variants must keep against the reference; None: the server's settings.
    tolerance: dict[str, float] | None = None


@dataclass(frozen=True)
class ReceivedPush:
    header: PushHeader
    model: StoredArtifact
    info: ModelInfo
    calibration: StoredArtifact | None


def check_header(header: PushHeader, *, settings: Settings) -> None:
    """Refuse a header that cannot lead to a stored version, before any byte is received.

    Raises InvalidArgumentError, InvalidModelError (empty model), ModelTooLargeError.
    """
    services.check_name_version(header.name, header.version)
    if header.size == 0:
        raise InvalidModelError("the model file is empty: nothing to push")
    if header.size > settings.max_model_bytes:
        raise _too_large(header.size, settings.max_model_bytes, "model", "max_model_bytes")
    if header.calibration_size > settings.max_calibration_bytes:
        raise _too_large(header.calibration_size, settings.max_calibration_bytes,
                         "calibration file", "max_calibration_bytes")
    for what, digest in (("sha256", header.sha256),
                         ("calibration_sha256", header.calibration_sha256)):
        if digest:
            try:
                check_sha256(digest)
            except ContractError as exc:
                raise InvalidArgumentError(f"header {what}: {exc}") from exc
    if not header.calibration_size and header.calibration_sha256:
        raise InvalidArgumentError("calibration_sha256 given without calibration bytes")
    for field, value in (header.tolerance or {}).items():
        if not 0.0 <= value <= 1.0:   # NaN fails this too
            raise InvalidArgumentError(f"tolerance {field} must be from 0 to 1, got {value!r}")


def check_new(session: Session, header: PushHeader, *, settings: Settings) -> None:
    """``check_header``, and refuse a name:version that exists. Raises as ``check_header`` and
    AlreadyExistsError."""
    check_header(header, settings=settings)
    if services.version_exists(session, header.name, header.version):
        raise AlreadyExistsError(
            f"{header.name}:{header.version} already exists: push a new version number")


class PushReceiver:
    """The parts of one push on their way into the store, in protocol order."""

    def __init__(self, header: PushHeader, *, store: FilesystemArtifactStore,
                 settings: Settings) -> None:
        self.header = header
        self._store = store
        self._settings = settings
        self._expected: dict[Part, int] = {"calibration": header.calibration_size,
                                           "model": header.size}
        self._received: dict[Part, int] = {"calibration": 0, "model": 0}
        self._uploads: dict[Part, FilesystemUpload] = {}

    def add(self, part: Part, data: bytes) -> None:
        """Append a chunk of ``part``. Raises InvalidArgumentError (out of order, unexpected,
        longer than announced), ModelTooLargeError, StorageError; the push is aborted then."""
        try:
            self._add(part, data)
        except BaseException:
            self.abort()
            raise

    def _add(self, part: Part, data: bytes) -> None:
        if not self._expected[part]:
            raise InvalidArgumentError(f"unexpected {part} chunk: the header announced none")
        if part == "calibration" and self._received["model"]:
            raise InvalidArgumentError("calibration chunks must come before model chunks")
        if part == "model" and self._received["calibration"] < self._expected["calibration"]:
            raise InvalidArgumentError(
                f"model chunks started after {self._received['calibration']} of "
                f"{self._expected['calibration']} calibration bytes")
        self._received[part] += len(data)
        if self._received[part] > self._expected[part]:
            raise InvalidArgumentError(
                f"{part} upload is longer than the announced {self._expected[part]} bytes")
        upload = self._uploads.get(part)
        if upload is None:
            upload = self._uploads[part] = self._store.begin_upload(max_bytes=self._expected[part])
        upload.write(data)

    def finish(self) -> ReceivedPush:
        """Check what arrived and commit it to the store.

        Raises InvalidArgumentError (truncated, calibration that does not fit), InvalidModelError,
        ArtifactIntegrityError (sha256 mismatch), ResourceExhaustedError, StorageError; nothing
        is stored then.
        """
        try:
            return self._finish()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> ReceivedPush:
        for part, expected in self._expected.items():
            if self._received[part] != expected:
                raise InvalidArgumentError(
                    f"truncated upload: received {self._received[part]} of {expected} {part} "
                    f"bytes; push again")
        info = inspect_model(self._uploads["model"].read_back())
        check_model_bounds(info, settings=self._settings)
        calibration = self._uploads.get("calibration")
        if calibration is not None:
            check_calibration(
                calibration.read_back(), info.inputs,
                max_inflated_bytes=self._settings.max_calibration_inflated_bytes,
                max_samples=self._settings.max_calibration_samples,
                min_samples=self._settings.min_calibration_samples)
        h = self.header
        model = self._uploads["model"].commit(expected_sha256=h.sha256 or None,
                                              expected_size=h.size)
        stored = None
        if calibration is not None:
            stored = calibration.commit(expected_sha256=h.calibration_sha256 or None,
                                        expected_size=h.calibration_size)
        return ReceivedPush(header=h, model=model, info=info, calibration=stored)

    def abort(self) -> None:
        """Drop every part received so far (safe to repeat)."""
        for upload in self._uploads.values():
            upload.abort()


def check_model_bounds(info: ModelInfo, *, settings: Settings) -> None:
    """Refuse a model whose signature cannot travel in the messages that carry it (a model list,
    a manifest, a device's desired state). Raises InvalidModelError naming the bound."""
    tensors = (*info.inputs, *info.outputs)
    if len(tensors) > settings.max_model_tensors:
        raise InvalidModelError(
            f"the model has {len(tensors)} inputs and outputs; at most "
            f"{settings.max_model_tensors} are accepted (setting max_model_tensors)")
    for t in tensors:
        if len(t.name) > settings.max_tensor_name_chars:
            raise InvalidModelError(
                f"tensor name {t.name[:40]!r}... is {len(t.name)} characters; at most "
                f"{settings.max_tensor_name_chars} are accepted (setting max_tensor_name_chars)")
        if len(t.shape) > settings.max_tensor_rank:
            raise InvalidModelError(f"tensor {t.name!r} has rank {len(t.shape)}; at most "
                                    f"{settings.max_tensor_rank} (setting max_tensor_rank)")
        if t.quantization is not None and len(t.quantization.scale) > settings.max_channels:
            raise InvalidModelError(
                f"tensor {t.name!r} has {len(t.quantization.scale)} quantization channels; at "
                f"most {settings.max_channels} (setting max_channels)")
    signature = len(json.dumps([t.to_json() for t in tensors]))
    if signature > settings.max_signature_bytes:
        raise InvalidModelError(
            f"the model's inputs and outputs take {signature} bytes to describe; at most "
            f"{settings.max_signature_bytes} are accepted (setting max_signature_bytes)")
    if len(info.operators) > settings.max_operator_kinds:
        raise InvalidModelError(
            f"the model uses {len(info.operators)} kinds of operator; at most "
            f"{settings.max_operator_kinds} (setting max_operator_kinds)")
    if any(len(op) > settings.max_tensor_name_chars for op in info.operators):
        raise InvalidModelError("an operator name (custom op) is longer than "
                                f"{settings.max_tensor_name_chars} characters")


def register(session: Session, received: ReceivedPush, *, created_by: str | None) -> ModelVersion:
    """Record a received push as a pending version and ask for its measurement (after commit).

    Raises AlreadyExistsError when name:version exists (also when a concurrent push won).
    """
    h = received.header
    mv = services.register_version(
        session, name=h.name, version=h.version,
        model=services.Upload(sha256=received.model.sha256, size=received.model.size),
        info=received.info,
        calibration=(services.Upload(sha256=received.calibration.sha256,
                                     size=received.calibration.size)
                     if received.calibration else None),
        tolerance=h.tolerance,
        created_by=created_by,
    )
    enqueue_after_commit(session, PIPELINE_TASK, mv.id)
    session.flush()
    return services.find_version(session, h.name, h.version)


def _too_large(size: int, limit: int, what: str, setting: str) -> ModelTooLargeError:
    return ModelTooLargeError(
        f"{what} is {size} bytes; this server accepts at most {limit} bytes (setting {setting})",
        limit=limit,
    )
