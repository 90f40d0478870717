"""Servers that run on an asyncio loop in a thread of this process: the control plane and the
bare grpc.aio baselines the benchmarks compare it with.

The baselines do the least a gRPC server can do for the same traffic, in the same shape as the
control plane (grpc.aio, one loop in one thread of this process, the same message limits):
- ``bare_echo``: one unary method answering every request with a fixed response of the size the
  real method returns; no interceptor, no auth, no database.
- ``bare_stream``: one server-streaming method sending a file in chunks as raw bytes messages;
  no protobuf message, no auth, no database, no executor. With ``whole=True`` it reads the
  whole file into memory first: the control that shows a memory meter would catch buffering.

Invariant: ``AsyncServerThread.stop`` returns only after the coroutine ended, and re-raises what
it raised, so a benchmark never measures against a server that died quietly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc

Serve = Callable[[asyncio.Event, asyncio.Event], Coroutine[Any, Any, Any]]

ECHO_METHOD = "/bench.Bare/Echo"
STREAM_METHOD = "/bench.Bare/Stream"


class AsyncServerThread:
    """Runs ``serve(ready, stop)`` on a fresh event loop in a daemon thread."""

    def __init__(self, serve: Serve, *, name: str) -> None:
        self._serve = serve
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            ready = asyncio.Event()
            task = asyncio.create_task(self._serve(ready, self._stop))
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            self._ready.set()
            waiter.cancel()
            await task

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # handed to the caller by start()/stop()
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 60.0) -> AsyncServerThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self._thread.name} did not start within {timeout:g} s")
        if self._error is not None:
            raise RuntimeError(f"{self._thread.name} failed to start") from self._error
        return self

    def stop(self, timeout: float = 60.0) -> None:
        if not self._thread.is_alive() and self._stop is None:
            return   # never started
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"{self._thread.name} failed") from self._error


def _grpc_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]


async def _serve_handlers(
    handlers: dict[str, grpc.RpcMethodHandler],
    listen: str,
    max_message_bytes: int,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    server = grpc.aio.server(options=_grpc_options(max_message_bytes))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Bare", handlers),))
    if server.add_insecure_port(listen) == 0:
        raise RuntimeError(f"cannot listen on {listen}")
    await server.start()
    ready.set()
    await stop.wait()
    await server.stop(0)


def bare_echo(listen: str, response: bytes, *, max_message_bytes: int) -> AsyncServerThread:
    """A unary ``ECHO_METHOD`` on ``listen`` answering every request with ``response``."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return response

    handlers = {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    return AsyncServerThread(
        lambda ready, stop: _serve_handlers(handlers, listen, max_message_bytes, ready, stop),
        name="bare-echo",
    )


def bare_stream(listen: str, path: Path, *, chunk_bytes: int, max_message_bytes: int,
                whole: bool = False) -> AsyncServerThread:
    """A server-streaming ``STREAM_METHOD`` sending ``path`` in ``chunk_bytes`` raw messages.

    Reads on the event loop with plain blocking reads: the least work a server can do per chunk.
    ``whole`` reads the entire file before sending the first chunk.
    """

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        if whole:
            data = path.read_bytes()
            for i in range(0, len(data), chunk_bytes):
                yield data[i:i + chunk_bytes]
            return
        with path.open("rb") as f:
            while piece := f.read(chunk_bytes):
                yield piece

    handlers = {"Stream": grpc.unary_stream_rpc_method_handler(stream)}
    return AsyncServerThread(
        lambda ready, stop: _serve_handlers(handlers, listen, max_message_bytes, ready, stop),
        name="bare-stream",
    )
