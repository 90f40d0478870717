"""Errors of the registry domain (models, versions, variants, artifacts, signing).

Each subclasses a category of ``controlplane.errors`` (the tree is drawn there), which decides
its gRPC status and exit code. Messages are written for a person: they say what was wrong and,
where it helps, what to do.
"""

from __future__ import annotations

from controlplane.errors import (
    ConfigurationError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)


class InvalidModelError(InvalidArgumentError):
    """The bytes are not a usable TFLite model (empty, truncated, wrong identifier, bad refs...)."""


class ModelRunError(InvalidModelError):
    """The model parses, but a TFLite interpreter refused to load or run it."""


class ModelTooLargeError(ResourceExhaustedError):
    """An upload exceeded its byte limit; nothing was stored. ``limit`` is the cap, if known."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class ArtifactIntegrityError(InvalidArgumentError):
    """Bytes do not match the size or sha256 they were declared with; nothing was stored."""


class ArtifactNotFoundError(NotFoundError):
    """The artifact store holds no artifact with the requested sha256."""


class StorageError(UnavailableError):
    """The artifact store failed to write or read (disk full, permissions, I/O error)."""


class SigningKeyError(ConfigurationError):
    """The signing key files cannot be used (missing, unreadable, wrong type, halves that do not
    match)."""


class InterpreterUnavailableError(UnavailableError):
    """The TFLite interpreter that was asked for is not installed in this environment."""
