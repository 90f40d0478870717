"""The gRPC server interceptor that authenticates and authorises every call.

Invariant: no servicer code runs unless ``policy.allowed`` said yes for the caller's principal;
the servicer reads that principal with ``current_principal()``. Health and reflection are public
(no credential asked, no principal set).
Verified device credentials are cached (``auth.cache``) for ``Settings.auth_cache_seconds`` so
the device sync hot path needs no database read to authenticate; a device revoked on another
server is refused within that time. Operator tokens are checked against the database on every
call, so their revocation is immediate everywhere.

Every handler it rebuilds parses requests with ``_parse_or_mark``: bytes that are not a message
of the method's type (a string field holding invalid UTF-8, which proto3 forbids, or truncated
bytes) become an ``Unparsable`` marker instead of an exception inside grpc (which would answer
INTERNAL/UNKNOWN and log a traceback). A unary request so marked is answered INVALID_ARGUMENT
before any servicer code runs. A marked message in a request stream is met where the servicer
reads it, so the push's own cleanup runs: EdgeFleet's servicers get an InvalidArgumentError,
which ``api.errors`` answers; the public ones (health, reflection), rebuilt for this alone, are
aborted with INVALID_ARGUMENT.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from controlplane.app import ControlPlane
from controlplane.auth.policy import Principal, allowed, is_public
from controlplane.errors import EdgeFleetError, InvalidArgumentError
from controlplane.observability import record

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "edgefleet_principal", default=None
)

def current_principal() -> Principal:
    """The caller of the RPC being served (set by the interceptor)."""
    p = _principal.get()
    if p is None:
        raise RuntimeError("current_principal() called outside an authenticated RPC")
    return p


class Unparsable:
    """What a rebuilt handler's deserializer returns for bytes that do not parse."""

    def __init__(self, method: str) -> None:
        self.reason = (
            f"the request is not a well-formed {method.rsplit('/', 1)[-1]} message (a string "
            f"field holding bytes that are not UTF-8, or truncated bytes): string fields carry "
            f"UTF-8 text only")


def _parse_or_mark(deserializer: Callable[[bytes], Any] | None, method: str) -> Any:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # protobuf's DecodeError, or whatever a parser raises on garbage
            return Unparsable(method)

    return parse


async def _parsed(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext,
                  *, public: bool) -> AsyncIterator[Any]:
    """A request stream whose unparsable messages raise InvalidArgumentError (for the
    servicers of ``api``, which map it), or abort the call (public ones map nothing)."""
    async for request in requests:
        if isinstance(request, Unparsable):
            if public:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
            raise InvalidArgumentError(request.reason)
        yield request


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates the bearer token, checks ``POLICY``, and exposes the principal."""

    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane

    async def _principal_for(self, token: str) -> Principal:
        cached = self._plane.credentials.get(token)
        if cached is not None:
            return cached

        def lookup() -> Principal:
            with self._plane.read() as session:
                return self._plane.authenticate(session, token)

        principal: Principal = await self._plane.run_db(lookup)
        self._plane.credentials.put(token, principal)
        return principal

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None:
            return handler
        if is_public(method):
            return _checked(handler, None, method)
        token = _bearer(details.invocation_metadata)
        if token is None:
            return _deny(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing credentials: pass `authorization: Bearer <token>` "
                "(CLI: --token or EDGEFLEET_TOKEN)",
                method,
            )
        try:
            principal = await self._principal_for(token)
        except EdgeFleetError as exc:
            return _deny(handler, grpc.StatusCode.UNAUTHENTICATED, str(exc), method)
        ok, reason = allowed(method, principal)
        if not ok:
            return _deny(handler, grpc.StatusCode.PERMISSION_DENIED, reason, method)
        return _checked(handler, principal, method)


def _deny(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str,
          method: str) -> Any:
    record(method.rsplit("/", 1)[-1], code.name)

    async def abort_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    return _rebuild(handler, abort_unary, abort_stream, method)


def _checked(handler: grpc.RpcMethodHandler, principal: Principal | None, method: str) -> Any:
    """``handler`` with unparsable requests refused, and ``current_principal()`` set to
    ``principal`` (None: a public method, which has no principal)."""
    inner = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    name = method.rsplit("/", 1)[-1]

    async def request_for(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if handler.request_streaming:
            return _parsed(request, context, public=principal is None)
        if isinstance(request, Unparsable):
            record(name, grpc.StatusCode.INVALID_ARGUMENT.name)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return request

    # grpc.aio serves every RPC in its own task, whose context is a copy: setting the variable
    # here cannot leak into another call, so there is nothing to reset.
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        request = await request_for(request, context)
        if principal is not None:
            _principal.set(principal)
        return await inner(request, context)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        request = await request_for(request, context)
        if principal is not None:
            _principal.set(principal)
        async for item in inner(request, context):
            yield item

    return _rebuild(handler, unary, stream, method)


def _rebuild(handler: grpc.RpcMethodHandler, unary: Any, stream: Any, method: str) -> Any:
    kw = {
        "request_deserializer": _parse_or_mark(handler.request_deserializer, method),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    return grpc.stream_stream_rpc_method_handler(stream, **kw)
