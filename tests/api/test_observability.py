"""``edgefleet server --metrics-port``: Prometheus counters of answered and refused calls."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import grpc
import pytest

from controlplane.config import Settings
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.api.conftest import bearer, start_server
from tests.support.net import free_port


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_endpoint_counts_calls_by_outcome(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path, listen=f"127.0.0.1:{free_port()}", metrics_port=port,
                        shutdown_grace_seconds=0.2)
    thread, stop, loop = start_server(settings)
    try:
        token = settings.admin_token_path.read_text().strip()
        with grpc.insecure_channel(settings.listen) as ch:
            admin = pb_grpc.AdminServiceStub(ch)
            admin.ListModels(pb.ListModelsRequest(), metadata=bearer(token))
            with pytest.raises(grpc.RpcError):
                admin.ListModels(pb.ListModelsRequest())
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        ok = 'edgefleet_rpcs_total{code="OK",method="ListModels"}'
        denied = 'edgefleet_rpcs_total{code="UNAUTHENTICATED",method="ListModels"}'
        assert _value(text, ok) >= 1
        assert _value(text, denied) >= 1
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
