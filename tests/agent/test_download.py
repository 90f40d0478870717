"""Resumable download from a real DeviceService peer: resume, caps, refusal of altered bytes."""

from __future__ import annotations

import grpc
import pytest

from agent.download import download_artifact
from agent.errors import AgentTransportError, ArtifactMismatchError
from agent.store import AgentStore
from agent.transport import bearer, open_channel
from protos import edgefleet_pb2_grpc as pb_grpc
from tests.agent.support import manifest_doc, mlp_artifact


@pytest.fixture
def store(data_dir):
    s = AgentStore(data_dir)
    s.ensure()
    return s


@pytest.fixture
def stub(control_plane, fast_settings):
    channel = open_channel(control_plane.address, fast_settings)
    yield pb_grpc.DeviceServiceStub(channel)
    channel.close()


@pytest.fixture
def artifact(control_plane):
    a = mlp_artifact()
    control_plane.servicer.artifacts[a.sha256] = a.data
    return a


def fetch(stub, store, manifest, settings, token="device-secret"):
    return download_artifact(stub, store, manifest, settings=settings, metadata=bearer(token))


def test_download_resumes_from_the_part_file_after_a_mid_stream_interruption(
        control_plane, stub, store, artifact, fast_settings):
    servicer = control_plane.servicer
    servicer.interrupt_after = 2 * servicer.chunk_size
    assert artifact.size > 3 * servicer.chunk_size   # the cut is really mid-stream
    path = fetch(stub, store, manifest_doc(artifact), fast_settings)
    assert path.read_bytes() == artifact.data
    assert servicer.download_requests == [(artifact.sha256, 0),
                                          (artifact.sha256, 2 * servicer.chunk_size)]
    assert not store.part_path(artifact.sha256).exists()


def test_download_resumes_a_part_file_left_by_an_earlier_run(control_plane, stub, store, artifact,
                                                             fast_settings):
    store.part_path(artifact.sha256).write_bytes(artifact.data[:700])
    assert fetch(stub, store, manifest_doc(artifact), fast_settings).read_bytes() == artifact.data
    assert control_plane.servicer.download_requests == [(artifact.sha256, 700)]


def test_a_damaged_part_file_from_an_earlier_run_is_replaced_by_one_whole_download(
        control_plane, stub, store, artifact, fast_settings):
    """Input tried: a part file left by a crashed run with one flipped byte in it. The resumed
    artifact does not verify; the agent downloads it whole once more instead of failing."""
    damaged = bytearray(artifact.data[:700])
    damaged[10] ^= 0xFF
    store.part_path(artifact.sha256).write_bytes(bytes(damaged))
    assert fetch(stub, store, manifest_doc(artifact), fast_settings).read_bytes() == artifact.data
    assert control_plane.servicer.download_requests == [(artifact.sha256, 700),
                                                        (artifact.sha256, 0)]


def test_an_artifact_altered_in_transit_after_a_resume_is_fetched_twice_then_refused(
        control_plane, stub, store, artifact, fast_settings):
    """Input tried: a server that keeps sending altered bytes, with a part file on disk: the
    fresh download is the verdict; it fails, nothing is installed, no third request is made."""
    store.part_path(artifact.sha256).write_bytes(artifact.data[:700])
    altered = bytearray(artifact.data)
    altered[-1] ^= 0xFF
    control_plane.servicer.altered[artifact.sha256] = bytes(altered)
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        fetch(stub, store, manifest_doc(artifact), fast_settings)
    assert [offset for _, offset in control_plane.servicer.download_requests] == [700, 0]
    assert not store.part_path(artifact.sha256).exists()
    assert not store.artifact_path(artifact.sha256).exists()


def test_whole_artifact_in_one_chunk_is_one_request_and_no_retry(control_plane, stub, store,
                                                                  artifact, fast_settings, caplog):
    control_plane.servicer.chunk_size = artifact.size
    caplog.set_level("INFO", logger="agent.download")
    assert fetch(stub, store, manifest_doc(artifact), fast_settings).read_bytes() == artifact.data
    assert control_plane.servicer.download_requests == [(artifact.sha256, 0)]
    assert not [r for r in caplog.records if "interrupted" in r.getMessage()]


def test_verified_artifact_already_on_disk_is_not_downloaded_again(control_plane, stub, store,
                                                                   artifact, fast_settings):
    fetch(stub, store, manifest_doc(artifact), fast_settings)
    fetch(stub, store, manifest_doc(artifact), fast_settings)
    assert len(control_plane.servicer.download_requests) == 1


def test_altered_artifact_is_refused_and_its_part_file_deleted(control_plane, stub, store,
                                                               artifact, fast_settings):
    """Input tried: byte 100 of the artifact flipped in transit (same length, wrong sha256)."""
    altered = bytearray(artifact.data)
    altered[100] ^= 0xFF
    control_plane.servicer.altered[artifact.sha256] = bytes(altered)
    with pytest.raises(ArtifactMismatchError, match="sha256"):
        fetch(stub, store, manifest_doc(artifact), fast_settings)
    assert not store.part_path(artifact.sha256).exists()
    assert not store.artifact_path(artifact.sha256).exists()


def test_server_sending_more_than_the_manifest_size_is_refused(control_plane, stub, store,
                                                               artifact, fast_settings):
    """Input tried: the artifact followed by ten extra bytes in transit."""
    control_plane.servicer.altered[artifact.sha256] = artifact.data + b"\0" * 10
    with pytest.raises(ArtifactMismatchError, match="announces"):
        fetch(stub, store, manifest_doc(artifact), fast_settings)
    assert not store.part_path(artifact.sha256).exists()


def test_manifest_larger_than_max_artifact_bytes_is_refused_before_downloading(
        control_plane, stub, store, artifact, fast_settings):
    """Input tried: a signed manifest one byte over the agent's max_artifact_bytes."""
    with pytest.raises(ArtifactMismatchError, match="max_artifact_bytes"):
        fetch(stub, store, manifest_doc(artifact),
              fast_settings.replace(max_artifact_bytes=artifact.size - 1))
    assert control_plane.servicer.download_requests == []


def test_refused_credential_is_a_transport_error_without_retries(control_plane, stub, store,
                                                                 artifact, fast_settings):
    """Input tried: a device token the server does not know ("wrong")."""
    with pytest.raises(AgentTransportError) as info:
        fetch(stub, store, manifest_doc(artifact), fast_settings, token="wrong")
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED.name


def test_unreachable_server_gives_up_after_the_retry_budget(store, fast_settings):
    from tests.support.net import free_port

    channel = open_channel(f"127.0.0.1:{free_port()}", fast_settings)
    try:
        with pytest.raises(AgentTransportError) as info:
            fetch(pb_grpc.DeviceServiceStub(channel), store, manifest_doc(mlp_artifact()),
                  fast_settings.replace(chunk_retries=2))
    finally:
        channel.close()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE.name
