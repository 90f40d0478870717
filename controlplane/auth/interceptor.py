"""The gRPC server interceptor that authenticates and authorises every call.

Invariant: no servicer code runs unless ``policy.allowed`` said yes for the caller's principal;
the servicer reads that principal with ``current_principal()``. Health and reflection are public.
Verified device credentials are cached (``auth.cache``) for ``Settings.auth_cache_seconds`` so
the device sync hot path needs no database read to authenticate; a device revoked on another
server is refused within that time. Operator tokens are checked against the database on every
call, so their revocation is immediate everywhere.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from controlplane.app import ControlPlane
from controlplane.auth.policy import Principal, allowed, is_public
from controlplane.errors import EdgeFleetError
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
        if handler is None or is_public(method):
            return handler
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
        return _with_principal(handler, principal)


def _deny(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str,
          method: str) -> Any:
    record(method.rsplit("/", 1)[-1], code.name)

    async def abort_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    return _rebuild(handler, abort_unary, abort_stream)


def _with_principal(handler: grpc.RpcMethodHandler, principal: Principal) -> Any:
    inner = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )

    # grpc.aio serves every RPC in its own task, whose context is a copy: setting the variable
    # here cannot leak into another call, so there is nothing to reset.
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        _principal.set(principal)
        return await inner(request, context)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        _principal.set(principal)
        async for item in inner(request, context):
            yield item

    return _rebuild(handler, unary, stream)


def _rebuild(handler: grpc.RpcMethodHandler, unary: Any, stream: Any) -> Any:
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    return grpc.stream_stream_rpc_method_handler(stream, **kw)
