"""Metric gates: is the new version as healthy as the previous one, class by class?

Over a wave's bake (from when it completed until now) the gates compare, per hardware class,
the inference windows of the rollout's devices on the new version with a baseline: devices of
the same class still on the previous version over the same time (``previous_version_now``),
else that version's own windows on the class from before the rollout started
(``previous_version_before``). ``judge`` is pure; ``read_sides`` does the reading.

Invariants:
- A gate is judged only on at least ``min_inferences`` inferences on each side it reads;
  short of that it is ``inconclusive``, never a pass. One non-finite output breaches at once
  when none is allowed: it needs no statistics.
- ``p95_regression`` breaches only past both its ratio and ``gate_p95_min_delta_ms``; with no
  previous version at all (the model's first rollout) is
  ``not_applicable``; the other gates read the new version alone.
- Reads are bounded: at most ``gate_max_windows`` windows per side, the most recent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.rollouts.models import RolloutDevice
from controlplane.rollouts.plan import Gates
from controlplane.telemetry.models import MetricWindow
from controlplane.telemetry.window_sum import WINDOW_COLUMNS, WindowSum

PASS, BREACH, INCONCLUSIVE, NOT_APPLICABLE = "pass", "breach", "inconclusive", "not_applicable"


@dataclass(frozen=True)
class Reading:
    gate: str
    hardware_class: str
    class_name: str
    verdict: str
    observed: float = 0.0
    limit: float = 0.0
    baseline: float = 0.0
    new_value: float = 0.0
    inferences: int = 0
    baseline_inferences: int = 0
    baseline_source: str = "none"
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reading:
        return cls(**doc)


@dataclass
class ClassSides:
    """What one class reported: the new version, the baseline, and probation rollbacks."""

    hardware_class: str
    class_name: str = ""
    new: WindowSum = field(default_factory=WindowSum)
    baseline: WindowSum | None = None
    baseline_source: str = "none"
    rollbacks: int = 0


def judge(side: ClassSides, gates: Gates, *, min_delta_ms: float = 1.0) -> list[Reading]:
    """Every gate's reading for one class. A p95 regression counts only when it is also at
    least ``min_delta_ms`` (setting ``gate_p95_min_delta_ms``)."""
    c, name, new = side.hardware_class, side.class_name, side.new
    enough = new.inferences >= gates.min_inferences
    short = (f"{new.inferences} inferences on the new version; the gate needs "
             f"{gates.min_inferences}")
    out = []

    def reading(gate: str, verdict: str, **kw: Any) -> Reading:
        return Reading(gate=gate, hardware_class=c, class_name=name, verdict=verdict,
                       inferences=new.inferences, **kw)

    rate = new.errors / new.inferences if new.inferences else 0.0
    out.append(reading("error_rate", (BREACH if rate > gates.max_error_rate else PASS)
                       if enough else INCONCLUSIVE, observed=rate,
                       limit=gates.max_error_rate, detail="" if enough else short))
    bad = new.nonfinite / new.inferences if new.inferences else 0.0
    at_once = new.nonfinite > 0 and gates.max_nonfinite_rate == 0
    out.append(reading("nonfinite_rate", BREACH if at_once or (enough and bad >
                                                               gates.max_nonfinite_rate)
                       else PASS if enough else INCONCLUSIVE,
                       observed=bad, limit=gates.max_nonfinite_rate,
                       detail=f"{new.nonfinite} non-finite outputs" if new.nonfinite
                       else "" if enough else short))
    out.append(reading("rollbacks", BREACH if side.rollbacks > gates.max_rollbacks else PASS,
                       observed=float(side.rollbacks), limit=float(gates.max_rollbacks),
                       detail=f"{side.rollbacks} devices rolled back on probation"
                       if side.rollbacks else ""))
    out.append(_p95(side, gates, enough, short, min_delta_ms))
    return out


def _p95(side: ClassSides, gates: Gates, enough: bool, short: str,
         min_delta_ms: float) -> Reading:
    base = side.baseline
    common = dict(gate="p95_regression", hardware_class=side.hardware_class,
                  class_name=side.class_name, inferences=side.new.inferences,
                  limit=gates.max_p95_regression, baseline_source=side.baseline_source)
    if base is None:
        return Reading(verdict=NOT_APPLICABLE, detail="no previous version to compare with",
                       **common)   # type: ignore[arg-type]
    common["baseline_inferences"] = base.inferences
    if not enough or base.inferences < gates.min_inferences:
        return Reading(verdict=INCONCLUSIVE, **common,   # type: ignore[arg-type]
                       detail=short if not enough else
                       f"{base.inferences} inferences on the previous version; the gate "
                       f"needs {gates.min_inferences}")
    new_p95, base_p95 = side.new.quantile(0.95) or 0.0, base.quantile(0.95) or 0.0
    ratio = new_p95 / base_p95 - 1 if base_p95 > 0 else 0.0
    # A sub-millisecond model's p95 moves by more than any ratio from scheduling noise alone
    # (0.17 ms to 0.49 ms was seen on one healthy device): a regression must also be
    # min_delta_ms long to count.
    slower = ratio > gates.max_p95_regression and new_p95 - base_p95 >= min_delta_ms
    return Reading(verdict=BREACH if slower else PASS,
                   observed=ratio, baseline=base_p95, new_value=new_p95,
                   detail=f"p95 {new_p95:.3g} ms against {base_p95:.3g} ms",
                   **common)   # type: ignore[arg-type]


def read_sides(session: Session, *, rollout_id: str, model: str, version: str,
               previous: str | None, since: dt.datetime, started: dt.datetime,
               classes: dict[str, str], rollbacks: dict[str, int], min_inferences: int,
               settings: Settings) -> list[ClassSides]:
    """Each of ``classes`` (key -> name) with its two sides. ``previous`` is the version the
    rollout's devices ran before (None: none ran any). The baseline is the previous version's
    windows over the same time where they hold ``min_inferences``, else its windows from before
    the rollout, else whatever the same time holds."""
    cap = settings.gate_max_windows
    sides = {c: ClassSides(c, n, rollbacks=rollbacks.get(c, 0)) for c, n in classes.items()}
    if not sides:
        return []
    members = sa.select(RolloutDevice.device_id).where(RolloutDevice.rollout_id == rollout_id)
    for row in _windows(session, model, version, list(sides), cap,
                        MetricWindow.end >= since, MetricWindow.device_id.in_(members)):
        sides[row.hardware_class].new.add(row)
    if previous is None:
        return list(sides.values())
    now_sums: dict[str, WindowSum] = {}
    for row in _windows(session, model, previous, list(sides), cap,
                        MetricWindow.end >= since):
        now_sums.setdefault(row.hardware_class, WindowSum()).add(row)
    need_before = [c for c in sides
                   if c not in now_sums or now_sums[c].inferences < min_inferences]
    before: dict[str, WindowSum] = {}
    for row in _windows(session, model, previous, need_before, cap,
                        MetricWindow.end < started):
        before.setdefault(row.hardware_class, WindowSum()).add(row)
    for c, side in sides.items():
        current = now_sums.get(c)
        if current is not None and c not in need_before:
            side.baseline, side.baseline_source = current, "previous_version_now"
        elif c in before:
            side.baseline, side.baseline_source = before[c], "previous_version_before"
        elif current is not None:
            side.baseline, side.baseline_source = current, "previous_version_now"
        else:
            side.baseline, side.baseline_source = WindowSum(), "previous_version_before"
    return list(sides.values())


def _windows(session: Session, model: str, version: str, classes: list[str], cap: int,
             *where: Any) -> list[Any]:
    if not classes:
        return []
    return list(session.execute(
        sa.select(MetricWindow.hardware_class, *WINDOW_COLUMNS)
        .where(MetricWindow.model_name == model, MetricWindow.version == version,
               MetricWindow.hardware_class.in_(classes), *where)
        .order_by(MetricWindow.end.desc()).limit(cap)).all())
