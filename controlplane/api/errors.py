"""Turning service errors into gRPC statuses, in one place.

An ``EdgeFleetError`` answers with the status of its category (``STATUS``) and its own message;
any other exception is a bug: it is logged with its traceback and the caller gets INTERNAL with no
detail.
Every call is counted in ``observability`` by method and outcome.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from controlplane import errors
from controlplane.db import is_contention
from controlplane.observability import record

log = logging.getLogger(__name__)

#: Every category of ``controlplane.errors`` and the status it answers with (the one place).
STATUS: dict[type[errors.EdgeFleetError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    # disk full, database busy, interpreter missing: the caller did nothing wrong; retry later
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    # the server's own setup is wrong; nothing the caller can change
    errors.ConfigurationError: grpc.StatusCode.INTERNAL,
}


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status ``exc`` answers with; None for an exception nobody raised on purpose (a bug)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    if is_contention(exc):  # still losing after run_db's retries: busy, not broken
        return grpc.StatusCode.UNAVAILABLE
    return None


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "OK"
    if isinstance(exc, grpc.aio.AbortError):
        return "ABORTED_BY_SERVICER"
    code = status_for(exc)
    return code.name if code is not None else "INTERNAL"


async def _abort_for(fn: Callable[..., Any], exc: Exception, context: Any) -> None:
    code = status_for(exc)
    if code is None:
        log.exception("unexpected error in %s", fn.__qualname__)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error; see server log")
    if is_contention(exc):  # str(exc) would show SQL to the caller
        await context.abort(code, "the database is busy: retry shortly")
    await context.abort(code, str(exc))


@contextlib.asynccontextmanager
async def _answering(fn: Callable[..., Any], context: Any) -> AsyncIterator[None]:
    """Map what escapes a servicer call to a status, and count the call's outcome."""
    start, failure = time.perf_counter(), None
    try:
        yield
    except grpc.aio.AbortError as exc:
        failure = exc
        raise
    except Exception as exc:
        failure = exc
        await _abort_for(fn, exc, context)
    finally:
        record(fn.__name__, _outcome(failure), time.perf_counter() - start)


def rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a unary or client-streaming servicer method: error mapping and metrics."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _answering(fn, context):
            return await fn(self, request, context)

    return wrapper


def stream_rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The same for server-streaming methods (async generators)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _answering(fn, context):
            async for item in fn(self, request, context):
                yield item

    return wrapper
