"""TLS between the CLI/agents and the control plane (``--tls-cert/--tls-key``, ``--tls-ca``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.daemon import Agent
from controlplane.config import Settings
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.api.conftest import bearer, start_server
from tests.api.helpers import wait_for
from tests.support.net import free_port


def _cert(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    issuer: x509.Name | None = None,
    *,
    ca: bool,
) -> tuple[bytes, bytes, ec.EllipticCurvePrivateKey, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, key, name


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    ca_pem, _, ca_key, ca_name = _cert("edgefleet test CA", ca=True)
    cert_pem, key_pem, _, _ = _cert("127.0.0.1", ca_key, ca_name, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "server.pem").write_bytes(cert_pem)
    (tmp_path / "server.key").write_bytes(key_pem)
    settings = Settings(
        data_dir=tmp_path / "server",
        listen=f"127.0.0.1:{free_port()}",
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
        shutdown_grace_seconds=0.2,
        poll_interval_seconds=1,
    )
    thread, stop, loop = start_server(settings)
    try:
        yield settings, tmp_path / "ca.pem"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def _edgefleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "edgefleet"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_and_agent_talk_tls_and_plaintext_is_refused(
    tls_server: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, ca = tls_server
    token = settings.admin_token_path.read_text().strip()
    addr = settings.listen
    ok = _edgefleet(
        "enroll-token",
        "create",
        "--server",
        addr,
        "--token",
        token,
        "--tls-ca",
        str(ca),
        "-o",
        "json",
    )
    assert ok.returncode == 0, ok.stderr
    enroll_token = json.loads(ok.stdout)["token"]

    # Input tried: a plaintext client against the TLS port.
    with grpc.insecure_channel(addr) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.AdminServiceStub(ch).ListModels(
            pb.ListModelsRequest(), metadata=bearer(token), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # Input tried: the CLI trusting a different CA (a man in the middle's view).
    other_ca, *_ = _cert("someone else", ca=True)
    (tmp_path / "other-ca.pem").write_bytes(other_ca)
    bad = _edgefleet(
        "model",
        "list",
        "--server",
        addr,
        "--token",
        token,
        "--tls-ca",
        str(tmp_path / "other-ca.pem"),
    )
    assert bad.returncode == 3, bad.stderr
    assert "check the CA" in bad.stderr
    # Input tried: the CLI without --tls-ca against the TLS port: told what is likely missing.
    plain = _edgefleet("model", "list", "--server", addr, "--token", token)
    assert plain.returncode == 3
    assert "pass --tls-ca" in plain.stderr
    assert "--tls-ca CA.pem" in ok.stderr  # the enrollment hint carries it too

    # An agent enrolls over TLS and keeps the CA for its next runs.
    agent = Agent(
        tmp_path / "agent",
        server=addr,
        enroll_token=enroll_token,
        trust_key_pem=settings.signing_public_key_path.read_bytes(),
        tls_ca_pem=ca.read_bytes(),
        serve="127.0.0.1:0",
    )
    agent.start()
    try:
        wait_for(
            "the agent to enroll", lambda: (tmp_path / "agent" / "credential.json").exists() or None
        )
    finally:
        agent.stop()
    assert (tmp_path / "agent" / "server-ca.pem").read_bytes() == ca.read_bytes()
    listed = _edgefleet(
        "device", "list", "--server", addr, "--token", token, "--tls-ca", str(ca), "-o", "json"
    )
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["devices"]) == 1


def test_a_plaintext_agent_at_a_tls_server_says_what_is_missing(
    tls_server: tuple[Settings, Path], tmp_path: Path
) -> None:
    """Input tried: an agent started without --tls-ca against a server that speaks only TLS."""
    settings, _ca = tls_server
    agent = Agent(
        tmp_path / "agent",
        server=settings.listen,
        enroll_token="efe_0123456789abcdef_whatever",
        trust_key_pem=settings.signing_public_key_path.read_bytes(),
        serve="127.0.0.1:0",
    )
    agent.start()
    try:
        error = wait_for("the agent to report the failed enrollment",
                         lambda: agent.status().last_error or None)
    finally:
        agent.stop()
    assert "UNAVAILABLE" in error and "--tls-ca" in error
    assert not (tmp_path / "agent" / "credential.json").exists()
