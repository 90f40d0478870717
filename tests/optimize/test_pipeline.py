"""The optimize pipeline on a real database, the real quantizer and both real interpreters.

The steps are called as the Celery task calls them (``pipeline.run``); a real worker runs the
task in ``tests/api/test_optimize_api.py`` and ``tests/e2e``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from ai_edge_litert import schema_py_generated as schema

from controlplane import modelgen
from controlplane.app import ControlPlane
from controlplane.config import Settings
from controlplane.fleet.selection import DeviceFacts, select_variant, selection_policy
from controlplane.optimize import pipeline
from controlplane.registry import services
from controlplane.registry.measure import evaluate
from controlplane.registry.models import Artifact, ModelVersion, Variant
from controlplane.registry.tflite import inspect_model
from protos.contract import golden
from protos.contract.documents import TensorSpec, parse_payload
from protos.contract.interpreters import installed_versions
from protos.contract.latency import parse_latency
from tests.optimize.test_recipes import with_conv3d
from tests.support.interpreters import TFLITE_RUNTIME, needs_tflite_runtime

pytestmark = pytest.mark.filterwarnings("ignore:Warning. Enabling `experimental_preserve")

LITERT = {"interpreter": {"name": "ai-edge-litert", "version": "2.3.0"}}
TFLITE_214 = {"interpreter": {"name": "tflite-runtime", "version": "2.14.0"}}


def make_plane(tmp_path: Path, db_url: str, **settings: object) -> ControlPlane:
    return ControlPlane.from_settings(Settings(
        data_dir=tmp_path, database_url=None if db_url.startswith("sqlite") else db_url,
        measure_runs=3, **settings))  # type: ignore[arg-type]


@pytest.fixture
def plane(tmp_path: Path, db_url: str) -> Iterator[ControlPlane]:
    p = make_plane(tmp_path, db_url)
    yield p
    p.close()


@pytest.fixture
def sqlite_plane(tmp_path: Path, sqlite_url: str) -> Iterator[ControlPlane]:
    p = make_plane(tmp_path, sqlite_url)
    yield p
    p.close()


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def register(plane: ControlPlane, model: bytes, *, calibration: bytes | None = None,
             name: str = "cnn", version: str = "1.0.0",
             tolerance: dict[str, float] | None = None) -> str:
    """Store and register a version as a push does; the pipeline's task has not run yet."""
    stored = plane.store.put_bytes(model)
    cal = plane.store.put_bytes(calibration) if calibration else None
    with plane.tx() as session:
        mv = services.register_version(
            session, name=name, version=version,
            model=services.Upload(stored.sha256, stored.size), info=inspect_model(model),
            calibration=services.Upload(cal.sha256, cal.size) if cal else None,
            tolerance=tolerance, created_by=None)
        return mv.id


def version(plane: ControlPlane, version_id: str) -> ModelVersion:
    """The version with its variants and their measurements, as the API reads it."""
    with plane.read() as session:
        row = session.get(ModelVersion, version_id)
        assert row is not None
        return services.find_version(session, row.model.name, row.version)


def kinds(mv: ModelVersion) -> dict[str, Variant]:
    return {v.kind: v for v in mv.variants}


def cnn_with_calibration(samples: int = 32) -> tuple[bytes, bytes]:
    model = modelgen.build_cnn()
    return model, npz(modelgen.calibration_samples(inspect_model(model).inputs, samples=samples))


