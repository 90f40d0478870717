"""The watch thread against a real DeviceService peer: a pushed change is installed without
waiting for the poll, and a server without Watch (or one that drops it) leaves polling working."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.daemon import Agent
from agent.settings import AgentSettings
from tests.agent.support import RunningControlPlane, entry, mlp_artifact, wait_until


def _agent(data_dir: Path, control_plane: RunningControlPlane, trust_key_file: Path,
           settings: AgentSettings) -> Agent:
    return Agent(data_dir, server=control_plane.address, enroll_token="enroll-secret",
                 trust_key_path=trust_key_file, settings=settings, name="w")


def test_a_pushed_change_is_synced_at_once_not_at_the_next_poll(
    data_dir, control_plane, trust_key_file, fast_settings, signing_key, caplog,
) -> None:
    cp = control_plane.servicer
    cp.serve_watch = True
    # A poll an hour away: only the push can bring the change in this test's lifetime.
    settings = fast_settings.replace(poll_interval_seconds=3600.0, watch_reconnect_seconds=0.1)
    caplog.set_level(logging.INFO, logger="agent.watch")
    agent = _agent(data_dir, control_plane, trust_key_file, settings)
    agent.start()
    try:
        wait_until(lambda: cp.syncs and cp.watches, what="the first sync and a watch")
        syncs = len(cp.syncs)
        v1 = mlp_artifact(seed=0)
        cp.publish([entry(signing_key, v1, model="face")], (v1,))
        wait_until(lambda: cp.events_for("active"), what="the pushed model to become active")
        assert len(cp.syncs) == syncs + 1       # one Sync, the one the push asked for
        assert "the server announced desired state 1" in caplog.text
    finally:
        agent.stop()


def test_without_watch_on_the_server_the_agent_polls(
    data_dir, control_plane, trust_key_file, fast_settings, signing_key,
) -> None:
    cp = control_plane.servicer      # serve_watch False: Watch is UNIMPLEMENTED
    agent = _agent(data_dir, control_plane, trust_key_file, fast_settings)
    agent.start()
    try:
        v1 = mlp_artifact(seed=0)
        cp.publish([entry(signing_key, v1, model="face")], (v1,))
        wait_until(lambda: cp.events_for("active"), what="the polled model to become active")
        assert cp.watches == 0
    finally:
        agent.stop()


@pytest.mark.parametrize("field,value", [("watch_backoff_min_seconds", 0.0),
                                         ("watch_timeout_seconds", 0.0),
                                         ("watch_reconnect_seconds", -1.0)])
def test_watch_settings_are_checked(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        AgentSettings(**{field: value})
