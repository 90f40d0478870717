"""Why a device refused a variant or rolled back from it, in the form the control plane learns
from (``pb.Finding`` on an install event): a reason code, the figure that broke a limit, and the
interpreter that ran it. The variant is the event's ref; the hardware is the device's profile.

Invariant: ``reason`` is one of ``REASONS`` (``protos.contract.findings``); ``observed`` and
``limit`` are in the unit the reason implies (an absolute error, a rate, milliseconds, bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protos import edgefleet_pb2 as pb
from protos.contract.findings import (  # noqa: F401  (the codes, re-exported for the agent)
    GOLDEN_MISMATCH,
    INSUFFICIENT_STORAGE,
    LATENCY_BUDGET,
    LOAD_FAILED,
    PROBATION_ERRORS,
    PROBATION_LATENCY,
    PROBATION_NONFINITE,
    REASONS,
    VALIDATION_FAILED,
)


@dataclass(frozen=True)
class Finding:
    reason: str
    observed: float = 0.0
    limit: float = 0.0
    sample: int = -1          # golden sample index; -1: none
    output: str = ""          # output tensor name; "": none

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown finding reason {self.reason!r}")

    def to_proto(self, interpreter: str, interpreter_version: str) -> pb.Finding:
        # The wire takes finite figures only: "not finite" (a NaN output) is told as the
        # largest double, which still reads as "far past the limit".
        def finite(x: float) -> float:
            return x if math.isfinite(x) else math.copysign(1.7976931348623157e308, x or 1.0)

        return pb.Finding(reason=self.reason, interpreter=interpreter,
                          interpreter_version=interpreter_version, sample=self.sample,
                          output=self.output, observed=finite(self.observed),
                          limit=finite(self.limit))