def test_a_calibrated_cnn_yields_five_variants_measured_in_every_interpreter(
        plane: ControlPlane) -> None:
    model, calibration = cnn_with_calibration()
    vid = register(plane, model, calibration=calibration)
    pipeline.run(plane, vid)

    mv = version(plane, vid)
    assert mv.status == "ready", mv.failure
    assert mv.tolerance == {"min_cosine": 0.99, "min_top1": 0.95}
    by_kind = kinds(mv)
    assert set(by_kind) == {"float32", "float16", "dynamic_int8", "weight_only_int8", "int8"}
    assert all(v.status == "ready" for v in by_kind.values()), {
        k: (v.status, v.failure) for k, v in by_kind.items()}
    reference = by_kind["float32"]
    assert reference.artifact_sha256 == mv.source_sha256
    assert by_kind["int8"].size is not None and reference.size is not None
    assert by_kind["int8"].size <= 0.3 * reference.size
    assert by_kind["dynamic_int8"].min_runtime == "2.17.0"   # per-channel hybrid FC kernels
    interpreters = set(installed_versions())
    for v in by_kind.values():
        assert {m.interpreter for m in v.measurements} == interpreters
        for m in v.measurements:
            assert m.inputs_source == "calibration" and m.samples == 32
            (figures,) = m.accuracy
            assert figures["name"] == "scores" and figures["top1"] is not None
            assert m.latency_p50_ms is not None and 0 < m.latency_p50_ms <= m.latency_p95_ms
    litert = {v.kind: next(m for m in v.measurements if m.interpreter == "ai-edge-litert")
              for v in by_kind.values()}
    assert litert["float32"].accuracy[0]["max_abs_error"] == 0.0   # the reference itself
    assert litert["int8"].status == "ok" and litert["int8"].accuracy[0]["top1"] >= 0.98


def test_each_manifest_is_signed_and_its_golden_samples_reproduce_in_the_interpreter(
        sqlite_plane: ControlPlane) -> None:
    plane = sqlite_plane
    model, calibration = cnn_with_calibration(samples=16)
    vid = register(plane, model, calibration=calibration)
    pipeline.run(plane, vid)
    for v in version(plane, vid).variants:
        assert v.manifest_payload is not None and v.manifest_signature is not None
        assert plane.signer.verify(v.manifest_payload, v.manifest_signature)
        doc = parse_payload(v.manifest_payload)
        assert (doc["variant"], doc["sha256"], doc["min_runtime"]) == (
            v.kind, v.artifact_sha256, v.min_runtime)
        # What each interpreter that ran it within tolerance measured, as the device's latency
        # budget reads it (protos.contract.latency).
        measured = parse_latency(doc["latency_ms"])
        ok = {m.interpreter: m for m in v.measurements if m.status == "ok"}
        assert set(measured) == set(ok) and ok
        for name, figures in measured.items():
            assert (figures.p50_ms, figures.p95_ms) == (ok[name].latency_p50_ms,
                                                        ok[name].latency_p95_ms)
        outputs = [TensorSpec.from_json(t) for t in doc["outputs"]]
        ref = golden.GoldenRef.from_json(doc["golden"], outputs)
        assert ref.sha256 == v.golden_sha256 and ref.samples == v.golden_samples == 4
        data = plane.store.read_bytes(ref.sha256, max_bytes=ref.size)
        samples = golden.decode(data, ref, [TensorSpec.from_json(t) for t in doc["inputs"]],
                                outputs)
        assert v.artifact_sha256 is not None
        again = evaluate(plane.store.path(v.artifact_sha256), samples.inputs, runs=1,
                         interpreter="ai-edge-litert")
        assert golden.mismatch(samples, again.outputs, ref.atol) is None
        # a runtime that computes it wrongly is caught: uniform scores are far off
        uniform = {"scores": np.full_like(samples.outputs["scores"], 0.1)}
        assert str(golden.mismatch(samples, uniform, ref.atol)).startswith("sample 0")


