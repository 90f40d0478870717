"""Audit finding L7: the root of trust does not live beside what it protects. The trust key is read
at every start from a configured path outside the data dir, never from the data dir, and only
from a file nobody but its owner may change. Real agents against a real DeviceService peer."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import NoModelLoadedError, trust_key
from agent.daemon import Agent
from agent.errors import ConfigurationError
from agent.refs import ModelRef
from agent.store import ActiveModel, AgentStore, StoredState
from agent.trust import Signed, nested_signed
from tests.agent.support import (
    MLP_INPUT,
    MLP_SHAPE,
    desired_state_doc,
    entry,
    mlp_artifact,
    public_pem,
    sign,
    wait_until,
)

X = np.zeros(MLP_SHAPE, np.float32)


@pytest.fixture
def make_agent(data_dir, control_plane, fast_settings) -> Iterator[Callable[..., Agent]]:
    """Agents on ``data_dir`` against the peer (not started: a test may expect start to fail)."""
    agents: list[Agent] = []

    def make(**overrides: Any) -> Agent:
        kwargs: dict[str, Any] = {"server": control_plane.address,
                                  "enroll_token": "enroll-secret", "settings": fast_settings}
        kwargs.update(overrides)
        agent = Agent(data_dir, **kwargs)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def no_default_key(monkeypatch, tmp_path) -> Path:
    """A device where nothing is installed at the default path (whatever this machine holds)."""
    missing = tmp_path / "no-etc" / "trust-key.pub"
    monkeypatch.setattr(trust_key, "DEFAULT_PATH", missing)
    return missing


def serve_v1(make_agent, control_plane, signing_key, trust_key_file) -> Any:
    """A first run that enrolls and serves face v1, then stops; returns v1."""
    v1 = mlp_artifact(seed=0)
    control_plane.servicer.publish([entry(signing_key, v1, model="face")], (v1,))
    first = make_agent(trust_key_path=trust_key_file)
    first.start()
    wait_until(lambda: "face" in first.models.snapshot(), what="v1 to serve")
    first.stop()
    return v1


def test_the_trust_key_comes_from_the_flag_then_the_environment_then_the_default():
    """Inputs tried: a --trust-key path with the variable set; the variable alone; neither."""
    env = {trust_key.ENV: "/opt/keys/cp.pub"}
    assert trust_key.locate("/srv/flag.pub", env) == trust_key.TrustKeySource(
        Path("/srv/flag.pub"), "--trust-key")
    assert trust_key.locate(None, env) == trust_key.TrustKeySource(Path("/opt/keys/cp.pub"),
                                                                   trust_key.ENV)
    assert trust_key.locate(None, {}) == trust_key.TrustKeySource(
        Path("/etc/edgefleet/trust-key.pub"), "default")
    assert trust_key.locate(None, {trust_key.ENV: ""}).origin == "default"


def test_a_trust_key_planted_in_the_data_dir_is_never_trusted(
        make_agent, control_plane, signing_key, trust_key_file, data_dir, no_default_key,
        caplog):
    """Input tried: an attacker who can write the data dir plants their public key at
    DATA_DIR/trust-key.pub (where earlier versions kept the key) and a desired state of
    sequence 99 signed by it, naming their model "face 6.6.6", active, its artifact on disk.
    Restarted without --trust-key (nothing at the default path), the agent refuses to start;
    restarted with the real key, it refuses the planted state, serves nothing until the control
    plane's own desired state arrives, and never serves the attacker's model."""
    v1 = serve_v1(make_agent, control_plane, signing_key, trust_key_file)
    control_plane.stop()
    cp = control_plane.servicer
    attacker, evil = Ed25519PrivateKey.generate(), mlp_artifact(seed=5)
    (data_dir / trust_key.LEGACY_NAME).write_bytes(public_pem(attacker))
    planted_entry = entry(attacker, evil, model="face", version="6.6.6")
    planted = sign(attacker, desired_state_doc(cp.device_id, 99, [planted_entry]))
    store = AgentStore(data_dir)
    store.artifact_path(evil.sha256).write_bytes(evil.data)
    store.write_state(StoredState(
        desired_state=Signed.of(planted),
        active=(ActiveModel(ModelRef("face", "6.6.6", "float32", evil.sha256),
                            nested_signed(planted_entry["manifest"])),),
    ))

    with caplog.at_level(logging.WARNING, logger="agent.trust_key"), \
            pytest.raises(ConfigurationError, match=r"no trust key at .*--trust-key"):
        make_agent().start()
    assert f"ignoring {data_dir / trust_key.LEGACY_NAME}" in caplog.text

    agent = make_agent(trust_key_path=trust_key_file)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="agent.restore"):
        agent.start()
    status = agent.status()
    assert status.desired_sequence == 0 and list(status.models) == []
    # The refusal is in the log; last_error may already show the sync's "connection refused"
    # (the control plane is down, and a transport error wins until the next sync).
    refused = [r.getMessage() for r in caplog.records if r.name == "agent.restore"]
    assert any("stored desired state was refused" in m and "signature does not verify" in m
               for m in refused), refused
    with pytest.raises(NoModelLoadedError):
        agent.predict(None, {MLP_INPUT: X})

    control_plane.restart()
    wait_until(lambda: agent.status().desired_sequence == 1, what="the real desired state")
    live = wait_until(lambda: agent.models.snapshot().get("face"), what="v1 again")
    assert live.ref.sha256 == v1.sha256
    assert not any(e.ref.sha256 == evil.sha256 and e.state == "active" for e in cp.events)
    assert not store.artifact_path(evil.sha256).exists()   # pruned: nothing refers to it
    assert (data_dir / trust_key.LEGACY_NAME).read_bytes() == public_pem(attacker)  # untouched


@pytest.mark.parametrize("where", ["in the data dir", "a link outside pointing into it",
                                   "a link inside pointing out"])
def test_a_trust_key_inside_the_data_dir_is_refused(make_agent, trust_pem, trust_key_file,
                                                    data_dir, tmp_path, where):
    """Inputs tried: the real key as DATA_DIR/keys/cp.pub; a symlink outside the data dir to a
    key inside it; a symlink inside the data dir to the key outside (the link is what whoever
    writes the data dir can swap)."""
    (data_dir / "keys").mkdir(parents=True)
    inside = data_dir / "keys" / "cp.pub"
    if where == "in the data dir":
        inside.write_bytes(trust_pem)
        path = inside
    elif where == "a link outside pointing into it":
        inside.write_bytes(trust_pem)
        path = tmp_path / "cp.pub"
        path.symlink_to(inside)
    else:
        inside.symlink_to(trust_key_file)
        path = inside
    with pytest.raises(ConfigurationError, match="inside the data dir") as caught:
        make_agent(trust_key_path=path).start()
    assert "--trust-key" in str(caught.value)


@pytest.mark.parametrize("mode,who", [(0o664, "its group"), (0o646, "others"),
                                      (0o666, "its group and others")])
def test_a_group_writable_trust_key_is_refused(make_agent, trust_key_file, mode, who):
    """Inputs tried: the real key outside the data dir with modes 0664, 0646 and 0666."""
    trust_key_file.chmod(mode)
    with pytest.raises(ConfigurationError, match=f"writable by {who} ") as caught:
        make_agent(trust_key_path=trust_key_file).start()
    assert f"{mode:04o}" in str(caught.value) and "chmod go-w" in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o444, 0o600])
def test_a_trust_key_only_its_owner_may_write_is_read(trust_key_file, data_dir, signing_key,
                                                      mode):
    """Inputs tried: the real key with modes 0644, 0444 and 0600."""
    trust_key_file.chmod(mode)
    key = trust_key.read_trust_key(trust_key.locate(trust_key_file), data_dir)
    assert key.public_bytes_raw() == signing_key.public_key().public_bytes_raw()


def test_a_fifo_at_the_trust_key_path_is_refused_without_hanging(tmp_path, data_dir):
    """Input tried: a named pipe where the key should be (opening it for reading would block)."""
    fifo = tmp_path / "trust-key.pub"
    os.mkfifo(fifo)
    with pytest.raises(ConfigurationError, match="not a regular file"):
        trust_key.read_trust_key(trust_key.locate(fifo), data_dir)


def test_a_trust_key_that_is_not_a_key_names_the_file(tmp_path, data_dir):
    """Input tried: a file holding a certificate-shaped text that is no ed25519 public key."""
    bogus = tmp_path / "cp.pub"
    bogus.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    bogus.chmod(0o644)
    with pytest.raises(ConfigurationError, match=re.escape(f"{bogus} (--trust-key): the trust")):
        trust_key.read_trust_key(trust_key.locate(bogus), data_dir)


def test_stored_state_is_reverified_against_the_configured_key_at_start(
        make_agent, control_plane, signing_key, trust_key_file, data_dir, tmp_path):
    """Input tried: a device that served v1 under the real key, restarted (server down) with
    --trust-key naming another key, then restarted again with the real one. The stored state is
    checked against the key configured for that start: refused under the other key (nothing
    served), served again under the real one."""
    v1 = serve_v1(make_agent, control_plane, signing_key, trust_key_file)
    control_plane.stop()
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    other.chmod(0o644)

    wrong = make_agent(trust_key_path=other)
    wrong.start()
    status = wrong.status()
    assert status.desired_sequence == 0 and list(status.models) == []
    assert "stored desired state was refused" in status.last_error
    with pytest.raises(NoModelLoadedError):
        wrong.predict(None, {MLP_INPUT: X})
    wrong.stop()

    right = make_agent(trust_key_path=trust_key_file)
    right.start()
    assert right.predict(None, {MLP_INPUT: X}).ref.sha256 == v1.sha256
    assert right.status().desired_sequence == 1


def test_the_key_given_as_bytes_is_never_written_to_the_data_dir(
        make_agent, control_plane, signing_key, trust_pem, data_dir):
    """Input tried: an embedding program passing the key as bytes (``trust_key_pem``)."""
    v1 = mlp_artifact(seed=0)
    control_plane.servicer.publish([entry(signing_key, v1, model="face")], (v1,))
    agent = make_agent(trust_key_pem=trust_pem)
    agent.start()
    wait_until(lambda: "face" in agent.models.snapshot(), what="v1 to serve")
    assert not (data_dir / trust_key.LEGACY_NAME).exists()
    with pytest.raises(ConfigurationError, match="not both"):
        Agent(data_dir, trust_key_pem=trust_pem, trust_key_path="/etc/edgefleet/x.pub")
