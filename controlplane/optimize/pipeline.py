"""The optimize pipeline: from a pushed model to measured, signed variants.

For one pending version, in order, each step committing what it did before the next begins:

1. **plan**: one variant row per kind of ``Settings.VARIANT_KINDS``: the upload itself (named by
   what its weights are, ``recipes.plan_variants``), kinds to build (``pending``, no artifact
   yet), kinds not made (``skipped`` with the reason: "needs calibration data", "the upload is
   already quantized", or left out of the ``variant_kinds`` setting).
2. **build** every pending variant without an artifact, all in one child process
   (``optimize.build``); each result is stored content-addressed and recorded with its own
   signature and minimum runtime, or the variant is ``failed`` with the quantizer's reason.
3. **measure** the reference and every built variant in each interpreter of
   ``measure_interpreters``, each interpreter in its own child process (``optimize.evaluate``),
   on the calibration inputs or on deterministic synthetic ones (``inputs.measurement_inputs``);
   compare each to the reference's outputs in ``reference_interpreter`` (``accuracy``).
4. **sign** each variant: golden samples from an interpreter that runs it within tolerance
   (``golden``), the manifest signed, and its status settled: ``ready`` when some interpreter
   runs it within tolerance, ``rejected`` when every one that runs it is outside, ``failed``
   when none could run it. The version becomes ``ready`` once its reference is.

Invariants:
- Idempotent and resumable: each step does only what is left (rows are unique per (version,
  kind) and per (variant, interpreter, version); artifacts are content-addressed, so building
  the same bytes again stores no second copy). A worker killed anywhere leaves the version
  pending, and the re-sent task carries on from the last commit.
- Nothing slow runs inside a transaction: children run between them, holding no locks.
- A model's fault (it cannot be built, loaded or run) settles a variant as failed for good; the
  host's (a missing package, a missing artifact) raises, so the task is retried.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from controlplane.app import ControlPlane
from controlplane.optimize import golden as golden_samples
from controlplane.optimize.accuracy import Tolerance, compare, judge
from controlplane.optimize.build import build_isolated
from controlplane.optimize.evaluate import evaluate_isolated
from controlplane.optimize.inputs import measurement_inputs
from controlplane.optimize.recipes import plan_variants
from controlplane.registry.errors import ArtifactNotFoundError, ModelRunError
from controlplane.registry.measure import Evaluation
from controlplane.registry.models import ModelVersion, Variant, VariantMeasurement
from controlplane.registry.services import (
    ensure_artifact,
    mark_variant_ready,
    reference_of,
    settle_version,
)
from controlplane.registry.tflite import inspect_model
from protos.contract.interpreters import installed_versions
from protos.contract.latency import MeasuredLatency

log = logging.getLogger(__name__)


def run(plane: ControlPlane, version_id: str) -> None:
    """Carry ``version_id`` as far as it goes; a settled version is left alone."""
    if not plan(plane, version_id):
        return
    build(plane, version_id)
    measure_and_sign(plane, version_id)


def _version(session: Session, version_id: str, *, lock: bool = False) -> ModelVersion | None:
    q = (sa.select(ModelVersion).where(ModelVersion.id == version_id)
         .options(selectinload(ModelVersion.variants).selectinload(Variant.measurements),
                  selectinload(ModelVersion.model)))
    if lock:
        q = q.with_for_update()
    return session.scalars(q).one_or_none()


def plan(plane: ControlPlane, version_id: str) -> bool:
    """Create the version's variant rows (once). False when there is nothing left to do."""
    with plane.read() as session:
        mv = _version(session, version_id)
        if mv is None or mv.status != "pending":
            return False
        source_sha256, size = mv.source_sha256, mv.size
        has_calibration = mv.calibration_sha256 is not None
    # Read and parse outside the transaction: on SQLite a write transaction holds the whole
    # database, and a model may be hundreds of MB.
    planned = plan_variants(_read(plane, source_sha256, size), has_calibration=has_calibration)
    with plane.tx() as session:
        mv = _version(session, version_id, lock=True)
        if mv is None or mv.status != "pending":
            return False
        # The tolerance the variants are judged by is fixed now, so the report stays true to
        # it when the settings change later.
        mv.tolerance = Tolerance(plane.settings.min_cosine, plane.settings.min_top1) \
            .with_overrides(mv.tolerance).to_json()
        existing = {v.kind: v for v in mv.variants}
        upload = reference_of(mv)
        for p in planned:
            if p.action == "upload":
                if upload.kind != p.kind and p.kind not in existing:
                    upload.kind = p.kind   # named by its weights, not only its tensor types
                continue
            if p.kind in existing:
                continue
            skip = p.reason if p.action == "skip" else ""
            if p.action == "build" and p.kind not in plane.settings.variant_kinds:
                skip = "left out by this server's variant_kinds setting"
            session.add(Variant(model_version=mv, kind=p.kind,
                                status="skipped" if skip else "pending", failure=skip))
        session.flush()
    return True


