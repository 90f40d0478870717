"""Every bound and default the agent uses, in one immutable place.

Nothing else in ``agent`` hard-codes a timeout, a retry count, a size limit or an interval: it
reads them from the ``AgentSettings`` it was handed. Tests and demos build one with smaller
intervals through ``AgentSettings(...)`` or ``settings.replace(...)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass

from protos.contract.interpreters import INTERPRETERS as CONTRACT_INTERPRETERS

MiB = 1024 * 1024

#: Bounds of the metrics settings: a buffer must hold a few windows and install events, and its
#: file is rewritten whole at each change, so it stays small; checkpoints are disk writes, so
#: not more often than ten a second.
MIN_METRICS_BUFFER_BYTES = 16 * 1024
MAX_METRICS_BUFFER_BYTES = 64 * MiB
MIN_CHECKPOINT_SECONDS = 0.1

#: Interpreter names accepted by ``interpreter`` / ``EDGEFLEET_AGENT_INTERPRETER``.
INTERPRETERS = tuple(CONTRACT_INTERPRETERS)


@dataclass(frozen=True)
class AgentSettings:
    # Sync loop
    default_poll_seconds: float = 30.0
    # When set, wins over the server's poll_interval_seconds (tests, demos).
    poll_interval_seconds: float | None = None
    sync_jitter: float = 0.2                    # each wait is scaled by 1 +- this
    backoff_min_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    rpc_timeout_seconds: float = 10.0
    # The Watch stream (agent.watch): the server ends it after its watch_max_seconds (600) and
    # the agent opens it again after this (jittered); a stream still open this long is given up
    # (a server gone without a word); a failed one is retried with this backoff.
    watch_reconnect_seconds: float = 1.0
    watch_timeout_seconds: float = 660.0
    watch_backoff_min_seconds: float = 1.0
    watch_backoff_max_seconds: float = 300.0

    # Downloads
    download_timeout_seconds: float = 300.0     # per DownloadArtifact stream
    chunk_retries: int = 5                      # consecutive failed attempts without progress
    max_artifact_bytes: int = 256 * MiB
    # A variant's golden samples (the control plane's default is 256 KiB): refused above this.
    max_golden_bytes: int = 4 * MiB
    grpc_max_message_bytes: int = 4 * MiB       # must exceed the server's chunk size

    # Inference
    interpreter: str | None = None              # None: EDGEFLEET_AGENT_INTERPRETER, then auto
    interpreter_threads: int | None = None
    runner_pool_size: int = 2                   # interpreters per model; one request each
    validation_runs: int = 3
    # The latency budget (agent.budget): a multiple of the p95 the manifest says this
    # interpreter measured, at least the floor, at most the absolute budget (also used when the
    # manifest has no figure).
    validation_latency_budget_ms: float = 2000.0
    latency_budget_factor: float = 4.0
    latency_budget_floor_ms: float = 10.0
    local_server_workers: int = 8
    local_rpc_timeout_seconds: float = 30.0

    # Metrics and reports
    metrics_window_seconds: float = 10.0
    # How often the open window is written to the data dir (when it changed): a SIGKILL loses at
    # most the inferences of this long (agent.checkpoint).
    metrics_checkpoint_seconds: float = 2.0
    # What is not yet sent (closed windows and install events, agent.metrics_buffer), in memory
    # and in its file; past it the least telling goes first: routine windows, then windows with
    # failures, install events last.
    max_metrics_buffer_bytes: int = 1 * MiB
    max_windows_per_report: int = 100
    max_events_per_report: int = 50
    latency_buckets_ms: tuple[float, ...] = (
        0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
    )

    # Probation (agent.probation): after activation, a model is watched this long; breaking a
    # limit swaps back to the kept previous variant. Rates are judged once it ran the minimum.
    probation_seconds: float = 60.0
    probation_min_inferences: int = 20
    probation_max_error_rate: float = 0.05
    probation_max_nonfinite_rate: float = 0.0   # any NaN or Inf output breaks it
    probation_check_seconds: float = 1.0

    # Storage: room kept free beside a new artifact; corrupt files kept aside for inspection.
    min_free_bytes: int = 16 * MiB
    max_quarantined_files: int = 4

    # Lifecycle
    shutdown_grace_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.sync_jitter < 1:
            raise ValueError("sync_jitter must be in [0, 1)")
        if not 0 < self.backoff_min_seconds <= self.backoff_max_seconds:
            raise ValueError("need 0 < backoff_min_seconds <= backoff_max_seconds")
        if not 0 < self.watch_backoff_min_seconds <= self.watch_backoff_max_seconds:
            raise ValueError("need 0 < watch_backoff_min_seconds <= watch_backoff_max_seconds")
        if self.watch_reconnect_seconds < 0 or self.watch_timeout_seconds <= 0:
            raise ValueError("need watch_reconnect_seconds >= 0 and watch_timeout_seconds > 0")
        if self.latency_budget_factor <= 0 or self.latency_budget_floor_ms < 0:
            raise ValueError("need latency_budget_factor > 0 and latency_budget_floor_ms >= 0")
        if not (0 <= self.probation_max_error_rate <= 1
                and 0 <= self.probation_max_nonfinite_rate <= 1):
            raise ValueError("probation rates must be in [0, 1]")
        if self.probation_seconds < 0 or self.probation_check_seconds <= 0:
            raise ValueError("need probation_seconds >= 0 and probation_check_seconds > 0")
        if self.metrics_window_seconds <= 0:
            raise ValueError("metrics_window_seconds must be greater than 0")
        if self.metrics_checkpoint_seconds < MIN_CHECKPOINT_SECONDS:
            raise ValueError(f"metrics_checkpoint_seconds must be at least "
                             f"{MIN_CHECKPOINT_SECONDS}: each checkpoint is a disk write")
        buffer_bytes = self.max_metrics_buffer_bytes
        if not MIN_METRICS_BUFFER_BYTES <= buffer_bytes <= MAX_METRICS_BUFFER_BYTES:
            raise ValueError(f"max_metrics_buffer_bytes must be in [{MIN_METRICS_BUFFER_BYTES}, "
                             f"{MAX_METRICS_BUFFER_BYTES}]: it must hold a few windows and "
                             "events, and its file is rewritten whole at every change")
        if self.runner_pool_size < 1:
            raise ValueError("runner_pool_size must be at least 1")
        if list(self.latency_buckets_ms) != sorted(set(self.latency_buckets_ms)):
            raise ValueError("latency_buckets_ms must be strictly increasing")
        if self.interpreter is not None and self.interpreter not in INTERPRETERS:
            raise ValueError(f"interpreter must be one of {', '.join(INTERPRETERS)}")

    def replace(self, **changes: object) -> AgentSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_text(self, pairs: Iterable[str]) -> AgentSettings:
        """These settings with ``NAME=VALUE`` pairs applied (``edgefleet-agent run --set``),
        each value read as its field's type (numbers; a tuple as comma-separated numbers;
        ``none`` for an optional one).

        Raises ValueError naming the pair that is not a setting or not of its type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in fields:
                raise ValueError(f"--set {pair!r}: not NAME=VALUE with a setting's NAME "
                                 f"(settings: {', '.join(sorted(fields))})")
            try:
                changes[name] = _parse(str(fields[name].type), text.strip())
            except ValueError as exc:
                raise ValueError(f"--set {pair!r}: {exc}") from None
        return self.replace(**changes)

    @property
    def interpreter_choice(self) -> str | None:
        """The interpreter asked for: this setting, else ``EDGEFLEET_AGENT_INTERPRETER``."""
        choice = self.interpreter or os.environ.get("EDGEFLEET_AGENT_INTERPRETER") or None
        if choice is not None and choice not in INTERPRETERS:
            raise ValueError(
                f"EDGEFLEET_AGENT_INTERPRETER={choice!r}: use one of {', '.join(INTERPRETERS)}"
            )
        return choice


def _parse(annotation: str, text: str) -> object:
    """``text`` as a value of the field annotated ``annotation`` (annotations are strings here:
    ``from __future__ import annotations``)."""
    if annotation.endswith("| None") and text.lower() == "none":
        return None
    kind = annotation.removesuffix(" | None")
    if kind == "str":
        return text
    if kind.startswith("tuple"):
        return tuple(float(x) for x in text.split(",") if x.strip())
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    raise ValueError(f"cannot set a {kind} from text")
