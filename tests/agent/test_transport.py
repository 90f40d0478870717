"""agent.transport.low_latency_grpc: sets gRPC's poller choice unless the environment has one."""

from __future__ import annotations

import os

from agent.transport import LOW_LATENCY_GRPC_EXPERIMENTS, low_latency_grpc


def test_low_latency_grpc_sets_the_experiments_when_the_environment_has_none(monkeypatch):
    monkeypatch.delenv("GRPC_EXPERIMENTS", raising=False)
    assert low_latency_grpc() is True
    assert os.environ["GRPC_EXPERIMENTS"] == LOW_LATENCY_GRPC_EXPERIMENTS


def test_low_latency_grpc_never_overrides_what_the_operator_set(monkeypatch):
    monkeypatch.setenv("GRPC_EXPERIMENTS", "")   # even empty: the operator chose gRPC's default
    assert low_latency_grpc() is False
    assert os.environ["GRPC_EXPERIMENTS"] == ""


def test_the_cli_called_with_arguments_leaves_the_callers_grpc_alone(monkeypatch, capsys):
    """Input tried: ``agent.cli.main([...])`` from a process (this test run) that did not set
    GRPC_EXPERIMENTS: it stays unset, so the caller's later forks behave as before (seen: an
    initdb started after in-process CLI calls died with SIGSEGV in gRPC's fork handler)."""
    from agent.cli import main

    monkeypatch.delenv("GRPC_EXPERIMENTS", raising=False)
    assert main(["status", "--endpoint", "unix:///nonexistent.sock", "-o", "json"]) != 0
    assert "GRPC_EXPERIMENTS" not in os.environ
