"""DeviceService.Sync in the common case, against a bare grpc.aio echo on the same machine.

The common case is a device that already holds its current desired state: it sends
``known_sequence`` equal to the server's and the model it runs, and gets back an empty
``SyncResponse`` (just the poll interval). docs/architecture.md wants that to cost at most one
indexed read and no database write.

Setup (through the public API): an in-process control plane (embedded SQLite, or ``--db`` a
private scratch database on a PostgreSQL server), one generated CNN pushed and measured, N
devices enrolled, a rollout to them, each device reports the model active, the rollout succeeds.

Measured: N client threads in a separate process (one channel and TCP connection each, one
device each) call Sync in a closed loop over loopback; then the same client calls a bare
grpc.aio echo (``benchmarks._servers.bare_echo``: same message sizes and metadata, no
interceptor, no auth, no database) served the same way from this process. Phases alternate for
``--rounds``. Reported: p50/p99 latency and throughput for both and their ratios, and the SQL
statements the server ran per Sync call (counted with SQLAlchemy's ``before_cursor_execute``).

Run: ``python -m benchmarks.sync_hot_path [--threads N] [--seconds S] [--rounds R]
[--db postgresql://USER@HOST/DB] [--quick]``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks._controlplane import ControlPlaneUnderTest, free_port, scratch_database
from benchmarks._driver import b64, run_driver
from benchmarks._pgwire import PgWireTrace, WireTransaction
from benchmarks._report import latency_summary, print_table, ratio, write_results
from benchmarks._servers import ECHO_METHOD, bare_echo
from benchmarks._statements import CONTROL_VERBS, StatementLog, Transaction, by_signature
from controlplane.modelgen import build_cnn
from protos import edgefleet_pb2 as pb

NAME = "sync_hot_path"
SYNC_METHOD = "/edgefleet.v1.DeviceService/Sync"
MODEL, VERSION = "bench-sync", "1.0.0"
REQUEST_POOL = "edgefleet-db"   # the server's bounded pool for blocking database work
FULL = {"threads": 8, "seconds": 2.5, "warmup": 0.5, "rounds": 4}
QUICK = {"threads": 2, "seconds": 0.5, "warmup": 0.2, "rounds": 1}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{NAME}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, help="concurrent client threads, one device each "
                                               "(default 8; --quick 2)")
    p.add_argument("--seconds", type=float, help="measured seconds per phase (default 2.5)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds per phase (default 0.5)")
    p.add_argument("--rounds", type=int, help="echo/Sync phase pairs (default 4)")
    p.add_argument("--db", help="PostgreSQL server URL; a scratch database is created on it "
                                "(default: the embedded SQLite)")
    p.add_argument("--quick", action="store_true",
                   help="a few seconds, to check the benchmark still works (figures not kept)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str | None]:
    if url is None:
        yield None
    else:
        with scratch_database(url) as scratch:
            yield scratch


def prepare(cp: ControlPlaneUnderTest, devices: int) -> tuple[list[dict[str, Any]], bytes]:
    """Devices in the steady state; returns each one's Sync call and the expected response."""
    cp.push_model(MODEL, VERSION, build_cnn(seed=1))
    enrolled = cp.enroll(devices, {"bench": NAME})
    rollout = cp.roll_out(MODEL, VERSION, f"bench={NAME}")
    calls = []
    for device in enrolled:
        assignment = cp.wait_assignment(device)
        cp.report_active(device, assignment.ref)
        request = pb.SyncRequest(known_sequence=assignment.sequence, active=[assignment.ref])
        calls.append({"request": b64(request.SerializeToString()),
                      "metadata": [list(kv) for kv in device.metadata]})
    cp.wait_rollout(rollout)
    expect = pb.SyncResponse(poll_interval_seconds=cp.settings.poll_interval_seconds)
    return calls, expect.SerializeToString()


def load_spec(target: str, method: str, calls: list[dict[str, Any]], expect: bytes,
              args: argparse.Namespace) -> dict[str, Any]:
    return {"kind": "unary", "target": target, "method": method, "calls": calls,
            "expect": b64(expect), "threads": args.threads,
            "warmup_seconds": args.warmup, "seconds": args.seconds}


def pooled(runs: list[dict[str, Any]]) -> dict[str, float]:
    return latency_summary([x for r in runs for x in r["latencies_ns"]],
                           sum(r["seconds"] for r in runs))


def round_figures(echo_run: dict[str, Any], sync_run: dict[str, Any]) -> dict[str, Any]:
    echo_s, sync_s = pooled([echo_run]), pooled([sync_run])
    return {"echo": echo_s, "sync": sync_s,
            "throughput_sync_over_echo": ratio(sync_s["throughput_per_s"],
                                               echo_s["throughput_per_s"])}