@needs_tflite_runtime
def test_a_variant_tflite_runtime_runs_wrongly_is_rejected_for_it_and_offered_to_litert(
        sqlite_plane: ControlPlane) -> None:
    """Input tried: the generated CNN's dynamic-range variant, whose per-channel hybrid
    FULLY_CONNECTED tflite-runtime 2.14 loads and runs without an error, giving the same
    near-uniform scores for every input."""
    plane = sqlite_plane
    model, calibration = cnn_with_calibration()
    vid = register(plane, model, calibration=calibration)
    pipeline.run(plane, vid)
    mv = version(plane, vid)
    dynamic = kinds(mv)["dynamic_int8"]
    by_interpreter = {m.interpreter: m for m in dynamic.measurements}
    assert by_interpreter["ai-edge-litert"].status == "ok"
    rejected = by_interpreter["tflite-runtime"]
    assert rejected.status == "rejected" and rejected.interpreter_version == "2.14.0"
    assert rejected.reason.startswith("scores: cosine similarity"), rejected.reason
    assert rejected.accuracy[0]["top1"] < 0.5
    assert dynamic.status == "ready"   # kept: offered where it runs right

    def choose_variant(variants: list[Any], hardware: dict[str, Any] | None, min_runtime: str,
                       only: str | None = None) -> Any:
        return select_variant(variants, DeviceFacts.from_profile(hardware), min_runtime,
                              selection_policy(plane.settings, variant=only))

    offered = choose_variant(mv.variants, LITERT, mv.min_runtime, only="dynamic_int8")
    assert offered.variant is not None and offered.variant.kind == "dynamic_int8"
    refused = choose_variant(mv.variants, TFLITE_214, mv.min_runtime, only="dynamic_int8")
    assert refused.variant is None
    assert "rejected for tflite-runtime 2.14.0: scores: cosine similarity" in refused.reason
    # A version never measured speaks through the nearest measured one.
    older = {"interpreter": {"name": "tflite-runtime", "version": "2.13.0"}}
    assert choose_variant(mv.variants, older, mv.min_runtime, only="dynamic_int8").variant is None
    # Left to choose, a tflite-runtime device gets another variant and is told why not this one.
    chosen = choose_variant(mv.variants, TFLITE_214, mv.min_runtime)
    assert chosen.variant is not None and chosen.variant.kind != "dynamic_int8"
    assert "dynamic_int8 rejected for tflite-runtime" in chosen.reason
    # A device that has not said what it runs is offered nothing any interpreter rejected.
    unknown = choose_variant(mv.variants, None, mv.min_runtime, only="dynamic_int8")
    assert unknown.variant is None and "has not said which interpreter" in unknown.reason


@needs_tflite_runtime
def test_a_push_may_ask_for_a_looser_tolerance(sqlite_plane: ControlPlane) -> None:
    plane = sqlite_plane
    model, calibration = cnn_with_calibration(samples=8)
    vid = register(plane, model, calibration=calibration,
                   tolerance={"min_cosine": 0.0, "min_top1": 0.0})
    pipeline.run(plane, vid)
    mv = version(plane, vid)
    assert mv.tolerance == {"min_cosine": 0.0, "min_top1": 0.0}
    assert {m.status for m in kinds(mv)["dynamic_int8"].measurements} == {"ok"}


def test_without_calibration_int8_is_skipped_and_figures_come_from_synthetic_inputs(
        sqlite_plane: ControlPlane) -> None:
    plane = sqlite_plane
    vid = register(plane, modelgen.build_mlp())
    pipeline.run(plane, vid)
    mv = version(plane, vid)
    by_kind = kinds(mv)
    assert (by_kind["int8"].status, by_kind["int8"].failure) == ("skipped",
                                                                 "needs calibration data")
    assert by_kind["int8"].artifact_sha256 is None and not by_kind["int8"].measurements
    sources = {(m.inputs_source, m.samples) for v in mv.variants for m in v.measurements}
    assert sources == {("synthetic", plane.settings.synthetic_samples)}
    assert mv.status == "ready"


def test_kinds_left_out_by_the_settings_are_skipped_with_that_reason(
        tmp_path: Path, sqlite_url: str) -> None:
    plane = make_plane(tmp_path, sqlite_url, variant_kinds=("float32", "int8"))
    try:
        model, calibration = cnn_with_calibration(samples=8)
        vid = register(plane, model, calibration=calibration)
        pipeline.run(plane, vid)
        by_kind = kinds(version(plane, vid))
        assert {k for k, v in by_kind.items() if v.status == "ready"} == {"float32", "int8"}
        assert by_kind["float16"].failure == "left out by this server's variant_kinds setting"
    finally:
        plane.close()


