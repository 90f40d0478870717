"""Closed-loop loads: each thread repeats its call as soon as the previous one returns.

``closed_loop``: all threads start together after a barrier; calls that begin during the warm-up
are made but not timed; the measured window ends at a fixed moment, and its length runs to the
last timed call's completion, so throughput = timed calls / seconds. The first failure in any
thread stops the run and is raised: a load that measured errors would be worthless.

``interleaved``: one thread calling each of a few calls in turn (A, B, A, B ...), each timed on
its own: when two sides of a ratio differ by a few percent, a machine whose load drifts between
two back-to-back runs moves the ratio more than that; interleaved, both see the same drift.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoopResult:
    latencies_ns: list[int]   # every timed call, all threads
    seconds: float            # measured window: its start to the last timed completion
    calls_total: int          # warm-up included


def closed_loop(calls: Sequence[Callable[[], object]], *, warmup: float,
                seconds: float) -> LoopResult:
    """Run ``calls[i]`` in a loop on thread ``i`` for ``warmup`` + ``seconds`` seconds."""
    threads = len(calls)
    ready = threading.Barrier(threads + 1)
    window: dict[str, int] = {}
    latencies: list[list[int]] = [[] for _ in range(threads)]
    last_done = [0] * threads
    totals = [0] * threads
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        ready.wait()
        call, start, end, mine = calls[i], window["start"], window["end"], latencies[i]
        clock = time.perf_counter_ns
        try:
            while not failures and (began := clock()) < end:
                call()
                done = clock()
                totals[i] += 1
                if began >= start:
                    mine.append(done - began)
                    last_done[i] = done
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=worker, args=(i,), name=f"load-{i}")
               for i in range(threads)]
    for w in workers:
        w.start()
    window["start"] = time.perf_counter_ns() + int(warmup * 1e9)
    window["end"] = window["start"] + int(seconds * 1e9)
    ready.wait()
    for w in workers:
        w.join()
    if failures:
        raise failures[0]
    measured = [x for mine in latencies for x in mine]
    if not measured:
        raise RuntimeError("no call completed inside the measured window")
    return LoopResult(measured, (max(last_done) - window["start"]) / 1e9, sum(totals))


def interleaved(calls: Sequence[Callable[[], object]], *, warmup: float,
                seconds: float) -> list[LoopResult]:
    """Call ``calls[0]``, ``calls[1]``, ... in turn on this thread for ``warmup`` + ``seconds``;
    one result per call, each ``seconds`` being the time spent in that call while measured."""
    clock = time.perf_counter_ns
    start = clock() + int(warmup * 1e9)
    end = start + int(seconds * 1e9)
    latencies: list[list[int]] = [[] for _ in calls]
    totals = [0] * len(calls)
    while (began := clock()) < end:
        for i, call in enumerate(calls):
            began = clock()
            call()
            done = clock()
            totals[i] += 1
            if began >= start:
                latencies[i].append(done - began)
    if not all(latencies):
        raise RuntimeError("no call completed inside the measured window")
    return [LoopResult(mine, sum(mine) / 1e9, total) for mine, total in zip(latencies, totals,
                                                                            strict=True)]
