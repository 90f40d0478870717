"""A real control plane (``serve_async``) on a loopback port, in a thread of the test process.

Runs the embedded shape: the database under test (SQLite or PostgreSQL), the filesystem store,
and Celery's worker machinery in-process on ``memory://``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from controlplane.config import Settings
from controlplane.server import serve_async
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.support.net import free_port


@dataclass
class RunningServer:
    addr: str
    settings: Settings
    admin_token: str
    channel: grpc.Channel

    def admin(self) -> pb_grpc.AdminServiceStub:
        return pb_grpc.AdminServiceStub(self.channel)

    def device(self) -> pb_grpc.DeviceServiceStub:
        return pb_grpc.DeviceServiceStub(self.channel)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def start_server(settings: Settings) -> tuple[threading.Thread, Any, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        started = asyncio.Event()
        task = asyncio.create_task(serve_async(settings, ready=started, stop=stop))
        await started.wait()
        ready.set()
        await task

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surface start-up failures to the test
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("server did not start")
    if "error" in holder:
        raise holder["error"]
    return thread, holder["stop"], loop


@pytest.fixture
def server_settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for a server on ``db_url`` with small limits so the bad-input tests stay cheap.

    The optimize pipeline makes only the reference variant here (measured in every
    interpreter, signed with golden samples): these tests are about the API around it; the
    pipeline's other kinds run in ``tests/optimize`` and ``tests/e2e``.
    """
    return Settings(
        variant_kinds=("float32",),
        data_dir=tmp_path / "server",
        listen=f"127.0.0.1:{free_port()}",
        database_url=None if db_url.startswith("sqlite") else db_url,
        max_model_bytes=2 * 1024 * 1024,
        chunk_bytes=64 * 1024,
        rollout_tick_seconds=0.5,
        measure_runs=3,
        poll_interval_seconds=1,
        last_seen_flush_seconds=0.2,
        shutdown_grace_seconds=0.3,
    )


@pytest.fixture
def server(server_settings: Settings, db_url: str) -> Iterator[RunningServer]:
    if db_url.startswith("sqlite"):
        # The embedded default keeps its SQLite file in the data dir; start from the migrated copy.
        server_settings.data_dir.mkdir(parents=True)
        Path(db_url.split("///", 1)[1]).rename(server_settings.data_dir / "edgefleet.db")
    thread, stop, loop = start_server(server_settings)
    token = server_settings.admin_token_path.read_text().strip()
    channel = grpc.insecure_channel(server_settings.listen)
    try:
        yield RunningServer(server_settings.listen, server_settings, token, channel)
    finally:
        channel.close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
