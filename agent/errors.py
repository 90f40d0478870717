"""The agent's exceptions, grouped by whose fault a failure is.

::

    AgentError
    ├── AgentDataError              untrusted or bad data: refuse it, keep serving what we had
    │   ├── SignatureError          a signature does not verify against the trust key
    │   ├── DocumentError           a verified document is malformed or contradicts itself
    │   ├── ExpiredError            a desired state whose expires_at has passed
    │   ├── RollbackError           a desired state older than the one held
    │   ├── WrongDeviceError        a desired state addressed to another device
    │   ├── ArtifactMismatchError   artifact length or sha256 differ from the manifest's
    │   ├── ModelLoadError          the interpreter refuses the artifact, or it contradicts
    │   │                           its manifest
    │   ├── ValidationError         a loaded model fails its checks before activation
    │   │   └── IncompatibleVariantError  it runs, but its golden samples come out wrong
    │   ├── InsufficientStorageError  no room for the artifact beside the kept ones
    │   ├── InstallStepError        a step of an install refused the model: ``step`` names it,
    │   │                           ``cause`` is the error the step raised
    │   └── EnrollmentRefusedError  the server refused the enrollment token (unknown, used
    │                               up, expired, revoked): asking again cannot help
    ├── InferenceError              the interpreter failed on a request it had accepted
    ├── AgentTransportError         a peer (server or local agent) unreachable or failing
    ├── PredictRequestError         (also ValueError) a local inference request refused
    │   ├── InvalidInputError       wrong input names, shapes, dtypes or values
    │   ├── ModelNotFoundError      the named model is not loaded
    │   ├── NoModelLoadedError      nothing is loaded yet
    │   └── AmbiguousModelError     no model named while several are loaded
    └── ConfigurationError          (also ValueError) started wrong: no trust key or an
                                    unsafe one (inside the data dir, writable by others), no
                                    enrollment token, a corrupt credential ...

Data errors are never retried for the same bytes; transport errors are retried with backoff.
So an enrollment the server refused is a data error (the token is what is wrong: the agent stops
for good, ``edgefleet-agent run`` exits 4), while one that could not reach the server or was
answered UNAVAILABLE (or another transient code) is a transport error, tried again.

Foreign exceptions (grpc, cryptography, OSError, interpreter errors) are wrapped at the boundary
with ``raise ... from exc`` so callers only ever catch these.

A data error that says why this device cannot run a variant carries a ``finding``
(``agent.findings.Finding``): the reason code and figures the control plane learns from.
"""

from __future__ import annotations

from agent.findings import Finding


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class AgentDataError(AgentError):
    """Untrusted or bad data; the agent refuses it and keeps serving what it had.

    ``finding`` is set when the error says why this device cannot run a variant."""

    def __init__(self, message: str, *, finding: Finding | None = None) -> None:
        super().__init__(message)
        self.finding = finding


class SignatureError(AgentDataError):
    """A signed document whose signature does not verify against the trust key."""


class DocumentError(AgentDataError):
    """A document that verifies but is malformed or disagrees with itself."""


class ExpiredError(AgentDataError):
    """A desired state past its ``expires_at``."""


class RollbackError(AgentDataError):
    """A desired state with a lower sequence than the one held: a possible rollback attack."""


class WrongDeviceError(AgentDataError):
    """A desired state addressed to another device."""


class ArtifactMismatchError(AgentDataError):
    """Artifact bytes whose length or sha256 disagree with the signed manifest."""


class ModelLoadError(AgentDataError):
    """An artifact the interpreter cannot load, or whose tensors contradict its manifest."""


class ValidationError(AgentDataError):
    """A loaded model that fails its pre-activation checks (smoke inference, outputs, latency)."""


class IncompatibleVariantError(ValidationError):
    """A variant that loads and runs, but not correctly here: its golden samples' outputs are
    not reproduced by this device's interpreter (a runtime too old for it gives wrong numbers
    without any error). Reported as ``incompatible``, never activated."""


class InsufficientStorageError(AgentDataError):
    """The data dir has no room for an artifact beside the ones it keeps (``min_free_bytes``
    reserved), or the disk filled while it was written. Reported ``insufficient_storage`` and
    tried again later: space may be freed."""


class EnrollmentRefusedError(AgentDataError):
    """The server refused the enrollment token (unknown, used up, expired or revoked).

    ``code`` is the gRPC status code name the refusal came with (``"UNAUTHENTICATED"`` ...).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class InstallStepError(AgentDataError):
    """A step of an install (``agent.installer``) refused the model; ``step`` is its name and
    ``cause`` (also ``__cause__``) the error it raised."""

    def __init__(self, step: str, cause: AgentError) -> None:
        super().__init__(f"{step}: {cause}", finding=getattr(cause, "finding", None))
        self.step = step
        self.cause = cause


class InferenceError(AgentError):
    """The interpreter failed while running a well-formed request (the model's fault)."""


class AgentTransportError(AgentError):
    """A peer could not be reached or failed mid-call; worth retrying later.

    ``code`` is the gRPC status code name when there is one (``"UNAVAILABLE"`` ...).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code




class PredictRequestError(AgentError, ValueError):
    """A local inference request the agent refuses; the caller must change it."""


class InvalidInputError(PredictRequestError):
    """Inputs with the wrong names, shapes, dtypes or values."""


class ModelNotFoundError(PredictRequestError):
    """The request names a model the agent is not serving."""


class NoModelLoadedError(PredictRequestError):
    """The agent serves no model yet."""


class AmbiguousModelError(PredictRequestError):
    """The request names no model while several are loaded."""


class ConfigurationError(AgentError, ValueError):
    """The agent was started with missing or contradictory configuration."""