def test_an_operator_the_quantizer_cannot_handle_fails_only_that_variant(
        sqlite_plane: ControlPlane) -> None:
    """Input tried: a model of one CONV_3D, which ai-edge-quantizer 0.10 leaves as it is."""
    plane = sqlite_plane
    model = modelgen.edit_model(modelgen.build_mlp(), with_conv3d)
    vid = register(plane, model)
    pipeline.run(plane, vid)
    mv = version(plane, vid)
    by_kind = kinds(mv)
    for kind in ("float16", "dynamic_int8", "weight_only_int8"):
        assert by_kind[kind].status == "failed"
        assert "changed nothing" in by_kind[kind].failure and kind in by_kind[kind].failure
        assert by_kind[kind].artifact_sha256 is None
    assert by_kind["float32"].status == "ready"
    assert mv.status == "ready"   # the float32 reference is deployable


def test_a_model_no_interpreter_can_run_fails_its_version_with_the_reason(
        sqlite_plane: ControlPlane) -> None:
    """Input tried: a valid flatbuffer whose last operator is a custom op no one implements."""
    def custom(m: schema.ModelT) -> None:
        code = m.operatorCodes[-1]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "EdgeFleetNoSuchKernel"

    plane = sqlite_plane
    vid = register(plane, modelgen.edit_model(modelgen.build_mlp(), custom))
    pipeline.run(plane, vid)
    mv = version(plane, vid)
    assert mv.status == "failed" and "EdgeFleetNoSuchKernel" in mv.failure
    assert {v.status for v in mv.variants} <= {"failed", "skipped"}


def artifact_files(plane: ControlPlane) -> set[Path]:
    return {p for p in plane.settings.artifact_dir.rglob("*") if p.is_file()}


def test_a_run_cut_short_resumes_and_makes_no_second_copy(sqlite_plane: ControlPlane) -> None:
    """A worker killed after building (before measuring), and one killed after storing a
    variant's bytes but before recording them: the re-sent task finishes the version, and the
    store and the tables hold each variant once."""
    plane = sqlite_plane
    model, calibration = cnn_with_calibration(samples=8)
    vid = register(plane, model, calibration=calibration)
    assert pipeline.plan(plane, vid)
    pipeline.build(plane, vid)
    with plane.tx() as session:   # the kill: stored, not yet recorded
        row = session.scalars(sa.select(Variant).where(
            Variant.model_version_id == vid, Variant.kind == "float16")).one()
        stored_sha = row.artifact_sha256
        row.artifact_sha256 = row.size = None
    files = artifact_files(plane)

    pipeline.run(plane, vid)   # the re-sent task
    mv = version(plane, vid)
    assert mv.status == "ready"
    assert kinds(mv)["float16"].artifact_sha256 == stored_sha   # the same bytes again
    after = artifact_files(plane)
    # Only golden samples are new: one file per variant (the int8 one was skipped).
    assert len(after - files) == len({v.golden_sha256 for v in mv.variants if v.golden_sha256})
    with plane.read() as session:
        artifacts = session.scalar(sa.select(sa.func.count()).select_from(Artifact))
        rows = session.scalar(sa.select(sa.func.count()).select_from(Variant))
    assert rows == 5

    pipeline.run(plane, vid)   # a redelivery after it settled changes nothing
    assert artifact_files(plane) == after
    with plane.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Artifact)) == artifacts


def test_the_pipeline_measures_only_in_the_interpreters_asked_for(
        tmp_path: Path, sqlite_url: str) -> None:
    plane = make_plane(tmp_path, sqlite_url, measure_interpreters=("ai-edge-litert",),
                       variant_kinds=("float32", "float16"))
    try:
        vid = register(plane, modelgen.build_mlp())
        pipeline.run(plane, vid)
        names = {m.interpreter for v in version(plane, vid).variants for m in v.measurements}
        assert names == {"ai-edge-litert"}
    finally:
        plane.close()


def test_every_installed_interpreter_is_measured_by_default() -> None:
    assert "ai-edge-litert" in installed_versions()
    assert ("tflite-runtime" in installed_versions()) == TFLITE_RUNTIME
