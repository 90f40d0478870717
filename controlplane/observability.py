"""Prometheus metrics of the control plane, served by ``edgefleet server --metrics-port N``.

Counters are process-wide (one server per process). The endpoint is plain HTTP on the given
port; bind it to a private interface, since it tells how busy the fleet is.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

from controlplane.errors import ConfigurationError

RPCS = Counter(
    "edgefleet_rpcs_total", "gRPC calls answered, by method and status code", ["method", "code"]
)
RPC_SECONDS = Histogram(
    "edgefleet_rpc_seconds", "Time to answer a gRPC call (unary, or until the stream ended)",
    ["method"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def record(method: str, code: str, seconds: float | None = None) -> None:
    RPCS.labels(method=method, code=code).inc()
    if seconds is not None:
        RPC_SECONDS.labels(method=method).observe(seconds)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Start the /metrics endpoint in a daemon thread; ConfigurationError when the port is taken."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): choose another "
            f"--metrics-port"
        ) from exc
