"""The floor of a local unary gRPC call: a bare echo in a process of its own, on a unix socket.

Same shape as the agent's local endpoint (``agent.server``): a sync ``grpc.server`` with a
thread pool of ``local_server_workers``, the settings' message limits, and the same gRPC poller
choice (``agent.transport.low_latency_grpc``, as ``edgefleet-agent`` makes it); one unary method
answering every request with fixed bytes of the size the agent's response has. No protobuf
message, no checks, no model, no metrics: what is left of a call is gRPC's own.

``python -m benchmarks._echo_process SOCKET RESPONSE_BYTES`` prints ``ready`` once it serves
and runs until SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent import futures
from pathlib import Path

from agent.settings import AgentSettings
from agent.transport import low_latency_grpc, message_limits
from benchmarks._report import REPO_ROOT

METHOD = "/bench.Bare/Echo"


class EchoProcess:
    """The echo server process on ``socket``; ``stop()`` (or the ``with`` block) ends it."""

    def __init__(self, socket: Path, response_bytes: int) -> None:
        self.endpoint = f"unix://{socket}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._echo_process", str(socket), str(response_bytes)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            self._proc.kill()
            raise RuntimeError("the echo process did not start")

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)

    def __enter__(self) -> EchoProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    low_latency_grpc()   # before the server exists, as edgefleet-agent does
    import grpc

    socket, response = Path(argv[0]), b"\0" * int(argv[1])
    settings = AgentSettings()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.local_server_workers),
                         options=message_limits(settings))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: response)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Bare", {"Echo": handler}),))
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    print("ready", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
