"""Push latency: a desired-state change (its COMMIT) to a device's receipt of the Watch event.

Setup: a scratch database on ``--db`` (PostgreSQL), Redis on ``--redis``; replica A is a control
plane in this process (``serve_async``), replica B an ``edgefleet server`` process of its own,
both on that database and Redis, one data dir. Two devices enroll through A; device A holds a
Watch stream on replica A, device B on replica B (each a raw gRPC stream, as the agent's watch
thread holds it, in a thread of this process). Then ``--rounds`` times, this process does what a
Celery worker does: ``fleet.publish_desired_state`` for one device in a transaction, the clock
read just before its COMMIT; the figure is the time until that device's stream delivered the
event with the new sequence.

- one replica: device A, the change made in A's process (delivered in-process, at the commit);
- two replicas: device B, the change made in A's process, carried to B by Redis pub/sub;
- baseline, same run: a bare Redis pub/sub round trip (PUBLISH on one connection, the message
  read on a subscribed one, redis-py), the floor of the two-replica figure.

Run: ``python -m benchmarks.push_latency [--db URL] [--redis URL] [--rounds N] [--quick]``.
"""

from __future__ import annotations

import argparse
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import redis

from benchmarks._controlplane import (
    BenchDevice,
    ControlPlaneUnderTest,
    free_port,
    scratch_database,
    wait_for,
)
from benchmarks._report import print_table, ratio, write_results
from controlplane.app import ControlPlane
from controlplane.fleet import services as fleet
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

NAME = "push_latency"
FULL = {"rounds": 200}
QUICK = {"rounds": 10}
EVENT_TIMEOUT_SECONDS = 10.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL server URL; a scratch database is made on it")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    p.add_argument("--rounds", type=int, help="changes per case (default 200)")
    p.add_argument("--quick", action="store_true", help="a 10-round smoke run (.quick.json)")
    return p.parse_args(argv)


def summary(latencies_ns: list[int]) -> dict[str, float]:
    xs = sorted(latencies_ns)

    def q(f: float) -> float:
        return round(xs[min(len(xs) - 1, int(f * len(xs)))] / 1000, 1)

    return {"n": len(xs), "p50_us": q(0.5), "p99_us": q(0.99), "max_us": round(xs[-1] / 1000, 1)}


class Watcher:
    """A device's Watch stream in a thread: (receipt time, sequence) of each change event."""

    def __init__(self, address: str, device: BenchDevice) -> None:
        self.events: queue.Queue[tuple[int, int]] = queue.Queue()
        self._channel = grpc.insecure_channel(address)
        self._stream = pb_grpc.DeviceServiceStub(self._channel).Watch(
            pb.WatchRequest(), metadata=device.metadata)
        self.open = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                self.open.set()
                if not event.keepalive:
                    self.events.put((time.perf_counter_ns(), event.desired_sequence))
        except grpc.RpcError:
            pass

    def wait_for(self, sequence: int) -> int:
        while True:
            at, seq = self.events.get(timeout=EVENT_TIMEOUT_SECONDS)
            if seq >= sequence:
                return at

    def close(self) -> None:
        self._stream.cancel()
        self._channel.close()


def change_latencies(plane: ControlPlane, device: BenchDevice, watcher: Watcher,
                     rounds: int) -> list[int]:
    out = []
    for _ in range(rounds):
        with plane.tx() as s:
            state = fleet.publish_desired_state(s, device.id, signer=plane.signer,
                                                settings=plane.settings, now=plane.clock())
            sequence = state.sequence
            before_commit = time.perf_counter_ns()
        out.append(watcher.wait_for(sequence) - before_commit)
        time.sleep(0.005)
    return out


def redis_round_trips(url: str, rounds: int) -> list[int]:
    channel = "edgefleet-bench:push-baseline"
    sub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel)
    while sub.get_message(timeout=1.0) is not None:
        pass
    pub = redis.Redis.from_url(url)
    out = []
    for i in range(rounds):
        start = time.perf_counter_ns()
        pub.publish(channel, str(i))
        while True:
            msg = sub.get_message(timeout=EVENT_TIMEOUT_SECONDS)
            if msg is not None and msg["data"] == str(i).encode():
                break
        out.append(time.perf_counter_ns() - start)
        time.sleep(0.005)
    sub.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds = args.rounds or (QUICK if args.quick else FULL)["rounds"]
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-push-") as tmp, \
            scratch_database(args.db) as db:
        root = Path(tmp)
        a = ControlPlaneUnderTest(root, database_url=db, redis_url=args.redis).start()
        b_addr = f"127.0.0.1:{free_port()}"
        b = subprocess.Popen(
            [sys.executable, "-m", "controlplane.cli.main", "server", "--listen", b_addr,
             "--data-dir", str(a.settings.data_dir), "--db", db, "--redis", args.redis],
            stdout=subprocess.DEVNULL, stderr=(root / "replica-b.log").open("wb"))
        watchers: list[Watcher] = []
        try:
            dev_a, dev_b = a.enroll(2, {"bench": "push"})
            b_channel = grpc.insecure_channel(b_addr)
            wait_for("replica B", lambda: _answers(b_channel))
            b_channel.close()
            watchers = [Watcher(a.address, dev_a), Watcher(b_addr, dev_b)]
            # The worker's part: a plane of its own in this process, publishing after commit.
            plane = ControlPlane.from_settings(a.settings, create_key=False)
            # A first change, to be sure both streams (and B's subscription) are in.
            for dev, w in zip((dev_a, dev_b), watchers, strict=True):
                change_latencies(plane, dev, w, 1)
            one = change_latencies(plane, dev_a, watchers[0], rounds)
            two = change_latencies(plane, dev_b, watchers[1], rounds)
            base = redis_round_trips(args.redis, rounds)
            plane.close()
        finally:
            for w in watchers:
                w.close()
            b.terminate()
            b.wait(30)
            a.stop()
    one_s, two_s, base_s = summary(one), summary(two), summary(base)
    return {
        "description": "desired-state COMMIT to the device's receipt of the Watch event",
        "config": {"rounds": rounds, "database": "postgresql"},
        "one_replica": one_s,
        "two_replicas": two_s,
        "redis_pubsub_round_trip": base_s,
        "two_replicas_over_redis_p50": ratio(two_s["p50_us"], base_s["p50_us"]),
    }


def _answers(channel: grpc.Channel) -> bool | None:
    try:
        grpc.channel_ready_future(channel).result(timeout=1)
        return True
    except grpc.FutureTimeoutError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    rows = [("case", "n", "p50 µs", "p99 µs", "max µs")]
    for key in ("one_replica", "two_replicas", "redis_pubsub_round_trip"):
        s = doc[key]
        rows.append((key, str(s["n"]), str(s["p50_us"]), str(s["p99_us"]), str(s["max_us"])))
    print_table("push latency (COMMIT to Watch event)", rows)
    print(f"two replicas p50 / bare Redis round trip p50: {doc['two_replicas_over_redis_p50']}")
    print(f"wrote {write_results(NAME, doc, quick=args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
