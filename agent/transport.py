"""gRPC plumbing for the agent's calls: channels with bounded messages (to the control plane
and to the local endpoint), auth metadata, and the one rule that turns a ``grpc.RpcError`` from
the control plane into an ``AgentTransportError``.

A call that failed with a code in ``TRANSIENT_CODES`` is worth retrying with backoff; any other
code means the server refused the request and retrying the same request will not help.

``low_latency_grpc()`` is the one process-wide choice here: gRPC core's EventEngine client and
listener (the default since grpcio 1.6x) do every socket read and write on threads of their own
and hand the result to the Python thread over a completion queue, two more thread switches per
unary call than the older poller, which does the I/O in the thread that waits for it. For the
local endpoint's small calls that is most of their cost (benchmarks/README.md, agent_predict).
"""

from __future__ import annotations

import os

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


#: GRPC_EXPERIMENTS value that turns the EventEngine client and listener off (see above).
LOW_LATENCY_GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def low_latency_grpc() -> bool:
    """Ask gRPC core for the poller that does socket I/O in the waiting thread, process-wide.

    Only has an effect before the process's first gRPC channel or server (the variable is read
    once, when gRPC core starts), and never overrides a ``GRPC_EXPERIMENTS`` the environment
    already sets: returns False then, True when it set it. ``edgefleet-agent`` calls it first
    thing; an application that embeds ``InferenceClient`` may call it at its own start.
    """
    if "GRPC_EXPERIMENTS" in os.environ:
        return False
    os.environ["GRPC_EXPERIMENTS"] = LOW_LATENCY_GRPC_EXPERIMENTS
    return True


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