def is_last_seen_flush(t: Transaction) -> bool:
    return any("last_seen" in s and s.lstrip().upper().startswith("UPDATE") for s in t.text)


def database_figures(transactions: list[Transaction], calls: int, *, connects: int,
                     checkouts: int) -> dict[str, Any]:
    """Statements per Sync call on the request path, apart from batched and periodic work."""
    request = [t for t in transactions if t.thread.startswith(REQUEST_POOL)]
    flushes = [t for t in request if is_last_seen_flush(t)]
    sync_path = [t for t in request if not is_last_seen_flush(t)]
    background = [t for t in transactions if not t.thread.startswith(REQUEST_POOL)]
    statements = sum(len(t.statements) for t in sync_path)
    return {
        "sync_calls": calls,
        "sync_path_transactions": len(sync_path),
        "statements_per_sync": round(statements / calls, 4),
        "queries_per_sync": round(sum(t.queries for t in sync_path) / calls, 4),
        "transaction_control_per_sync": round(
            sum(1 for t in sync_path for v, _ in t.statements if v in CONTROL_VERBS) / calls, 4),
        "writes_per_sync": round(sum(t.writes for t in sync_path) / calls, 4),
        # Every pool checkout (all threads); on PostgreSQL each one of an already open
        # connection costs a pre-ping round trip (pool_pre_ping in controlplane.db).
        "pool_checkouts_per_sync": round(checkouts / calls, 4),
        # Connections opened while the load ran: the pool's churn under this concurrency.
        "connections_opened": connects,
        "last_seen_flush": {
            "transactions": len(flushes),
            "statements": sum(len(t.statements) for t in flushes),
            "writes": sum(t.writes for t in flushes),
            "writes_per_sync": round(sum(t.writes for t in flushes) / calls, 6),
        },
        "background_transactions": len(background),
        "by_signature": [
            {"pool": pool, "statements": sig, "transactions": n}
            for (pool, sig), n in by_signature(transactions).most_common()
        ],
    }


def wire_figures(transactions: list[WireTransaction], calls: int) -> dict[str, Any]:
    """PostgreSQL protocol round trips and statements per Sync transaction seen on the wire.

    libpq buffers its trace, so the last few transactions of a phase may not be readable yet:
    the figures are averages over the Sync transactions seen (``sync_transactions_seen``).
    """
    sync = [t for t in transactions if any("desired_states" in s for s in t.statements)]
    shapes = Counter(tuple(_short(s) for s in t.statements) for t in sync)
    seen = max(len(sync), 1)
    return {
        "sync_calls": calls,
        "sync_transactions_seen": len(sync),
        # With the Sync cache, most calls run no transaction: this is the share that did.
        "sync_transactions_per_call": round(len(sync) / max(calls, 1), 4),
        "round_trips_per_sync": round(sum(t.round_trips for t in sync) / seen, 4),
        "statements_per_sync": round(sum(len(t.statements) for t in sync) / seen, 4),
        "sync_transaction_shapes": [
            {"statements": list(shape), "transactions": n} for shape, n in shapes.most_common(3)
        ],
    }


def _short(sql: str) -> str:
    """``SELECT ... FROM desired_states``: enough of a statement to recognise it."""
    words = sql.split()
    head = " ".join(words[:1])
    match = re.search(r"\b(FROM|UPDATE|INTO)\s+(\w+)", sql, re.IGNORECASE)
    return f"{head} ... {match.group(1)} {match.group(2)}" if match and len(words) > 2 else sql


