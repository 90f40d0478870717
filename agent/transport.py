"""gRPC plumbing for the agent's calls: channels with bounded messages (to the control plane
and to the local endpoint), auth metadata, and the one rule that turns a ``grpc.RpcError`` from
the control plane into an ``AgentTransportError``.

A call that failed with a code in ``TRANSIENT_CODES`` is worth retrying with backoff; any other
code means the server refused the request and retrying the same request will not help.
"""

from __future__ import annotations

import grpc

from agent.errors import AgentTransportError
from agent.settings import AgentSettings

TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


def message_limits(settings: AgentSettings) -> list[tuple[str, int]]:
    """gRPC options bounding messages both ways (an artifact chunk, a tensor) by the settings."""
    limit = settings.grpc_max_message_bytes
    return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]


def open_channel(
    address: str, settings: AgentSettings, *, tls_ca_pem: bytes | None = None
) -> grpc.Channel:
    """A channel to ``address`` with the settings' message limits: TLS verified against
    ``tls_ca_pem`` when given (the control plane), plaintext otherwise (the local endpoint, or a
    control plane reached over a network the operator trusts)."""
    if tls_ca_pem is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=tls_ca_pem)
        return grpc.secure_channel(address, creds, options=message_limits(settings))
    return grpc.insecure_channel(address, options=message_limits(settings))


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token`` the way the server's interceptor expects it."""
    return (("authorization", f"Bearer {token}"),)


def rpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def is_transient(exc: grpc.RpcError) -> bool:
    return rpc_code(exc) in TRANSIENT_CODES


def transport_error(exc: grpc.RpcError, action: str) -> AgentTransportError:
    """Wrap ``exc`` with what the agent was doing; keeps the status code name."""
    code = rpc_code(exc)
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    name = code.name if code is not None else None
    return AgentTransportError(f"{action} failed: {name}: {details}", code=name)