def build(plane: ControlPlane, version_id: str) -> None:
    """Build every pending variant that has no artifact yet (one child for all)."""
    with plane.read() as session:
        mv = _version(session, version_id)
        if mv is None or mv.status != "pending":
            return
        wanted = [v.kind for v in mv.variants if v.status == "pending" and not v.artifact_sha256]
        source_path = _path(plane, mv.source_sha256)
        calibration = (_path(plane, mv.calibration_sha256) if mv.calibration_sha256 else None)
    if not wanted:
        return
    with tempfile.TemporaryDirectory(prefix="edgefleet-build-") as tmp:
        results = build_isolated(source_path, wanted, calibration=calibration,
                                 max_samples=plane.settings.quantize_samples, out_dir=Path(tmp),
                                 timeout=plane.settings.build_timeout_seconds)
        for kind, result in zip(wanted, results, strict=True):
            _record_build(plane, version_id, kind, result)


def _record_build(plane: ControlPlane, version_id: str, kind: str,
                  result: Path | ModelRunError) -> None:
    stored = info = None
    failure = ""
    if isinstance(result, Path):
        data = result.read_bytes()
        try:
            info = inspect_model(data)
        except ValueError as exc:   # the quantizer wrote something the registry refuses
            failure = f"the quantizer's output is not a usable model: {exc}"
        else:
            stored = plane.store.put_bytes(data, max_bytes=plane.settings.max_model_bytes)
    else:
        failure = str(result)
    with plane.tx() as session:
        variant = session.scalars(
            sa.select(Variant).where(Variant.model_version_id == version_id, Variant.kind == kind)
            .with_for_update()).one()
        if variant.status != "pending" or variant.artifact_sha256:
            return   # another delivery of the task got here first
        if stored is None or info is None:
            variant.status, variant.failure = "failed", failure[:2000]
            return
        ensure_artifact(session, stored.sha256, stored.size)
        variant.artifact_sha256, variant.size = stored.sha256, stored.size
        variant.inputs = [t.to_json() for t in info.inputs]
        variant.outputs = [t.to_json() for t in info.outputs]
        variant.min_runtime = info.min_runtime
        variant.arena_bytes = info.arena_bytes


@dataclass
class _Measured:
    """One variant's results in every interpreter: evaluation or the reason it failed."""

    variant_id: str
    results: dict[str, Evaluation | ModelRunError]


def measure_and_sign(plane: ControlPlane, version_id: str) -> None:
    settings = plane.settings
    with plane.read() as session:
        mv = _version(session, version_id)
        if mv is None or mv.status != "pending":
            return
        reference = reference_of(mv)
        todo = [v for v in mv.variants if v.status == "pending" and v.artifact_sha256]
        if not todo:
            _settle(plane, version_id)
            return
        # The reference runs first, always: its outputs are what the others are compared
        # with, even when it was finished before a kill (then it is run, not finished again).
        order = [reference, *(v for v in todo if v.id != reference.id)]
        unfinished = {v.id for v in todo}
        paths = [_path(plane, v.artifact_sha256) for v in order]
        ids = [v.id for v in order]
        try:
            samples, source = measurement_inputs(
                mv, _path(plane, mv.calibration_sha256) if mv.calibration_sha256 else None,
                settings=settings)
        except ValueError as exc:   # an input no synthetic data makes sense for (strings)
            _fail_version(plane, version_id, ids[0], str(exc))
            return
        tolerance = Tolerance(settings.min_cosine, settings.min_top1).with_overrides(mv.tolerance)
        specs = {v.id: (v.inputs, v.outputs) for v in mv.variants}
    interpreters = _interpreters(plane)
    measured = [_Measured(i, {}) for i in ids]
    for name in interpreters:
        results = evaluate_isolated(paths, samples, interpreter=name, runs=settings.measure_runs,
                                    timeout=settings.measure_timeout_seconds)
        for m, r in zip(measured, results, strict=True):
            m.results[name] = r
    ref_result = measured[0].results.get(settings.reference_interpreter)
    if not isinstance(ref_result, Evaluation):
        _fail_version(plane, version_id, ids[0], f"the reference could not run in "
                      f"{settings.reference_interpreter}: {ref_result}")
        return
    reference_outputs = ref_result.outputs
    for m in measured:
        if m.variant_id in unfinished:
            _finish_variant(plane, m, reference_outputs, samples, source, tolerance,
                            specs[m.variant_id], interpreters)
    _settle(plane, version_id)


