"""The manifest's measured latency field: what the control plane writes, the agent reads back,
and what either side refuses."""

from __future__ import annotations

import math

import pytest

from protos.contract import ContractError
from protos.contract.latency import MeasuredLatency, latency_json, measured_for, parse_latency


def test_figures_round_trip_and_are_read_per_interpreter():
    doc = latency_json({"tflite-runtime": MeasuredLatency(0.4, 0.5),
                        "ai-edge-litert": MeasuredLatency(0.3, 0.45)})
    assert parse_latency(doc)["tflite-runtime"] == MeasuredLatency(0.4, 0.5)
    manifest = {"latency_ms": doc}
    assert measured_for(manifest, "ai-edge-litert") == MeasuredLatency(0.3, 0.45)
    assert measured_for({}, "ai-edge-litert") is None


@pytest.mark.parametrize("bad", [
    [],                                                        # not an object
    {"tflite": {"p50": 1.0, "p95": 2.0}},                      # unknown interpreter
    {"tflite-runtime": {"p50": 1.0}},                          # a figure missing
    {"tflite-runtime": {"p50": 1.0, "p95": 2.0, "p99": 3.0}},  # an extra figure
    {"tflite-runtime": {"p50": True, "p95": 2.0}},             # a bool is not a number
    {"tflite-runtime": {"p50": -1.0, "p95": 2.0}},             # negative
    {"tflite-runtime": {"p50": 1.0, "p95": math.inf}},         # not finite
    {"tflite-runtime": {"p50": 3.0, "p95": 2.0}},              # p50 above p95
])
def test_a_malformed_field_is_refused(bad):
    with pytest.raises(ContractError, match="latency_ms"):
        parse_latency(bad)
