"""The load side of the benchmarks, run in its own process so it never shares a GIL with the
server being measured: ``run_driver(spec)`` starts ``python -m benchmarks._driver``, hands it a
JSON spec on stdin and returns the JSON it prints.

Specs (all clients send and receive raw bytes, so the client's work is the same whichever server
answers):
- ``unary``: ``threads`` closed-loop client threads (``benchmarks._loop``), each on its own
  channel and TCP connection (as separate devices would be), call ``method`` with a
  pre-serialized request for ``warmup_seconds`` and then ``seconds``; returns every measured
  latency in nanoseconds and the total number of calls made (warm-up included). Every response
  must equal ``expect`` byte for byte: a benchmark that quietly measured an error or a different
  answer would be worthless.
- ``stream``: downloads a server stream ``repeats`` times, counting bytes without parsing; with
  ``verify_sha256`` it first makes one untimed download that parses the chunks (``ArtifactChunk``
  or raw bytes) and checks the digest.
- ``file``: reads a file ``repeats`` times in ``chunk_bytes`` pieces.

Any failure exits non-zero with the reason on stderr, and ``run_driver`` raises it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from benchmarks._loop import closed_loop

REPO_ROOT = Path(__file__).resolve().parent.parent
# One TCP connection per channel: gRPC otherwise shares a connection between channels to the
# same target with the same arguments, which is not how a fleet of devices reaches a server.
_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


def run_driver(spec: dict[str, Any], timeout: float = 900.0) -> dict[str, Any]:
    """Run ``spec`` in a fresh ``python -m benchmarks._driver`` process; return its result."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._driver"],
        input=json.dumps(spec), capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load driver ({spec['kind']}) failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _metadata(pairs: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in pairs)


def _unary(spec: dict[str, Any]) -> dict[str, Any]:
    calls = [(base64.b64decode(c["request"]), _metadata(c["metadata"])) for c in spec["calls"]]
    expect = base64.b64decode(spec["expect"])
    channels = [grpc.insecure_channel(spec["target"], options=_CHANNEL_OPTIONS)
                for _ in range(int(spec["threads"]))]
    loops = []
    for i, channel in enumerate(channels):
        stub = channel.unary_unary(spec["method"])
        request, metadata = calls[i % len(calls)]

        def one(stub: Any = stub, request: bytes = request, metadata: Any = metadata) -> None:
            response = stub(request, metadata=metadata, timeout=30)
            if response != expect:
                raise ValueError(f"unexpected response {response!r}, wanted {expect!r}")

        one()   # connects this channel before the clock starts
        loops.append(one)
    try:
        result = closed_loop(loops, warmup=float(spec["warmup_seconds"]),
                             seconds=float(spec["seconds"]))
    finally:
        for channel in channels:
            channel.close()
    return {"calls_total": result.calls_total + len(loops), "latencies_ns": result.latencies_ns,
            "seconds": result.seconds}


def _verify_stream(call: Any, request: bytes, metadata: Any, spec: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    parse = None
    if spec["message"] == "artifact":
        from protos import edgefleet_pb2 as pb

        parse = pb.ArtifactChunk.FromString
    offset = 0
    for message in call(request, metadata=metadata, timeout=300):
        if parse is not None:
            chunk = parse(message)
            if chunk.offset != offset:
                raise ValueError(f"chunk at offset {chunk.offset}, expected {offset}")
            message = chunk.data
        digest.update(message)
        offset += len(message)
    if digest.hexdigest() != spec["verify_sha256"]:
        raise ValueError(f"streamed bytes hash to {digest.hexdigest()}, "
                         f"expected {spec['verify_sha256']}")
    return digest.hexdigest()


def _stream(spec: dict[str, Any]) -> dict[str, Any]:
    request = base64.b64decode(spec["request"])
    metadata = _metadata(spec["metadata"])
    with grpc.insecure_channel(spec["target"], options=_CHANNEL_OPTIONS) as channel:
        call = channel.unary_stream(spec["method"])
        verified = None
        if spec.get("verify_sha256"):
            verified = _verify_stream(call, request, metadata, spec)
        runs = []
        for _ in range(int(spec["repeats"])):
            received = messages = 0
            began = time.perf_counter_ns()
            for message in call(request, metadata=metadata, timeout=300):
                received += len(message)
                messages += 1
            runs.append({"bytes": received, "messages": messages,
                         "seconds": (time.perf_counter_ns() - began) / 1e9})
    return {"runs": runs, "verified_sha256": verified}


def _file(spec: dict[str, Any]) -> dict[str, Any]:
    chunk = int(spec["chunk_bytes"])
    runs = []
    for _ in range(int(spec["repeats"])):
        received = messages = 0
        began = time.perf_counter_ns()
        with open(spec["path"], "rb") as f:
            while data := f.read(chunk):
                received += len(data)
                messages += 1
        runs.append({"bytes": received, "messages": messages,
                     "seconds": (time.perf_counter_ns() - began) / 1e9})
    return {"runs": runs}


_KINDS = {"unary": _unary, "stream": _stream, "file": _file}


def main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        result = _KINDS[spec["kind"]](spec)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