def _interpreters(plane: ControlPlane) -> dict[str, str]:
    """The interpreters to measure in: the reference's first, then the others asked for (or,
    by default, installed here)."""
    settings = plane.settings
    installed = installed_versions()
    asked = list(settings.measure_interpreters) or list(installed)
    names = [settings.reference_interpreter,
             *(n for n in asked if n != settings.reference_interpreter)]
    return {n: installed.get(n, "") for n in names}


def _finish_variant(plane: ControlPlane, m: _Measured, reference: dict[str, np.ndarray],
                    samples: dict[str, np.ndarray], source: str, tolerance: Tolerance,
                    specs: tuple[list[dict], list[dict]], interpreters: Mapping[str, str]) -> None:
    rows = []
    ok: list[Evaluation] = []
    count = len(next(iter(samples.values())))
    for name in interpreters:
        result = m.results[name]
        try:
            if isinstance(result, ModelRunError):
                raise result
            figures = compare(reference, result.outputs)
        except (ModelRunError, ValueError) as exc:   # could not run, or outputs of another shape
            rows.append(VariantMeasurement(
                interpreter=name, interpreter_version=interpreters[name],
                status="failed", reason=str(exc)[:2000], accuracy=[],
                inputs_source=source, samples=count))
            continue
        reason = judge(figures, tolerance)
        rows.append(VariantMeasurement(
            interpreter=result.interpreter_name, interpreter_version=result.interpreter_version,
            status="rejected" if reason else "ok", reason=reason,
            latency_p50_ms=result.latency_ms_median, latency_p95_ms=result.latency_ms_p95,
            accuracy=[f.to_json() for f in figures], inputs_source=source, samples=count))
        if not reason:
            ok.append(result)
    golden = golden_samples.make(samples, ok, specs, settings=plane.settings) if ok else None
    stored = (plane.store.put_bytes(golden.data, max_bytes=plane.settings.max_golden_bytes)
              if golden is not None else None)
    golden_ref = golden.ref(stored.sha256) if golden is not None and stored is not None else None
    with plane.tx() as session:
        variant = session.scalars(
            sa.select(Variant).where(Variant.id == m.variant_id)
            .options(selectinload(Variant.measurements),
                     selectinload(Variant.model_version).selectinload(ModelVersion.model))
            .with_for_update()).one()
        if variant.status != "pending":
            return
        variant.measurements.clear()
        session.flush()
        variant.measurements.extend(rows)
        statuses = {r.status for r in rows}
        if "ok" not in statuses:
            variant.status = "rejected" if "rejected" in statuses else "failed"
            variant.failure = "; ".join(f"{r.interpreter} {r.interpreter_version}: {r.reason}"
                                        for r in rows)[:2000]
            return
        first_ok = ok[0]
        if golden_ref is not None:
            ensure_artifact(session, golden_ref["sha256"], golden_ref["size"])
            variant.golden_sha256 = golden_ref["sha256"]
            variant.golden_samples = golden_ref["samples"]
        mark_variant_ready(
            variant, signer=plane.signer, now=plane.clock(),
            latency_ms=first_ok.latency_ms_median,
            measured_with=f"{first_ok.interpreter_name} {first_ok.interpreter_version}",
            golden=golden_ref,
            latency={r.interpreter_name: MeasuredLatency(r.latency_ms_median, r.latency_ms_p95)
                     for r in ok})


def _settle(plane: ControlPlane, version_id: str) -> None:
    with plane.tx() as session:
        mv = _version(session, version_id, lock=True)
        if mv is None or mv.status != "pending":
            return
        settle_version(mv)
        if mv.status != "pending":
            log.info("%s:%s %s: %s", mv.model.name, mv.version, mv.status,
                     ", ".join(f"{v.kind} {v.status}" for v in mv.variants))


def _fail_version(plane: ControlPlane, version_id: str, reference_id: str, reason: str) -> None:
    """The reference itself cannot run: nothing can be measured against it."""
    with plane.tx() as session:
        mv = _version(session, version_id, lock=True)
        if mv is None or mv.status != "pending":
            return
        for v in mv.variants:
            if v.status == "pending":
                v.status = "failed"
                v.failure = (reason if v.id == reference_id
                             else "not measured: the reference could not run")[:2000]
        mv.status, mv.failure = "failed", reason[:2000]


def _path(plane: ControlPlane, sha256: str | None) -> Path:
    if sha256 is None or not plane.store.exists(sha256):
        raise ArtifactNotFoundError(
            f"artifact {sha256} is not in this host's store ({plane.settings.artifact_dir}): "
            "workers and servers must share the data dir")
    return plane.store.path(sha256)


def _read(plane: ControlPlane, sha256: str, size: int) -> bytes:
    return plane.store.read_bytes(sha256, max_bytes=size)
