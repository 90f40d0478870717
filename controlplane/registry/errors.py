"""Errors of the registry domain (models, versions, variants, artifacts, signing).

Every error here derives from ``RegistryError``. The tree, by whose fault it is::

    RegistryError
    ├── InvalidModelError            the bytes are not a TFLite model we can accept   (caller)
    │   └── ModelRunError            it parses, but an interpreter will not load/run it (caller)
    ├── ModelTooLargeError           an upload went past its size cap                   (caller)
    ├── ArtifactIntegrityError       bytes disagree with the size/sha256 they claim      (caller)
    ├── DuplicateVersionError        NAME:VERSION already exists                         (caller)
    ├── ModelNotFoundError           no such model or version                            (caller)
    ├── ArtifactNotFoundError        no artifact with that sha256 in the store           (server)
    ├── StorageError                 the artifact store could not write or read (disk)   (server)
    ├── SigningKeyError              the signing key files are unusable                  (server)
    └── InterpreterUnavailableError  the requested TFLite interpreter is not installed   (server)

Messages are written for a person: they say what was wrong and, where it helps, what to do.
Misuse by calling code (a malformed sha256 string, a negative offset) raises ``ValueError`` or
``RuntimeError`` instead, as with any Python API.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry domain error."""


class InvalidModelError(RegistryError):
    """The bytes are not a usable TFLite model (empty, truncated, wrong identifier, bad refs...)."""


class ModelRunError(InvalidModelError):
    """The model parses, but a TFLite interpreter refused to load or run it."""


class ModelTooLargeError(RegistryError):
    """An upload exceeded its byte limit; nothing was stored. ``limit`` is the cap, if known."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class ArtifactIntegrityError(RegistryError):
    """Bytes do not match the size or sha256 they were declared with; nothing was stored."""


class DuplicateVersionError(RegistryError):
    """A model version with this name and version string already exists."""


class ModelNotFoundError(RegistryError):
    """No model (or model version) with the requested name exists."""


class ArtifactNotFoundError(RegistryError):
    """The artifact store holds no artifact with the requested sha256."""


class StorageError(RegistryError):
    """The artifact store failed to write or read (disk full, permissions, I/O error)."""


class SigningKeyError(RegistryError):
    """The signing key files cannot be used (unreadable, wrong type, halves that do not match)."""


class InterpreterUnavailableError(RegistryError):
    """The TFLite interpreter that was asked for is not installed in this environment."""
