"""Variant choice: readiness, runtime floors (with ai-edge-litert's own numbering), speed."""

from __future__ import annotations

from controlplane.fleet.selection import choose_variant, runtime_satisfies
from controlplane.registry.models import Variant
from protos.contract.interpreters import tflite_equivalent


def _v(kind: str, latency: float | None, status: str = "ready", size: int = 100) -> Variant:
    return Variant(kind=kind, latency_ms=latency, status=status, size=size)


def _hw(name: str, version: str) -> dict:
    return {"interpreter": {"name": name, "version": version}}


def test_fastest_ready_variant_wins_and_the_reason_says_why() -> None:
    choice = choose_variant(
        [_v("float32", 2.0), _v("full_int8", 0.5), _v("float16", 0.1, "failed")],
        _hw("tflite-runtime", "2.14.0"),
        "2.3.0",
    )
    assert choice.variant is not None and choice.variant.kind == "full_int8"
    assert "full_int8" in choice.reason


def test_device_older_than_the_runtime_floor_gets_nothing() -> None:
    choice = choose_variant([_v("dynamic_int8", 0.5)], _hw("tflite-runtime", "2.14.0"), "2.17.0")
    assert choice.variant is None
    assert "2.17.0" in choice.reason and "tflite-runtime 2.14.0" in choice.reason


def test_ai_edge_litert_versions_are_compared_as_tflite_releases() -> None:
    assert tflite_equivalent("ai-edge-litert", "2.3.0") == "2.18.0"
    assert tflite_equivalent("tflite-runtime", "2.14.0") == "2.14.0"
    choice = choose_variant([_v("dynamic_int8", 0.5)], _hw("ai-edge-litert", "2.3.0"), "2.17.0")
    assert choice.variant is not None


def test_version_comparison_is_numeric() -> None:
    assert runtime_satisfies("2.14.0", "2.7.0")
    assert not runtime_satisfies("2.14.0", "2.17.0")
    assert runtime_satisfies("", "2.17.0")  # unknown: the agent's own validation decides
    assert choose_variant([], None, "").variant is None
