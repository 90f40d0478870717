"""The control plane's error roots, by whose fault a failure is.

    EdgeFleetError                     base of every error a service raises on purpose
    ├── InvalidArgumentError           the caller sent something malformed or unusable
    ├── NotFoundError                  the thing named does not exist (or the caller may not see it)
    ├── AlreadyExistsError             creating what exists (model name:version)
    ├── FailedPreconditionError        the request is fine but the state is wrong (rollout paused)
    ├── ResourceExhaustedError         a configured limit was reached (upload size, token uses)
    ├── UnauthenticatedError           missing, malformed, unknown, revoked or expired credential
    └── PermissionDeniedError          authenticated, but not allowed to do this

Each class names the gRPC status the API layer answers with, so servicers never guess. Anything
else that escapes a service is a bug and becomes INTERNAL with a generic message.
"""

from __future__ import annotations


class EdgeFleetError(Exception):
    status = "INTERNAL"


class InvalidArgumentError(EdgeFleetError):
    status = "INVALID_ARGUMENT"


class NotFoundError(EdgeFleetError):
    status = "NOT_FOUND"


class AlreadyExistsError(EdgeFleetError):
    status = "ALREADY_EXISTS"


class FailedPreconditionError(EdgeFleetError):
    status = "FAILED_PRECONDITION"


class ResourceExhaustedError(EdgeFleetError):
    status = "RESOURCE_EXHAUSTED"


class UnauthenticatedError(EdgeFleetError):
    status = "UNAUTHENTICATED"


class PermissionDeniedError(EdgeFleetError):
    status = "PERMISSION_DENIED"
