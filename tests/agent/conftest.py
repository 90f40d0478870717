"""Fixtures for the agent tests: a trust key pair (and its public half in a file outside the data
dir, as a device holds it), small real models, a live DeviceService peer, and agent settings
with short intervals so the sync loop turns quickly.

``EDGEFLEET_AGENT_TRUST_KEY`` is cleared for every agent test (and the CLI subprocesses they
start): a developer's own setting must not decide which key a test trusts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import Agent, trust_key
from agent.settings import AgentSettings
from tests.agent.support import FakeControlPlane, RunningControlPlane, public_pem


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def trust_pem(signing_key: Ed25519PrivateKey) -> bytes:
    return public_pem(signing_key)


@pytest.fixture(autouse=True)
def _no_trust_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(trust_key.ENV, raising=False)


@pytest.fixture
def trust_key_file(tmp_path: Path, trust_pem: bytes) -> Path:
    """The trust key as an operator installs it: outside the data dir, mode 0644."""
    path = tmp_path / "etc" / "trust-key.pub"
    path.parent.mkdir()
    path.write_bytes(trust_pem)
    path.chmod(0o644)
    return path


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


@pytest.fixture
def start_agent(data_dir, control_plane, trust_key_file, fast_settings
                ) -> Iterator[Callable[..., Agent]]:
    """Start an ``Agent`` on the test's data dir against the stand-in control plane (keyword
    arguments override its defaults); every agent started is stopped after the test."""
    agents: list[Agent] = []

    def start(**overrides: Any) -> Agent:
        kwargs: dict[str, Any] = {
            "server": control_plane.address, "enroll_token": "enroll-secret",
            "trust_key_path": trust_key_file, "settings": fast_settings,
            "labels": {"site": "lab"}, "name": "bench-1",
        }
        kwargs.update(overrides)
        agent = Agent(data_dir, **kwargs)
        agents.append(agent)
        agent.start()
        return agent

    yield start
    for agent in agents:
        agent.stop()
