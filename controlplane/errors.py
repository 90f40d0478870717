"""The control plane's one error root, and its categories by whose fault a failure is.

    EdgeFleetError                        base of every error the control plane raises on purpose
    ├── InvalidArgumentError              the caller sent something malformed or unusable
    │   ├── InvalidModelError             bytes that are not a TFLite model we accept (registry)
    │   │   └── ModelRunError             it parses, but an interpreter will not load/run it
    │   ├── ArtifactIntegrityError        bytes disagree with the size/sha256 they claim
    │   └── VariantBuildError             this optimized variant cannot be made from the model
    ├── NotFoundError                     the thing named does not exist (or is not the caller's)
    │   └── ArtifactNotFoundError         no artifact with that sha256 in the store
    ├── AlreadyExistsError                creating what exists (model name:version)
    ├── FailedPreconditionError           the request is fine but the state is wrong
    ├── ResourceExhaustedError            a configured limit was reached (upload size, uses)
    │   └── ModelTooLargeError            an upload past its size cap
    ├── UnauthenticatedError              missing, malformed, unknown, revoked or expired credential
    ├── PermissionDeniedError             authenticated, but not allowed to do this
    ├── UnavailableError                  a dependency is not usable now; retry later
    │   ├── StorageError                  the artifact store could not write or read (disk)
    │   ├── InterpreterUnavailableError   the TFLite interpreter asked for is not installed here
    │   └── DependencyUnreachableError    the database or Redis does not answer
    └── ConfigurationError                the server or worker was set up wrong and cannot start
        ├── SigningKeyError               the signing key files are missing or unusable
        ├── SchemaError                   the database schema is not at the code's migration head
        └── QuantizerNotInstalledError    variants are built where the optimize extra is missing

Domain errors live with their domain (``registry.errors``, ``optimize.errors``) and subclass a
category here. The categories are mapped to gRPC status codes in one place (``api.errors``) and
to exit codes in one place (``cli.errors``); nothing else raises ``SystemExit``. Anything else
that escapes is a bug: INTERNAL with a generic message over gRPC, a traceback in the CLI. Misuse
by calling code (a negative offset, a naive datetime) is a ``ValueError``/``RuntimeError``, as
with any Python API.
"""

from __future__ import annotations


class EdgeFleetError(Exception):
    """Root of every error the control plane raises on purpose; the message is for a person."""


class InvalidArgumentError(EdgeFleetError):
    """The caller sent something malformed or unusable."""


class NotFoundError(EdgeFleetError):
    """The thing named does not exist, or the caller may not see it."""


class AlreadyExistsError(EdgeFleetError):
    """Creating something that exists already."""


class FailedPreconditionError(EdgeFleetError):
    """The request is well-formed but the current state does not allow it."""


class ResourceExhaustedError(EdgeFleetError):
    """A configured limit was reached."""


class UnauthenticatedError(EdgeFleetError):
    """No valid credential: missing, malformed, unknown, revoked or expired."""


class PermissionDeniedError(EdgeFleetError):
    """Authenticated, but the caller's role or identity does not allow this."""


class UnavailableError(EdgeFleetError):
    """A dependency (disk, database, broker, interpreter) is not usable now; the caller did
    nothing wrong and may retry."""


class DependencyUnreachableError(UnavailableError):
    """The database or Redis does not answer (at start, or for a background job)."""


class ConfigurationError(EdgeFleetError):
    """The server or worker was set up wrong (flags, files, keys, schema) and cannot start."""


class SchemaError(ConfigurationError):
    """The database's schema is not the one this code needs (run ``edgefleet db upgrade``)."""
