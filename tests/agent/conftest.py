"""Fixtures for the agent tests: a trust key pair, small real models, a live DeviceService peer,
and agent settings with short intervals so the sync loop turns quickly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.settings import AgentSettings
from tests.agent.support import FakeControlPlane, RunningControlPlane, public_pem


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def trust_pem(signing_key: Ed25519PrivateKey) -> bytes:
    return public_pem(signing_key)


@pytest.fixture
def fast_settings() -> AgentSettings:
    """Intervals in tenths of a second; bounds otherwise as shipped."""
    return AgentSettings(
        poll_interval_seconds=0.1,
        backoff_min_seconds=0.05,
        backoff_max_seconds=0.2,
        rpc_timeout_seconds=5.0,
        metrics_window_seconds=0.2,
        shutdown_grace_seconds=2.0,
    )


@pytest.fixture
def control_plane(signing_key: Ed25519PrivateKey) -> Iterator[RunningControlPlane]:
    running = RunningControlPlane(FakeControlPlane(key=signing_key))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path is well under that.
    return tmp_path / "agent"
