"""Settings: every bound and default the control plane uses, in one place.

A ``Settings`` is immutable; build one with ``Settings.from_env(**overrides)`` (environment
variables ``EDGEFLEET_*`` fill what the overrides leave out) and hand it to the pieces that need it.
With no database or Redis URL the embedded default is used: SQLite and a filesystem artifact store
in the data dir, Celery on an in-memory broker inside the server process.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.durations import parse_duration
from protos.contract.interpreters import INTERPRETERS

MiB = 1024 * 1024
#: Every kind the optimize pipeline makes, reference first (controlplane.optimize.recipes).
VARIANT_KINDS = ("float32", "float16", "dynamic_int8", "weight_only_int8", "int8")
DB_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg", "sqlite"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket"})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("./edgefleet-data"))
    listen: str = "127.0.0.1:7443"
    database_url: str | None = None  # None: sqlite:///DATA_DIR/edgefleet.db
    redis_url: str | None = None  # None: in-memory broker, worker inside the server
    metrics_port: int | None = None
    tls_cert: Path | None = None         # PEM certificate chain; with tls_key, serve TLS only
    tls_key: Path | None = None

    # Uploads and downloads
    max_model_bytes: int = 256 * MiB
    max_calibration_bytes: int = 64 * MiB
    # What a calibration .npz may inflate to, and hold, judged from its headers before loading.
    max_calibration_inflated_bytes: int = 256 * MiB
    max_calibration_samples: int = 10_000
    # Fewer samples than this cannot show the activation ranges int8 calibration looks for.
    min_calibration_samples: int = 8
    # A push stream that sends nothing for this long is cut (its temp files removed), and at
    # most this many pushes are received at once: idle streams must not hold the disk.
    push_idle_timeout_seconds: float = 60.0
    max_concurrent_pushes: int = 16
    chunk_bytes: int = 1 * MiB
    grpc_max_message_bytes: int = 4 * MiB  # must exceed chunk_bytes plus framing

    # What a model's signature may hold: it travels in lists, manifests and desired states, so
    # it must fit their messages (grpc_max_message_bytes) many times over.
    max_model_tensors: int = 64            # inputs plus outputs
    max_tensor_name_chars: int = 256
    max_tensor_rank: int = 8
    max_channels: int = 4096               # per-channel quantization scales of one tensor
    max_operator_kinds: int = 256
    # The signature travels in a version, again in each variant and in each signed manifest:
    # 128 KiB x (1 + 2 x a handful of variants) stays well inside one 4 MiB message.
    max_signature_bytes: int = 128 * 1024

    # Device sync
    poll_interval_seconds: int = 30
    desired_state_ttl_seconds: int = 7 * 24 * 3600
    # Re-sign a desired state when less than this much of its life is left.
    desired_state_refresh_seconds: int = 24 * 3600
    last_seen_flush_seconds: float = 5.0
    # A desired state must fit every device's message limit (agents default to 4 MiB), with
    # room to spare: past these a rollout refuses the device instead of breaking its Sync.
    max_desired_state_bytes: int = 1 * MiB
    max_models_per_device: int = 32
    # Push (controlplane.notify, fleet.watchers, fleet.desired_cache). A Watch stream gets a
    # keepalive this often and is closed after this long (the device opens it again, so load
    # balancers rebalance); a server holds at most this many streams (one more: RESOURCE_EXHAUSTED,
    # the device polls). The Sync cache holds this many devices, each entry at most this long (a
    # change whose Redis publish failed is heard that late at the latest).
    watch_keepalive_seconds: float = 60.0
    watch_max_seconds: float = 600.0
    watch_max_streams: int = 10_000
    desired_cache_size: int = 100_000
    desired_cache_max_age_seconds: float = 300.0
    # Redis pub/sub of desired-state changes: each call's timeout, how often a quiet subscription
    # is pinged (a dead connection is found this fast), and the resubscribe backoff.
    notify_redis_timeout_seconds: float = 2.0
    notify_health_check_seconds: float = 5.0
    notify_backoff_min_seconds: float = 0.5
    notify_backoff_max_seconds: float = 30.0
    # A rollout shows why its devices failed, for at most this many of them.
    max_failures_shown: int = 20

    # Listings (ListTokens, ListModels, ListDevices, ListRollouts) come in pages: page_size 0
    # asks for the default, more than the maximum is refused. Whatever the size, a page stops
    # before its response would outgrow grpc_max_message_bytes (controlplane.pages).
    default_page_size: int = 100
    max_page_size: int = 1000
    max_page_token_chars: int = 4096

    # What one request may carry. Every string and count that reaches the database or a
    # message is bounded; past a bound the request is refused with the setting's name.
    max_device_name_chars: int = 200       # no more than the devices.name column holds
    max_labels: int = 64                   # per device, and per enrollment token
    max_selector_chars: int = 4096
    max_hardware_profile_bytes: int = 16 * 1024
    max_profile_history: int = 50          # profiles kept per device, newest first
    # Reports from agents; theirs (AgentSettings.max_events_per_report, 50, and
    # max_windows_per_report, 100) stay below these, so a default agent is never refused.
    max_events_per_report: int = 100
    max_windows_per_report: int = 1000
    max_window_buckets: int = 64           # bucket bounds of one window's histogram
    # An install event's free-text message is cut to this (with a visible marker), not refused.
    max_event_message_chars: int = 2000
    # A finding's text fields (interpreter, its version, the output tensor's name) are cut to
    # this, as the message is: the event carrying them may be what a rollout waits for.
    max_finding_text_chars: int = 256
    # What GetDevice (`edgefleet device show`) sums per variant: this many of the device's most
    # recent metric windows at most (some three hours of one model's 10 s windows), so one call
    # reads a bounded number of rows however long the device has reported, and says when it
    # left some out. The rows are read, not sent: the answer holds one line per variant.
    device_metrics_max_windows: int = 1000

    # Tokens
    enrollment_token_default_uses: int = 1
    enrollment_token_default_ttl_seconds: int = 24 * 3600
    # How long a verified device credential is trusted without a database read. Keep it above
    # poll_interval_seconds so a device's every sync authenticates from memory; a device revoked
    # on another server keeps working for up to this long. Operator tokens are never cached.
    auth_cache_seconds: float = 120.0
    # Upper bounds an operator may ask for: a token good for a million devices or for years is
    # a leaked fleet, not a convenience. Ask for several tokens instead.
    enrollment_token_max_uses: int = 100_000
    operator_token_max_ttl_seconds: int = 5 * 366 * 24 * 3600
    max_description_chars: int = 200
    enrollment_token_max_ttl_seconds: int = 366 * 24 * 3600

    # The optimize pipeline (controlplane.optimize). Which variants a push yields: a kind left
    # out is recorded as skipped with this setting as the reason.
    variant_kinds: tuple[str, ...] = VARIANT_KINDS
    # The interpreter the reference outputs are computed in (the newest runtime, which runs
    # every kernel correctly), and those every variant is measured in: () is every interpreter
    # of the contract installed on this host.
    reference_interpreter: str = "ai-edge-litert"
    measure_interpreters: tuple[str, ...] = ()   # env EDGEFLEET_MEASURE_INTERPRETERS=a,b
    # Inputs measured on: at most this many calibration samples, or this many synthetic ones
    # from the input signature when the push brought none.
    measure_samples: int = 64
    synthetic_samples: int = 16
    # The accuracy a variant must keep against the reference on every output, per interpreter;
    # a push may ask for its own (model push --min-cosine/--min-top1).
    min_cosine: float = 0.99
    min_top1: float = 0.95
    # Golden samples in each variant's signed manifest: at most this many, and this many bytes.
    golden_samples: int = 4
    max_golden_bytes: int = 256 * 1024
    # Bounds one variant's build (the quantizer runs in a child process), and the calibration
    # samples the full-integer variant is calibrated on.
    build_timeout_seconds: int = 300
    quantize_samples: int = 256

    # Variant selection (controlplane.fleet.selection). A model plus its arena may take this
    # share of a device's available RAM; this much storage stays free after a download (the
    # agent's own reserve, AgentSettings.min_free_bytes, is the same 16 MiB); a hardware class's
    # reported latency counts once this many inferences of the variant arrived from it.
    selection_memory_share: float = 0.5
    selection_storage_reserve_bytes: int = 16 * MiB
    selection_min_class_inferences: int = 100
    # Per-class figures (model show --by-class, and the latency selection reads) sum at most
    # this many of a version's most recent windows.
    class_metrics_max_windows: int = 20_000

    # Background work
    rollout_tick_seconds: float = 2.0
    # Staged rollouts (controlplane.rollouts.plan): the defaults a plan leaves unset gets, and
    # what a plan may ask for at most. A device report about a rollout's device steps that
    # rollout at once, at most once per rollout_nudge_seconds per process (the tick does the rest).
    rollout_default_bake_seconds: int = 600
    rollout_default_step_timeout_seconds: int = 1800
    max_duration_seconds: int = 30 * 24 * 3600   # bake, step timeout, how far off a start may be
    max_waves: int = 20
    max_wave_devices: int = 10_000_000
    max_reason_chars: int = 1000                 # an operator's reason, kept in the audit log
    max_cron_chars: int = 256                    # a maintenance window's cron expression
    rollout_nudge_seconds: float = 0.5
    # Devices one engine step assigns at most (the rest on the next step): a wave of 100,000
    # devices is signed in bounded transactions, never in one that holds the rollout's lock
    # for minutes.
    rollout_assign_batch: int = 2000
    # Gate readings read at most this many windows per side and class (the most recent).
    gate_max_windows: int = 20_000
    # A p95 regression counts only when it is also this much slower (sub-millisecond models
    # move more than any ratio from noise).
    gate_p95_min_delta_ms: float = 1.0
    measure_runs: int = 20
    measure_timeout_seconds: int = 120
    # A version still pending after this long gets its pipeline task sent again.
    measure_resend_seconds: int = 300
    measure_sweep_seconds: float = 60.0
    # How often a server retries task sends the broker refused (Redis down).
    task_resend_seconds: float = 5.0
    # An upload temp file untouched this long was left by a killed server; the sweep deletes it.
    upload_stale_seconds: int = 3600

    # Server lifecycle
    shutdown_grace_seconds: float = 5.0
    # How long a server or worker waits at start for the database, Redis and `edgefleet init`
    # (processes may start in any order), and how often it looks again meanwhile.
    start_wait_seconds: float = 120.0
    start_poll_seconds: float = 2.0
    db_pool_threads: int = 8

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL in force (the embedded SQLite file when none was given)."""
        if self.database_url:
            return normalise_db_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'edgefleet.db').resolve()}"

    @property
    def embedded(self) -> bool:
        """True when background work runs inside the server on an in-memory broker."""
        return not self.redis_url

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing-key"

    @property
    def signing_public_key_path(self) -> Path:
        return self.data_dir / "signing-key.pub"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    def problems(self) -> list[str]:
        """What is wrong with the addresses and URLs a person typed (flags or environment),
        each as a message saying what to write instead; empty when all is well."""
        out = []
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            out.append(f"--listen {self.listen!r} is not HOST:PORT with a port 0-65535, "
                       f"e.g. 0.0.0.0:7443")
        if self.database_url is not None:
            scheme = self.database_url.split("://", 1)[0] if "://" in self.database_url else ""
            if scheme not in DB_SCHEMES:
                out.append(f"--db {redact_url(self.database_url)!r}: EdgeFleet runs on "
                           f"PostgreSQL (postgresql://USER@HOST/DB) or SQLite (sqlite:///FILE)")
        if self.redis_url is not None:
            scheme = self.redis_url.split("://", 1)[0] if "://" in self.redis_url else ""
            if scheme not in REDIS_SCHEMES:
                out.append(f"--redis {redact_url(self.redis_url)!r} is not a Redis URL: "
                           f"redis://HOST:6379/0 (rediss:// for TLS)")
        if (self.tls_cert is None) != (self.tls_key is None):
            out.append("--tls-cert and --tls-key go together: give both or neither")
        out.extend(self._push_problems())
        return out

    def _push_problems(self) -> list[str]:
        out = []
        if not 0 < self.watch_keepalive_seconds <= self.watch_max_seconds:
            out.append("need 0 < watch_keepalive_seconds <= watch_max_seconds")
        if self.watch_max_streams < 0 or self.desired_cache_size < 0:
            out.append("watch_max_streams and desired_cache_size must be >= 0 (0: none)")
        if self.desired_cache_max_age_seconds <= 0:
            out.append("desired_cache_max_age_seconds must be greater than 0")
        if min(self.notify_redis_timeout_seconds, self.notify_health_check_seconds) <= 0:
            out.append("notify_redis_timeout_seconds and notify_health_check_seconds must be > 0")
        if not 0 < self.notify_backoff_min_seconds <= self.notify_backoff_max_seconds:
            out.append("need 0 < notify_backoff_min_seconds <= notify_backoff_max_seconds")
        return out

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``EDGEFLEET_*`` variables, with non-None ``overrides`` winning.

        Raises ValueError for a variable that cannot be read (a malformed duration).
        """
        env: dict[str, object] = {}
        if v := os.environ.get("EDGEFLEET_DATA_DIR"):
            env["data_dir"] = Path(v)
        if v := os.environ.get("EDGEFLEET_LISTEN"):
            env["listen"] = v
        if v := os.environ.get("EDGEFLEET_DB"):
            env["database_url"] = v
        if v := os.environ.get("EDGEFLEET_REDIS"):
            env["redis_url"] = v
        if v := os.environ.get("EDGEFLEET_START_WAIT"):
            try:
                env["start_wait_seconds"] = float(parse_duration(v))
            except ValueError as exc:
                raise ValueError(f"EDGEFLEET_START_WAIT: {exc}") from exc
        for var, name, allowed in (
                ("EDGEFLEET_VARIANT_KINDS", "variant_kinds", VARIANT_KINDS),
                ("EDGEFLEET_MEASURE_INTERPRETERS", "measure_interpreters", tuple(INTERPRETERS))):
            if v := os.environ.get(var):
                env[name] = _names(var, v, allowed)
        env.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in env:
            env["data_dir"] = Path(str(env["data_dir"]))
        return cls(**env)  # type: ignore[arg-type]


def _names(var: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of names out of ``allowed``; ValueError naming ``var`` else."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"{var}: unknown {unknown}; use some of {', '.join(allowed)}")
    return names


def redact_url(url: str) -> str:
    """``url`` without its password (``scheme://user:***@host/...``), for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def normalise_db_url(url: str) -> str:
    """Accept ``postgresql://`` as users write it and use the psycopg 3 driver for it."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url
