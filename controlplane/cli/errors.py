"""Exit codes of the ``edgefleet`` CLI and the one exception that carries them.

Invariant: every expected failure (bad input, server unreachable, rejected token, missing object)
reaches ``main`` as a ``CliError`` whose message a person can act on; ``main`` prints it to stderr
and returns its code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    GENERIC = 1           # the server failed, or anything not listed below
    USAGE = 2             # the command line is malformed (argparse's own code)
    UNREACHABLE = 3       # no answer from the control plane (UNAVAILABLE, DEADLINE_EXCEEDED)
    AUTH = 4              # no token, rejected token, or a token whose role is too low
    NOT_FOUND = 5         # the model, device or rollout does not exist
    INVALID = 6           # bad input file or value, already exists, wrong state, over a limit
    ROLLOUT_FAILED = 7    # `rollout status --watch` ended in failed, aborted or rolled_back
    INTERRUPTED = 130     # Ctrl-C


class CliError(Exception):
    """An expected failure: ``message`` goes to stderr and ``code`` becomes the exit status."""

    def __init__(self, message: str, code: ExitCode = ExitCode.GENERIC) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
