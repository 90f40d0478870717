"""``DownloadArtifact`` streams a device gives up on halfway: the server closes each file once the
chunk it was reading is done, never under that read."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import pytest

from controlplane import modelgen
from controlplane.registry.store import FilesystemArtifactStore
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push, wait_for, wait_ready


def open_handles(path: Path) -> int:
    """Descriptors of this process (the server runs in a thread of it) open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):   # closed while listed
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


def test_streams_cancelled_mid_download_leave_no_file_open_and_no_error(
        server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """Input tried: 20 downloads of a 14-chunk artifact, each cancelled after its first chunk
    (a device killed or cut off mid-download)."""
    model = modelgen.build_mobilenet(seed=1)
    push(server, "net", "1.0.0", model)
    wait_ready(server, "net", "1.0.0")
    device_id, token = enroll(server, name="d")
    server.admin().CreateRollout(pb.CreateRolloutRequest(model="net", version="1.0.0",
                                                         selector="*"),
                                 metadata=bearer(server.admin_token))

    def desired() -> pb.SyncResponse | None:
        r = server.device().Sync(pb.SyncRequest(known_sequence=0), metadata=bearer(token))
        return r if r.HasField("desired_state") else None

    sha = json.loads(wait_for("the desired state", desired).desired_state.payload)[
        "models"][0]["sha256"]
    path = FilesystemArtifactStore(server.settings.artifact_dir).path(sha)
    assert path.exists() and len(model) > 10 * server.settings.chunk_bytes
    with caplog.at_level(logging.ERROR):
        for _ in range(20):
            stream = server.device().DownloadArtifact(pb.DownloadRequest(sha256=sha),
                                                      metadata=bearer(token))
            first = next(stream)
            assert first.offset == 0 and first.total_size == len(model)
            stream.cancel()
        wait_for("every cancelled stream's file closed",
                 lambda: open_handles(path) == 0 or None, timeout=10)
    assert "already executing" not in caplog.text
    whole = server.device().DownloadArtifact(pb.DownloadRequest(sha256=sha),
                                             metadata=bearer(token))
    assert b"".join(c.data for c in whole) == model           # still served whole
    assert device_id
