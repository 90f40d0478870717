"""The push stream's building blocks: lazy chunked reads and the header-first message order."""

from __future__ import annotations

import hashlib
from pathlib import Path

from controlplane.cli.upload import PushStream, inspect_model_file, iter_file_chunks


def test_chunks_are_read_when_asked_for_not_up_front(tmp_path: Path) -> None:
    # Chunks above io's 8 KiB buffer, as real ones (1 MiB) are: no read-ahead blurs the test.
    size = 64 * 1024
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * size + b"b" * size)
    chunks = iter_file_chunks(path, chunk_bytes=size, limit=2 * size)
    assert next(chunks) == b"a" * size
    with path.open("r+b") as f:  # change the second half after the first chunk was read
        f.seek(size)
        f.write(b"c" * size)
    assert next(chunks) == b"c" * size  # so it was read only now


def test_chunks_stop_at_the_limit_even_if_the_file_grew(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x" * 100)
    assert [len(c) for c in iter_file_chunks(path, chunk_bytes=30, limit=70)] == [30, 30, 10]


def test_push_stream_is_header_then_chunks_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    data = bytes(range(256)) * 40
    path.write_bytes(data)
    model = inspect_model_file(path, chunk_bytes=1000)
    assert (model.size, model.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    advanced: list[int] = []
    messages = list(PushStream(model, name="m", version="1", calibration=b"npz",
                               chunk_bytes=4096, on_chunk=advanced.append))
    header = messages[0].header
    assert (header.name, header.version, header.size, header.sha256,
            header.calibration_size) == ("m", "1", len(data), model.sha256, 3)
    assert messages[1].calibration_chunk == b"npz"
    assert all(m.WhichOneof("part") == "chunk" for m in messages[2:])
    assert b"".join(m.chunk for m in messages[2:]) == data
    assert advanced == [4096, 4096, 2048]
