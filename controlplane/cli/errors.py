"""Exit codes of the ``edgefleet`` CLI, and how the control plane's errors map to them.

Invariant: every expected failure reaches ``main`` as an ``EdgeFleetError`` with a message a
person can act on: a ``CliError`` (the CLI's own, carrying its exit code) or a control-plane
error from a local command (``server``, ``worker``, ``init`` ...), whose exit code comes from
its category in ``EXIT_CODES`` (the one place). ``main`` prints it to stderr and returns the
code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum

from controlplane import errors


class ExitCode(IntEnum):
    OK = 0
    GENERIC = 1           # the server failed, or anything not listed below
    USAGE = 2             # the command line is malformed (argparse's own code)
    UNREACHABLE = 3       # no answer from the control plane (UNAVAILABLE, DEADLINE_EXCEEDED)
    AUTH = 4              # no token, rejected token, or a token whose role is too low
    NOT_FOUND = 5         # the model, device or rollout does not exist
    INVALID = 6           # bad input file or value, already exists, wrong state, over a limit
    ROLLOUT_FAILED = 7    # `rollout status --watch` ended in failed, aborted or rolled_back
    MODEL_FAILED = 8      # `model push --wait` ended with the version failed
    TIMED_OUT = 9         # a wait (`model push --wait --timeout`) ran out; the work goes on
    INTERRUPTED = 130     # Ctrl-C


class CliError(errors.EdgeFleetError):
    """An expected failure of the CLI itself: ``message`` goes to stderr and ``code`` becomes
    the exit status."""

    def __init__(self, message: str, code: ExitCode = ExitCode.GENERIC) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


#: Each category of ``controlplane.errors`` and the exit code it ends a local command with.
EXIT_CODES: dict[type[errors.EdgeFleetError], ExitCode] = {
    errors.InvalidArgumentError: ExitCode.INVALID,
    errors.NotFoundError: ExitCode.NOT_FOUND,
    errors.AlreadyExistsError: ExitCode.INVALID,
    errors.FailedPreconditionError: ExitCode.INVALID,
    errors.ResourceExhaustedError: ExitCode.INVALID,
    errors.UnauthenticatedError: ExitCode.AUTH,
    errors.PermissionDeniedError: ExitCode.AUTH,
    errors.UnavailableError: ExitCode.UNREACHABLE,
    errors.ConfigurationError: ExitCode.GENERIC,
}


def exit_code_for(exc: errors.EdgeFleetError) -> ExitCode:
    if isinstance(exc, CliError):
        return exc.code
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return ExitCode.GENERIC
