"""Errors of the optimize domain (building a model's optimized variants).

Each subclasses a category of ``controlplane.errors`` (the tree is drawn there), which decides
its gRPC status and exit code. Messages are written for a person and are bounded: a quantizer's
or an interpreter's own reason is quoted, but never more than ``MAX_REASON_CHARS`` of it.
"""

from __future__ import annotations

from controlplane.errors import ConfigurationError, InvalidArgumentError

#: How much of a tool's own reason a message quotes (interpreter errors run to ~300 characters).
MAX_REASON_CHARS = 400


# InvalidArgumentError, not FailedPreconditionError: what fails is a property of the uploaded
# bytes themselves (an operator the quantizer does not know, weights that are already
# quantized), so no change of state on the server makes a retry succeed; the same bytes fail the
# same way every time. Not InvalidModelError either: the registry accepted the model, and every
# other variant of it may build.
class VariantBuildError(InvalidArgumentError):
    """This kind of variant cannot be made from this model; ``kind`` says which."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"cannot build the {kind} variant: {excerpt(reason)}")
        self.kind = kind


# ConfigurationError: a control plane that optimizes models but lacks the optional extra was
# installed wrong; retrying does not help, installing does.
class QuantizerNotInstalledError(ConfigurationError):
    """ai-edge-quantizer (the ``optimize`` extra) is not installed where variants are built."""


def excerpt(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` on one line, cut after ``limit`` characters (with the full length said)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}... ({len(flat)} characters)"
