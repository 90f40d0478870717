"""The reason codes of a ``pb.Finding``: why a device refused a variant or rolled back from it.

Both sides read them: the agent sets one on every refusal (``agent.findings``); the control plane
stores any well-formed code (a newer agent may know more) and learns from those in
``CLASS_FACTS`` that the variant cannot run correctly on the device's hardware class (the
variant's operators, the interpreter's kernels, a delegate): selection avoids it there. The
others are about this one device (its disk, its load at that moment) or about the version on
field data (probation), and teach nothing about the class.
"""

from __future__ import annotations

GOLDEN_MISMATCH = "golden_mismatch"
LOAD_FAILED = "load_failed"
VALIDATION_FAILED = "validation_failed"
LATENCY_BUDGET = "latency_budget"
PROBATION_ERRORS = "probation_errors"
PROBATION_NONFINITE = "probation_nonfinite"
PROBATION_LATENCY = "probation_latency"
INSUFFICIENT_STORAGE = "insufficient_storage"

REASONS = frozenset({GOLDEN_MISMATCH, LOAD_FAILED, VALIDATION_FAILED, LATENCY_BUDGET,
                     PROBATION_ERRORS, PROBATION_NONFINITE, PROBATION_LATENCY,
                     INSUFFICIENT_STORAGE})
CLASS_FACTS = frozenset({GOLDEN_MISMATCH, LOAD_FAILED, VALIDATION_FAILED})
