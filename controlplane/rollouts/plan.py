"""A rollout's plan: what the operator asked for, checked, with every default filled in.

``Plan.build`` is the one place a plan is validated; a stored plan (``Plan.from_json``) is one
``build`` accepted, so the engine never meets a plan it cannot follow.

Invariants of a built plan:
- ``waves`` is non-empty, each entry a count ("5") or a share ("10%"), increasing within its
  kind, and the last is "100%": a rollout either reaches every matching device or is stopped.
- Shares (``success_threshold``, gate rates, ``max_p95_regression``) are finite and in range;
  counts are non-negative and bounded by the settings.
- ``bake_seconds`` defaults to 0 for a single wave (nothing comes after it to protect) and to
  ``rollout_default_bake_seconds`` when there are several: metric gates are judged over a bake.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError
from controlplane.rollouts.windows import MaintenanceWindow
from controlplane.validation import shown

ON_BREACH = ("pause", "rollback")


@dataclass(frozen=True)
class Gates:
    max_p95_regression: float = 0.2
    max_error_rate: float = 0.01
    max_nonfinite_rate: float = 0.0
    max_rollbacks: int = 0
    min_inferences: int = 100
    on_breach: str = "pause"


@dataclass(frozen=True)
class Window:
    cron: str
    duration_seconds: int
    time_zone: str = "UTC"

    def schedule(self, settings: Settings) -> MaintenanceWindow:
        return MaintenanceWindow.parse(self.cron, self.duration_seconds, self.time_zone,
                                       settings=settings)


@dataclass(frozen=True)
class PlanAsk:
    """What CreateRollout asked for; None: the default."""

    waves: tuple[str, ...] = ()
    bake_seconds: int | None = None
    success_threshold: float | None = None
    max_failures: str | None = None
    min_finished: int | None = None
    step_timeout_seconds: int | None = None
    max_per_minute: int | None = None
    start_at: dt.datetime | None = None
    window: Window | None = None
    dynamic: bool | None = None
    max_p95_regression: float | None = None
    max_error_rate: float | None = None
    max_nonfinite_rate: float | None = None
    max_rollbacks: int | None = None
    min_inferences: int | None = None
    on_breach: str = ""


@dataclass(frozen=True)
class Plan:
    waves: tuple[str, ...] = ("100%",)
    bake_seconds: int = 0
    success_threshold: float = 1.0
    max_failures: str = "0"
    min_finished: int = 10
    step_timeout_seconds: int = 1800
    max_per_minute: int = 0
    start_at: dt.datetime | None = None
    window: Window | None = None
    dynamic: bool = False
    gates: Gates = field(default_factory=Gates)

    @classmethod
    def build(cls, ask: PlanAsk, *, settings: Settings, now: dt.datetime) -> Plan:
        """The plan ``ask`` describes. Raises InvalidArgumentError naming the first bad field."""
        waves = _waves(ask.waves, settings=settings)
        bake = ask.bake_seconds
        if bake is None:
            bake = 0 if len(waves) == 1 else settings.rollout_default_bake_seconds
        _bounded(bake, "bake", settings.max_duration_seconds)
        step_timeout = (ask.step_timeout_seconds if ask.step_timeout_seconds is not None
                        else settings.rollout_default_step_timeout_seconds)
        _bounded(step_timeout, "step timeout", settings.max_duration_seconds, minimum=1)
        if ask.start_at is not None and ask.start_at - now > dt.timedelta(
                seconds=settings.max_duration_seconds):
            raise InvalidArgumentError(
                f"start time {ask.start_at.isoformat()} is more than "
                f"{settings.max_duration_seconds // 86400} days away (setting "
                "max_duration_seconds)")
        window = ask.window
        if window is not None:
            window.schedule(settings)   # refuses a bad cron, duration or zone
        on_breach = ask.on_breach or "pause"
        if on_breach not in ON_BREACH:
            raise InvalidArgumentError(
                f"bad --on-breach {shown(on_breach)}: use pause or rollback")
        defaults = Gates()
        gates = Gates(
            max_p95_regression=_share(ask.max_p95_regression, defaults.max_p95_regression,
                                      "max p95 regression", maximum=100.0),
            max_error_rate=_share(ask.max_error_rate, defaults.max_error_rate, "max error rate"),
            max_nonfinite_rate=_share(ask.max_nonfinite_rate, defaults.max_nonfinite_rate,
                                      "max non-finite rate"),
            max_rollbacks=_count(ask.max_rollbacks, defaults.max_rollbacks, "max rollbacks",
                                 settings),
            min_inferences=_count(ask.min_inferences, defaults.min_inferences,
                                  "min inferences", settings, maximum=2**62),
            on_breach=on_breach,
        )
        threshold = _share(ask.success_threshold, 1.0, "success threshold")
        if threshold <= 0:
            raise InvalidArgumentError("success threshold must be above 0 (e.g. 95%)")
        return cls(
            waves=waves,
            bake_seconds=bake,
            success_threshold=threshold,
            max_failures=_max_failures(ask.max_failures),
            min_finished=_count(ask.min_finished, 10, "min finished", settings),
            step_timeout_seconds=step_timeout,
            max_per_minute=_count(ask.max_per_minute, 0, "max per minute", settings),
            start_at=ask.start_at,
            window=window,
            dynamic=bool(ask.dynamic),
            gates=gates,
        )

    def targets(self, devices: int) -> list[int]:
        """The cumulative device count each wave reaches among ``devices`` matching ones: a
        share rounds up (a wave of 1% of 50 devices is one device), never past ``devices``."""
        out: list[int] = []
        for entry in self.waves:
            if entry.endswith("%"):
                n = math.ceil(devices * float(entry[:-1]) / 100 - 1e-9)
            else:
                n = int(entry)
            out.append(max(min(n, devices), out[-1] if out else 0))
        out[-1] = devices
        return out

    def failures_exceeded(self, failed: int, finished: int) -> bool:
        """True when ``failed`` devices of ``finished`` break the failure threshold. A share is
        judged only once ``min_finished`` devices finished; a count at once."""
        if self.max_failures.endswith("%"):
            if finished < max(self.min_finished, 1):
                return False
            return failed / finished > float(self.max_failures[:-1]) / 100
        return failed > int(self.max_failures)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["waves"] = list(self.waves)
        doc["start_at"] = self.start_at.isoformat() if self.start_at else None
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Plan:
        window = doc.get("window")
        start = doc.get("start_at")
        return replace(
            cls(),
            **{k: v for k, v in doc.items() if k not in ("waves", "window", "start_at", "gates")},
            waves=tuple(doc.get("waves") or ("100%",)),
            window=Window(**window) if window else None,
            start_at=dt.datetime.fromisoformat(start) if start else None,
            gates=Gates(**(doc.get("gates") or {})),
        )


def _waves(entries: tuple[str, ...], *, settings: Settings) -> tuple[str, ...]:
    if not entries:
        return ("100%",)
    if len(entries) > settings.max_waves:
        raise InvalidArgumentError(
            f"{len(entries)} waves; at most {settings.max_waves} (setting max_waves)")
    out: list[str] = []
    last_count, last_share = 0, 0.0
    for raw in entries:
        entry = raw.strip()
        try:
            if entry.endswith("%"):
                share = float(entry[:-1])
                if not (0 < share <= 100) or not math.isfinite(share):
                    raise ValueError
                if share <= last_share:
                    raise InvalidArgumentError(
                        f"wave {shown(entry)} is not larger than the wave before it: waves are "
                        "cumulative, e.g. 1%,10%,50%,100%")
                last_share = share
                entry = f"{share:g}%"
            else:
                count = int(entry)
                if count <= 0 or count > settings.max_wave_devices:
                    raise ValueError
                if count <= last_count:
                    raise InvalidArgumentError(
                        f"wave {shown(entry)} is not larger than the wave before it: waves are "
                        "cumulative, e.g. 5,50,100%")
                last_count = count
                entry = str(count)
        except ValueError:
            raise InvalidArgumentError(
                f"bad wave {shown(raw)}: give a device count (e.g. 5) or a share of the "
                "matching devices (e.g. 10%)") from None
        out.append(entry)
    if out[-1] != "100%":
        raise InvalidArgumentError(
            f"the last wave is {out[-1]}: end the waves with 100% (every matching device), e.g. "
            f"{','.join(out)},100%; narrow the devices with --selector instead")
    return tuple(out)


def _bounded(value: int, what: str, maximum: int, *, minimum: int = 0) -> None:
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(
            f"{what} {value} s is out of range: {minimum} to {maximum} s")


def _share(value: float | None, default: float, what: str, *, maximum: float = 1.0) -> float:
    if value is None:
        return default
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise InvalidArgumentError(
            f"{what} {value!r} is out of range: give a share from 0 to "
            f"{maximum:g} (e.g. 0.2 or 20%)")
    return float(value)


def _count(value: int | None, default: int, what: str, settings: Settings, *,
           maximum: int | None = None) -> int:
    if value is None:
        return default
    top = maximum if maximum is not None else settings.max_wave_devices
    if not 0 <= value <= top:
        raise InvalidArgumentError(f"{what} {value} is out of range: 0 to {top}")
    return int(value)


def _max_failures(text: str | None) -> str:
    if text is None or text == "":
        return "0"
    entry = text.strip()
    try:
        if entry.endswith("%"):
            share = float(entry[:-1])
            if not (0 <= share <= 100) or not math.isfinite(share):
                raise ValueError
            return f"{share:g}%"
        count = int(entry)
        if count < 0 or count > 2**31:
            raise ValueError
        return str(count)
    except ValueError:
        raise InvalidArgumentError(
            f"bad max failures {shown(text)}: give a device count (e.g. 3) or a share of the "
            "finished devices (e.g. 5%)") from None