def run(args: argparse.Namespace) -> dict[str, Any]:
    log = StatementLog().install()
    with tempfile.TemporaryDirectory(prefix="edgefleet-bench-") as tmp, \
            database(args.db) as db_url:
        wire = PgWireTrace(Path(tmp) / "pgwire").install() if db_url else None
        echo_runs, sync_runs, transactions, wire_txns = [], [], [], []
        sync_calls = connects = checkouts = 0
        try:
            with ControlPlaneUnderTest(Path(tmp), database_url=db_url) as cp:
                calls, expect = prepare(cp, args.threads)
                echo_target = f"127.0.0.1:{free_port()}"
                echo = bare_echo(echo_target, expect,
                                 max_message_bytes=cp.settings.grpc_max_message_bytes).start()
                try:
                    for _ in range(args.rounds):
                        echo_runs.append(run_driver(
                            load_spec(echo_target, ECHO_METHOD, calls, expect, args)))
                        log.reset()
                        mark = wire.mark() if wire else {}
                        result = run_driver(
                            load_spec(cp.address, SYNC_METHOD, calls, expect, args))
                        transactions += log.transactions()
                        connects += log.connects
                        checkouts += log.checkouts
                        wire_txns += wire.transactions(mark) if wire else []
                        sync_calls += result["calls_total"]
                        sync_runs.append(result)
                finally:
                    echo.stop()
        finally:
            log.remove()
            if wire:
                wire.remove()
        backend = "postgresql" if db_url else "sqlite"
    echo_s, sync_s = pooled(echo_runs), pooled(sync_runs)
    return {
        "description": "DeviceService.Sync, nothing changed, vs a bare grpc.aio unary echo",
        "config": {
            "threads": args.threads, "seconds_per_phase": args.seconds,
            "warmup_seconds": args.warmup, "rounds": args.rounds, "database": backend,
            "request_bytes": len(base64.b64decode(calls[0]["request"])),
            "response_bytes": len(expect),
        },
        "echo": echo_s,
        "sync": sync_s,
        "rounds": [round_figures(e, s) for e, s in zip(echo_runs, sync_runs, strict=True)],
        "ratios": {
            "throughput_sync_over_echo": ratio(sync_s["throughput_per_s"],
                                               echo_s["throughput_per_s"]),
            "p50_sync_over_echo": ratio(sync_s["p50_us"], echo_s["p50_us"]),
            "p99_sync_over_echo": ratio(sync_s["p99_us"], echo_s["p99_us"]),
        },
        "database": {
            **database_figures(transactions, sync_calls, connects=connects,
                               checkouts=checkouts),
            **({"postgresql_wire": wire_figures(wire_txns, sync_calls)} if wire else {}),
        },
    }


def report(doc: dict[str, Any]) -> None:
    e, s, r, d = doc["echo"], doc["sync"], doc["ratios"], doc["database"]
    cfg = doc["config"]
    print(f"Sync hot path: {cfg['threads']} client threads, {cfg['rounds']} x "
          f"{cfg['seconds_per_phase']:g} s per phase, database {cfg['database']}, "
          f"request {cfg['request_bytes']} B, response {cfg['response_bytes']} B")
    print_table("latency and throughput", [
        ("", "calls/s", "p50 us", "p99 us", "mean us"),
        ("bare echo", f"{e['throughput_per_s']:.0f}", f"{e['p50_us']:.0f}", f"{e['p99_us']:.0f}",
         f"{e['mean_us']:.0f}"),
        ("Sync", f"{s['throughput_per_s']:.0f}", f"{s['p50_us']:.0f}", f"{s['p99_us']:.0f}",
         f"{s['mean_us']:.0f}"),
        ("Sync / echo", f"{r['throughput_sync_over_echo']:.3f}", f"{r['p50_sync_over_echo']:.2f}",
         f"{r['p99_sync_over_echo']:.2f}", ""),
    ])
    per_round = [x["throughput_sync_over_echo"] for x in doc["rounds"]]
    print(f"  throughput ratio per round: {', '.join(f'{x:.3f}' for x in per_round)}")
    print_table(f"database work during {d['sync_calls']} Sync calls", [
        ("per Sync call", "value"),
        ("statements", f"{d['statements_per_sync']:.3f}"),
        ("  queries (not BEGIN/COMMIT)", f"{d['queries_per_sync']:.3f}"),
        ("  transaction control", f"{d['transaction_control_per_sync']:.3f}"),
        ("  writes", f"{d['writes_per_sync']:.3f}"),
        ("pool checkouts", f"{d['pool_checkouts_per_sync']:.3f}"),
        ("connections opened (total)", str(d["connections_opened"])),
        ("batched last-seen writes", f"{d['last_seen_flush']['writes_per_sync']:.5f}"),
    ])
    if "postgresql_wire" in d:
        w = d["postgresql_wire"]
        print_table(f"on the PostgreSQL wire (libpq trace), per Sync "
                    f"({w['sync_transactions_seen']} Sync transactions seen)", [
            ("per Sync call", "value"),
            ("Sync transactions per call (cache misses)",
             f"{w['sync_transactions_per_call']:.4f}"),
            ("round trips per Sync transaction", f"{w['round_trips_per_sync']:.3f}"),
            ("statements (driver and pool included)", f"{w['statements_per_sync']:.3f}"),
            *((f"  shape x{x['transactions']}", " ; ".join(x["statements"]))
              for x in w["sync_transaction_shapes"]),
        ])
    print_table("transactions by thread pool and statements", [
        ("pool", "statements", "transactions"),
        *((x["pool"], x["statements"], str(x["transactions"])) for x in d["by_signature"]),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    report(doc)
    path = write_results(NAME, doc, quick=args.quick,
                         suffix="postgresql" if args.db else "")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
