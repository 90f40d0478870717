"""Probation: a model just activated is watched for ``probation_seconds``; one that breaks a
limit is swapped back to the kept previous version by the agent itself (``Reconciler.watch``).

Judged on what it served since activation (``MetricsRecorder.stats`` of its ref, less the totals
at activation):
- non-finite outputs: a rate above ``probation_max_nonfinite_rate`` (default 0: any NaN or
  Inf) is judged from the first inference, since one is already a wrong answer;
- errors: a rate above ``probation_max_error_rate``, once it ran ``probation_min_inferences``;
- latency: p95 above the budget it was validated against (``agent.budget``), once it ran
  ``probation_min_inferences``. The p95 is over every inference of the ref since the agent
  started (the recorder keeps no per-activation histogram); for a new version that is the same.

Invariants:
- A watch ends when judged: a breach is returned once, and a model that served its window
  without one passes; a model activated again (or rolled back) starts a new watch or none.
- A watch outlives a restart: its end (wall-clock epoch, ``deadlines``) is kept in the data
  dir's state, and start-up resumes it for what is left (with fresh counts), so a model killed
  while on probation is still judged before it is trusted.
- Called from the sync thread only (``begin`` from its swap, ``check`` from its idle loop), and
  from start-up before that thread runs; nothing here touches the live table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.budget import LatencyBudget
from agent.findings import (
    PROBATION_ERRORS,
    PROBATION_LATENCY,
    PROBATION_NONFINITE,
    Finding,
)
from agent.metrics import MetricsRecorder, ModelStats
from agent.refs import ModelRef
from agent.settings import AgentSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Breach:
    ref: ModelRef
    message: str
    finding: Finding


@dataclass(frozen=True)
class _Watch:
    ref: ModelRef
    budget: LatencyBudget
    until: float          # on ``clock``
    until_epoch: float    # the same moment on the wall clock, for the data dir
    baseline: ModelStats


class Probation:
    def __init__(self, settings: AgentSettings, metrics: MetricsRecorder,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._settings, self._metrics, self._clock, self._wall = settings, metrics, clock, wall
        self._watches: dict[str, _Watch] = {}

    @property
    def watching(self) -> bool:
        return bool(self._watches)

    def deadlines(self) -> dict[str, tuple[str, float]]:
        """Per model name on probation: the sha256 watched and when its watch ends (epoch)."""
        return {m: (w.ref.sha256, w.until_epoch) for m, w in self._watches.items()}

    def begin(self, ref: ModelRef, budget: LatencyBudget, *,
              seconds: float | None = None) -> None:
        """Watch ``ref`` (just activated for its model name) for the probation window, or for
        ``seconds`` (what was left of it before a restart)."""
        seconds = self._settings.probation_seconds if seconds is None else seconds
        if seconds <= 0:
            return
        self._watches[ref.model] = _Watch(ref, budget, self._clock() + seconds,
                                          self._wall() + seconds, self._metrics.stats(ref))

    def resume(self, ref: ModelRef, budget: LatencyBudget, until_epoch: float) -> None:
        """Watch ``ref`` again after a restart, until ``until_epoch`` (no longer than a whole
        window: a wall clock set back must not make it endless)."""
        left = min(until_epoch - self._wall(), self._settings.probation_seconds)
        self.begin(ref, budget, seconds=left)

    def end(self, model: str) -> None:
        self._watches.pop(model, None)

    def check(self) -> list[Breach]:
        """The watched models that broke a limit (their watches end); those whose window is
        over without a breach pass (their watches end too)."""
        breaches = []
        now = self._clock()
        for model, watch in list(self._watches.items()):
            breach = self._judge(watch)
            if breach is not None:
                breaches.append(breach)
            elif now < watch.until:
                continue
            else:
                log.info("%s passed probation", watch.ref)
            del self._watches[model]
        return breaches

    def _judge(self, watch: _Watch) -> Breach | None:
        s, now = self._settings, self._metrics.stats(watch.ref)
        n = now.inferences - watch.baseline.inferences
        if n <= 0:
            return None
        nonfinite = (now.nonfinite - watch.baseline.nonfinite) / n
        if nonfinite > s.probation_max_nonfinite_rate:
            return Breach(watch.ref, f"{nonfinite:.1%} of {n} inferences gave NaN or Inf "
                                     f"outputs on probation (limit "
                                     f"{s.probation_max_nonfinite_rate:.1%})",
                          Finding(PROBATION_NONFINITE, observed=nonfinite,
                                  limit=s.probation_max_nonfinite_rate))
        if n < s.probation_min_inferences:
            return None
        errors = (now.errors - watch.baseline.errors) / n
        if errors > s.probation_max_error_rate:
            return Breach(watch.ref, f"{errors:.1%} of {n} inferences failed on probation "
                                     f"(limit {s.probation_max_error_rate:.1%})",
                          Finding(PROBATION_ERRORS, observed=errors,
                                  limit=s.probation_max_error_rate))
        if now.latency_p95_ms > watch.budget.limit_ms:
            return Breach(watch.ref, watch.budget.describe(now.latency_p95_ms,
                                                           "p95 latency on probation"),
                          Finding(PROBATION_LATENCY, observed=now.latency_p95_ms,
                                  limit=watch.budget.limit_ms))
        return None
