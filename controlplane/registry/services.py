"""Registering model versions and reading them back.

Invariants:
- A ``ModelVersion`` row is written only for bytes that ``inspect_model`` accepted and that the
  artifact store committed under their sha256; a refused upload leaves neither row nor file.
- The uploaded file is the version's first variant, the reference the others are measured
  against; the optimize pipeline (``controlplane.optimize``) builds, measures and signs them all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from controlplane.config import Settings
from controlplane.db import insert_ignoring_conflicts, new_id
from controlplane.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page
from controlplane.registry.models import Artifact, Model, ModelVersion, Variant
from controlplane.registry.signing import Signer, build_manifest
from controlplane.registry.tflite import ModelInfo
from controlplane.validation import shown
from protos.contract.latency import MeasuredLatency

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,127}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$")
_KIND = re.compile(r"[a-z0-9_]{1,32}")


def check_name_version(name: str, version: str) -> None:
    """Raises InvalidArgumentError unless ``name`` and ``version`` are well-formed."""
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"bad model name {shown(name)}: use lower-case letters, digits, '.', '_', '-' "
            f"(max 128)")
    if not _VERSION.fullmatch(version):
        raise InvalidArgumentError(
            f"bad version {shown(version)}: use e.g. 1.2.0 (max 64 characters)")


def check_variant_kind(kind: str) -> None:
    """Raises InvalidArgumentError unless ``kind`` is shaped like a variant kind."""
    if not _KIND.fullmatch(kind):
        raise InvalidArgumentError(
            f"bad variant {shown(kind)}: a variant kind is lower-case letters, digits and '_' "
            f"(max 32), e.g. float16")


def split_ref(ref: str) -> tuple[str, str]:
    """``name:version`` -> (name, version); version may be empty."""
    name, _, version = ref.partition(":")
    return name, version


def find_version(session: Session, name: str, version: str = "") -> ModelVersion:
    """The named version, or the newest when ``version`` is empty.

    Raises InvalidArgumentError for a malformed name or version (checked before any query:
    PostgreSQL refuses NUL in a parameter), NotFoundError.
    """
    check_name_version(name, version or "0")
    q = (
        sa.select(ModelVersion)
        .join(Model)
        .where(Model.name == name)
        .options(selectinload(ModelVersion.variants).selectinload(Variant.measurements),
                     selectinload(ModelVersion.model))
    )
    if version:
        q = q.where(ModelVersion.version == version)
    else:
        q = q.order_by(ModelVersion.created_at.desc()).limit(1)
    mv = session.scalars(q).first()
    if mv is None:
        what = f"{name}:{version}" if version else name
        raise NotFoundError(f"model {what} not found: see `edgefleet model list`")
    return mv


def version_exists(session: Session, name: str, version: str) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists()
                .where(ModelVersion.model_id == Model.id)
                .where(Model.name == name, ModelVersion.version == version)
            )
        )
    )


def pending_version_ids(session: Session, *, created_before: dt.datetime) -> list[str]:
    return list(
        session.scalars(
            sa.select(ModelVersion.id).where(
                ModelVersion.status == "pending", ModelVersion.created_at < created_before
            )
        )
    )


_VERSIONS: Order[ModelVersion] = Order("model", (
    Key(Model.name, lambda mv: mv.model.name),
    Key(ModelVersion.created_at, lambda mv: mv.created_at, "time"),
    Key(ModelVersion.id, lambda mv: mv.id),
))


def list_versions(
    session: Session, page: PageAsk, *, settings: Settings, render: Callable[[ModelVersion], M]
) -> Page[M]:
    """A page of every model version, by model name and then oldest first, each as ``render``
    makes it. Raises InvalidArgumentError (page size or token), ResourceExhaustedError (a
    version heavier than a whole message)."""
    query = (sa.select(ModelVersion).join(Model)
             .options(selectinload(ModelVersion.variants).selectinload(Variant.measurements),
                     selectinload(ModelVersion.model)))
    return read_page(session, query, _VERSIONS, page, settings=settings, render=render)


def ensure_artifact(session: Session, sha256: str, size: int) -> None:
    # Concurrent pushes of the same bytes (or of a version's calibration file) may race here.
    insert_ignoring_conflicts(session, Artifact, [{"sha256": sha256, "size": size}],
                              key=["sha256"])


def _model_id(session: Session, name: str) -> str:
    """The id of model ``name``, created if it does not exist: concurrent first pushes of two
    versions of a new name both get the one row, neither an IntegrityError."""
    insert_ignoring_conflicts(session, Model, [{"id": new_id(), "name": name}], key=["name"])
    return session.scalars(sa.select(Model.id).where(Model.name == name)).one()


def uploaded_kind(info: ModelInfo) -> str:
    """What the uploaded file is as far as its tensor types tell (``int8`` for integer inputs
    or outputs); the optimize pipeline names it by its weights once it has read them
    (``optimize.recipes.variant_kind``)."""
    dtypes = {t.dtype for t in (*info.inputs, *info.outputs)}
    if dtypes & {"int8", "uint8"}:
        return "int8"
    if "float16" in dtypes:
        return "float16"
    return "float32"


@dataclass(frozen=True)
class Upload:
    sha256: str
    size: int


def register_version(
    session: Session,
    *,
    name: str,
    version: str,
    model: Upload,
    info: ModelInfo,
    calibration: Upload | None,
    tolerance: dict[str, float] | None = None,
    created_by: str | None,
) -> ModelVersion:
    """Record a validated, stored upload as a new pending version with its first variant.

    Raises AlreadyExistsError when name:version exists (also when a concurrent push won).
    """
    check_name_version(name, version)
    if version_exists(session, name, version):
        raise AlreadyExistsError(f"{name}:{version} already exists: push a new version number")
    ensure_artifact(session, model.sha256, model.size)
    if calibration is not None:
        ensure_artifact(session, calibration.sha256, calibration.size)
    model_id = _model_id(session, name)
    inputs = [t.to_json() for t in info.inputs]
    outputs = [t.to_json() for t in info.outputs]
    try:
        # The one unique key left to race on is (model, version): exactly one push of a
        # name:version wins, the others learn it exists.
        with session.begin_nested():
            mv = ModelVersion(
                model_id=model_id,
                version=version,
                source_sha256=model.sha256,
                size=model.size,
                inputs=inputs,
                outputs=outputs,
                operators=list(info.operators),
                min_runtime=info.min_runtime,
                calibration_sha256=calibration.sha256 if calibration else None,
                tolerance=tolerance or None,
                created_by=created_by,
            )
            session.add(mv)
            session.add(
                Variant(
                    model_version=mv,
                    kind=uploaded_kind(info),
                    artifact_sha256=model.sha256,
                    size=model.size,
                    min_runtime=info.min_runtime,
                    arena_bytes=info.arena_bytes,
                    inputs=inputs,
                    outputs=outputs,
                )
            )
            session.flush()
    except IntegrityError as exc:
        raise AlreadyExistsError(
            f"{name}:{version} already exists: push a new version number"
        ) from exc
    return mv


def reference_of(mv: ModelVersion) -> Variant:
    """The variant made of the uploaded file: the one every other is compared with."""
    return next(v for v in mv.variants if v.artifact_sha256 == mv.source_sha256)


def mark_variant_ready(
    variant: Variant,
    *,
    signer: Signer,
    now: dt.datetime,
    latency_ms: float | None,
    measured_with: str,
    golden: dict[str, Any] | None = None,
    latency: Mapping[str, MeasuredLatency] | None = None,
) -> None:
    """Sign the variant's manifest (with its golden samples reference and its latency per
    interpreter, if any) and make it ready; the caller settles the version
    (``settle_version``)."""
    mv = variant.model_version
    if variant.artifact_sha256 is None or variant.size is None:
        raise ValueError(f"variant {variant.kind} has no artifact to sign")
    manifest = build_manifest(
        model=mv.model.name, version=mv.version, variant=variant.kind,
        sha256=variant.artifact_sha256, size=variant.size,
        inputs=variant.inputs, outputs=variant.outputs,
        min_runtime=variant.min_runtime or mv.min_runtime, created_at=now, golden=golden,
        latency=latency,
    )
    signed = signer.sign_document(manifest)
    variant.manifest_payload = signed.payload
    variant.manifest_signature = signed.signature
    variant.manifest_key_id = signed.key_id
    variant.latency_ms = latency_ms
    variant.measured_with = measured_with
    variant.status, variant.failure = "ready", ""


def settle_version(mv: ModelVersion) -> None:
    """Once no variant is pending: ``ready`` when the reference is, else ``failed`` with the
    reference's reason. A version still pending stays so."""
    if mv.status != "pending" or any(v.status == "pending" for v in mv.variants):
        return
    reference = reference_of(mv)
    if reference.status == "ready":
        mv.status, mv.failure = "ready", ""
    else:
        mv.status = "failed"
        mv.failure = f"{reference.kind} (the reference): {reference.failure}"[:2000]


def manifest_json(variant: Variant) -> dict[str, Any] | None:
    """The variant's signed manifest in the nested JSON form of docs/contract.md."""
    import base64

    if variant.manifest_payload is None or variant.manifest_signature is None:
        return None
    return {
        "payload": base64.b64encode(variant.manifest_payload).decode(),
        "signature": base64.b64encode(variant.manifest_signature).decode(),
        "key_id": variant.manifest_key_id,
    }
