"""Rows the rollout tests build: ready versions, enrolled devices of chosen hardware, reports."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from controlplane import modelgen
from controlplane.audit.services import Actor
from controlplane.auth.services import create_enrollment_token
from controlplane.config import Settings
from controlplane.fleet import services as fleet
from controlplane.registry import services as registry
from controlplane.registry.models import Variant
from controlplane.registry.signing import Signer
from controlplane.registry.tflite import inspect_model
from controlplane.telemetry.services import Event, Window, record_metrics, record_status
from controlplane.validation import WireTime

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SETTINGS = Settings(data_dir=Path("/nonexistent"))
SIGNER = Signer.generate()
ACTOR = Actor("tok-test", "operator")
X86 = {"arch": "x86_64", "interpreter": {"name": "tflite-runtime", "version": "2.14.0"}}
ARM = {"arch": "aarch64", "interpreter": {"name": "tflite-runtime", "version": "2.14.0"}}
BOUNDS = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]


def ready_version(s: Session, version: str, seed: int, name: str = "m") -> str:
    """A ready one-variant version of ``name``; its variant's id."""
    data = modelgen.build_mlp(seed=seed)
    mv = registry.register_version(
        s, name=name, version=version,
        model=registry.Upload(sha256=hashlib.sha256(data).hexdigest(), size=len(data)),
        info=inspect_model(data), calibration=None, created_by=None)
    s.flush()
    (variant,) = mv.variants
    registry.mark_variant_ready(variant, signer=SIGNER, now=NOW, latency_ms=0.1,
                                measured_with="test")
    registry.settle_version(mv)
    return variant.id


def devices(s: Session, n: int, labels: dict[str, str], hardware: dict | None = None,
            now: dt.datetime = NOW) -> list[str]:
    token, _ = create_enrollment_token(
        s, labels=labels, uses=n, expires_in_seconds=3600, settings=Settings(), now=now)
    return [fleet.enroll(s, enrollment_token_id=token.id, name=f"d{i}",
                         hardware=hardware or X86, labels={}, now=now,
                         settings=Settings())[0].id
            for i in range(n)]


def report(s: Session, device_id: str, variant_id: str, state: str = "active", *,
           message: str = "", now: dt.datetime = NOW, model: str = "m") -> None:
    v = s.get(Variant, variant_id)
    assert v is not None
    record_status(s, device_id, [Event(
        model=model, version=v.model_version.version, variant=v.kind, sha256=v.artifact_sha256,
        state=state, message=message, at=WireTime.of(now))], settings=SETTINGS, now=now)


def latency_window(s: Session, device_id: str, variant_id: str, *, ms: float, count: int,
                   errors: int = 0, nonfinite: int = 0, end: dt.datetime = NOW,
                   model: str = "m") -> None:
    """One 10 s window of ``count`` inferences, all in the bucket holding ``ms``."""
    v = s.get(Variant, variant_id)
    assert v is not None
    counts = [0] * (len(BOUNDS) + 1)
    counts[next((i for i, b in enumerate(BOUNDS) if ms <= b), len(BOUNDS))] = count
    outcome = record_metrics(s, device_id, [Window(
        window_id=str(uuid.uuid4()), model=model, version=v.model_version.version,
        variant=v.kind, sha256=v.artifact_sha256,
        start=WireTime.of(end - dt.timedelta(seconds=10)), end=WireTime.of(end), count=count,
        errors=errors, nonfinite=nonfinite, bucket_bounds_ms=BOUNDS, bucket_counts=counts,
        latency_sum_ms=ms * count, latency_max_ms=ms)], settings=SETTINGS, now=end)
    assert outcome.accepted == 1, outcome
