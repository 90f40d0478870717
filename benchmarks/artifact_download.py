"""DeviceService.DownloadArtifact of a ~50 MiB artifact, against a bare file read and a bare
gRPC stream of the same bytes, on the same machine; plus the server's peak memory growth.

Setup (through the public API): an in-process control plane (embedded SQLite, default 1 MiB
chunks), a generated CNN whose fully connected layer makes it ``--mib`` MiB, pushed and
measured, one device enrolled, a rollout to it; the device's desired state names the artifact.

Measured, from a separate client process that counts the bytes it receives and keeps none:
- ``file``: reading the artifact's file from the store in 1 MiB chunks (page cache warm);
- ``bare gRPC``: a grpc.aio server in this process streaming the same file as raw 1 MiB
  messages (``benchmarks._servers.bare_stream``: no protobuf, auth, database or executor);
- ``DownloadArtifact``: the real method with the device's credential;
- ``whole-file gRPC`` (a control for the memory figure): the bare stream, but reading the whole
  file into memory before sending, which is what a buffering server would do.
Before the timed runs one download of each gRPC kind is parsed and its sha256 checked. Reported:
MiB/s (median over the runs) for each, the ratios, and how far this process's peak resident
memory rose during each gRPC download (a streaming server stays far below the artifact's size;
the control shows the meter sees a buffered artifact).

Run: ``python -m benchmarks.artifact_download [--mib N] [--rounds R] [--repeats K] [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._controlplane import ControlPlaneUnderTest, free_port
from benchmarks._driver import b64, run_driver
from benchmarks._memory import PeakRss
from benchmarks._report import MiB, print_table, ratio, write_results
from benchmarks._servers import STREAM_METHOD, bare_stream
from controlplane.modelgen import build_cnn
from controlplane.registry.store import FilesystemArtifactStore
from protos import edgefleet_pb2 as pb

NAME = "artifact_download"
DOWNLOAD_METHOD = "/edgefleet.v1.DeviceService/DownloadArtifact"
MODEL, VERSION = "bench-download", "1.0.0"
# build_cnn's default 28x28x1 input and 8 filters flatten to 14*14*8 features before the
# fully connected layer, whose float32 weights are nearly all of the file.
_FC_INPUTS = 14 * 14 * 8
FULL = {"mib": 50, "rounds": 3, "repeats": 3}
QUICK = {"mib": 8, "rounds": 1, "repeats": 2}
KINDS = ("file", "bare_grpc", "download_artifact", "whole_file_grpc")
GRPC_KINDS = KINDS[1:]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, help="artifact size in MiB (default 50)")
    p.add_argument("--rounds", type=int, help="rounds of every kind (default 3)")
    p.add_argument("--repeats", type=int, help="downloads per kind per round (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def model_of_size(mib: int) -> bytes:
    """A real generated CNN of about ``mib`` MiB."""
    return build_cnn(seed=3, classes=max(2, round(mib * MiB / 4 / _FC_INPUTS)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp, \
            ControlPlaneUnderTest(Path(tmp)) as cp:
        data = model_of_size(args.mib)
        cp.push_model(MODEL, VERSION, data)
        del data
        (device,) = cp.enroll(1, {"bench": NAME})
        cp.roll_out(MODEL, VERSION, f"bench={NAME}")
        assignment = cp.wait_assignment(device)
        sha256, size = assignment.ref.sha256, assignment.size
        path = FilesystemArtifactStore(cp.settings.artifact_dir).path(sha256)
        chunk = cp.settings.chunk_bytes
        bare_target = f"127.0.0.1:{free_port()}"
        whole_target = f"127.0.0.1:{free_port()}"
        limit = cp.settings.grpc_max_message_bytes
        bare = bare_stream(bare_target, path, chunk_bytes=chunk, max_message_bytes=limit).start()
        whole = bare_stream(whole_target, path, chunk_bytes=chunk, max_message_bytes=limit,
                            whole=True).start()
        request = pb.DownloadRequest(sha256=sha256, offset=0).SerializeToString()
        specs: dict[str, dict[str, Any]] = {
            "file": {"kind": "file", "path": str(path), "chunk_bytes": chunk},
            "bare_grpc": {"kind": "stream", "target": bare_target, "method": STREAM_METHOD,
                          "request": "", "metadata": [], "message": "raw"},
            "download_artifact": {
                "kind": "stream", "target": cp.address, "method": DOWNLOAD_METHOD,
                "request": b64(request), "metadata": [list(kv) for kv in device.metadata],
                "message": "artifact",
            },
            "whole_file_grpc": {"kind": "stream", "target": whole_target,
                                "method": STREAM_METHOD, "request": "", "metadata": [],
                                "message": "raw"},
        }
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        rss: dict[str, list[int]] = {k: [] for k in GRPC_KINDS}
        verified: dict[str, str] = {}
        try:
            for round_index in range(args.rounds):
                for kind in KINDS:
                    spec = {**specs[kind], "repeats": args.repeats}
                    if kind != "file" and round_index == 0:
                        spec["verify_sha256"] = sha256
                    with PeakRss() as peak:
                        result = run_driver(spec)
                    if kind in rss:
                        rss[kind].append(peak.growth)
                    if result.get("verified_sha256"):
                        verified[kind] = result["verified_sha256"]
                    for r in result["runs"]:
                        if r["bytes"] < size:
                            raise RuntimeError(f"{kind}: got {r['bytes']} of {size} bytes")
                    runs[kind] += result["runs"]
        finally:
            bare.stop()
            whole.stop()
        rss_method = peak.method
    mib_s = {k: [size / MiB / r["seconds"] for r in runs[k]] for k in KINDS}
    medians = {k: statistics.median(v) for k, v in mib_s.items()}
    return {
        "description": "DeviceService.DownloadArtifact vs a bare file read and a bare gRPC "
                       "stream of the same bytes",
        "config": {"artifact_bytes": size, "artifact_sha256": sha256, "chunk_bytes": chunk,
                   "rounds": args.rounds, "repeats": args.repeats,
                   "downloads_per_kind": args.rounds * args.repeats},
        "verified_sha256": verified,
        "throughput_mib_s": {
            k: {"median": round(medians[k], 1), "min": round(min(mib_s[k]), 1),
                "max": round(max(mib_s[k]), 1)} for k in KINDS
        },
        "ratios": {
            "download_artifact_over_bare_grpc": ratio(medians["download_artifact"],
                                                      medians["bare_grpc"]),
            "download_artifact_over_file": ratio(medians["download_artifact"], medians["file"]),
            "bare_grpc_over_file": ratio(medians["bare_grpc"], medians["file"]),
            "whole_file_grpc_over_bare_grpc": ratio(medians["whole_file_grpc"],
                                                    medians["bare_grpc"]),
        },
        "server_peak_rss_growth": {
            "method": rss_method,
            **{k: {"max_bytes": max(v), "max_mib": round(max(v) / MiB, 1),
                   "fraction_of_artifact": round(max(v) / size, 3)} for k, v in rss.items()},
        },
    }


def report(doc: dict[str, Any]) -> None:
    cfg, t, r, m = doc["config"], doc["throughput_mib_s"], doc["ratios"], \
        doc["server_peak_rss_growth"]
    print(f"Artifact download: {cfg['artifact_bytes'] / MiB:.1f} MiB artifact, "
          f"{cfg['chunk_bytes'] // 1024} KiB chunks, {cfg['downloads_per_kind']} downloads each "
          f"(sha256 checked: {', '.join(sorted(doc['verified_sha256'])) or 'none'})")
    labels = {"file": "file read (1 MiB chunks)", "bare_grpc": "bare gRPC stream",
              "download_artifact": "DownloadArtifact",
              "whole_file_grpc": "control: bare gRPC, whole file read first"}
    print_table("throughput, MiB/s", [
        ("", "median", "min", "max", "peak RSS growth"),
        *((labels[k], f"{t[k]['median']:.0f}", f"{t[k]['min']:.0f}", f"{t[k]['max']:.0f}",
           f"{m[k]['max_mib']:.1f} MiB" if k in m else "-") for k in KINDS),
    ])
    print_table("ratios", [
        ("", "value"),
        ("DownloadArtifact / bare gRPC", f"{r['download_artifact_over_bare_grpc']:.3f}"),
        ("DownloadArtifact / file read", f"{r['download_artifact_over_file']:.3f}"),
        ("bare gRPC / file read", f"{r['bare_grpc_over_file']:.3f}"),
    ])
    print(f"\nserver peak RSS growth during DownloadArtifact: "
          f"{m['download_artifact']['max_mib']:.1f} MiB = "
          f"{m['download_artifact']['fraction_of_artifact']:.1%} of the artifact ({m['method']})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    print(f"\nwritten to {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
