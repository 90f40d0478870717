"""Simulated devices that speak the real DeviceService protocol, thousands to one process: a dev
tool for tests and benchmarks of the control plane at fleet scale (like ``modelgen``). It never
imports ``agent``; what it checks it checks with ``protos.contract``.

What a ``SimulatedDevice`` does on the wire, as ``edgefleet-agent run`` does:
- ``Enroll`` with an enrollment token, a random enrollment key of its own (asked again with the
  same key after a transient error, so a lost answer spends no second use) and the hardware
  profile it was given (``hardware_profile``): tests make devices of several hardware classes
  (arch, interpreter name and version, RAM, delegates; ``controlplane.fleet.classes``).
- ``Sync`` with its ``known_sequence`` and its active models (its profile with the first one).
  A desired state is verified with the fleet's public key (``DATA_DIR/signing-key.pub``)
  before it is used: signature, type, device, expiry, sequence order, every entry's manifest
  and its agreement with the entry. A refused document is reported ``failed`` once (empty ref)
  and the device keeps what it had; an older sequence is refused too.
- Each new entry: ``downloading``; ``DownloadArtifact`` from offset 0, every byte, length capped
  and sha256 checked against the manifest (``SimSettings.download`` False skips the transfer,
  for speed); ``verified``; ``proven``; then ``active`` (``staged`` instead while the entry
  carries ``"hold": true``: downloaded, not activated, until a desired state without the hold).
  Its ``Behaviour`` may make the install ``failed`` or ``incompatible`` (with a Finding), or
  the activation end in ``rolled_back`` after its probation (with a Finding; back to the kept
  previous version, ``failed`` while still serving when there is none). A model the desired
  state dropped is ``removed``. Each event goes out right after its step (best effort), and
  what could not be sent goes with the next round, events before windows, as the agent's
  buffer sends them.
- ``ReportMetrics``: windows of the real shape (a UUID per window, the agent's default bucket
  bounds laid out as ``protos.contract.histograms`` says, count, errors, nonfinite, sum, max)
  for each model it serves, drawn from its behaviour for that version and variant: log-normal
  latency around a p50 with a spread, error and non-finite rates, inferences per second.
- Rounds every poll interval, jittered; transport errors back off exponentially. When the
  server's DeviceService stub has ``Watch`` (a server stream of "your desired state changed"),
  the device holds one and a push wakes it for a round at once; UNIMPLEMENTED turns it off.

What it does not simulate: no model is loaded or run (no interpreter, no inference: figures are
drawn, not measured), golden samples are not fetched, nothing is written to disk (no restart,
no crash safety, the unsent reports live in memory), no TLS, no local inference endpoint.

Scale: devices share ``channels`` channels (each its own HTTP/2 connection); every call carries
its own device's bearer token and a timeout, and semaphores bound the calls, downloads and
enrollments in flight, so 10,000 devices never open 10,000 downloads at once. Every wait of the
public API takes a timeout and raises ``SimulationTimeout`` past it.

Use from an async test: ``async with SimulatedFleet(addr, key_pem) as fleet``; from synchronous
code, ``FleetThread`` runs the same fleet on a loop of its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc
from protos.contract import ContractError
from protos.contract.documents import (
    DESIRED_STATE_TYPE,
    ENTRY_FIELDS,
    MANIFEST_TYPE,
    Signed,
    SignedLike,
    parse_payload,
    parse_rfc3339,
)
from protos.contract.findings import (
    GOLDEN_MISMATCH,
    LATENCY_BUDGET,
    LOAD_FAILED,
    PROBATION_ERRORS,
    PROBATION_LATENCY,
    PROBATION_NONFINITE,
    VALIDATION_FAILED,
)
from protos.contract.histograms import check_window
from protos.contract.identifiers import is_sha256

T = TypeVar("T")
GiB = 1024**3
MiB = 1024**2
#: Codes worth asking again after a backoff (as the agent's ``agent.transport``).
TRANSIENT_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
})
INSTALL_FAILURES = {LOAD_FAILED: "failed", VALIDATION_FAILED: "failed",
                    LATENCY_BUDGET: "failed", GOLDEN_MISMATCH: "incompatible"}
ROLLBACK_REASONS = frozenset({PROBATION_ERRORS, PROBATION_NONFINITE, PROBATION_LATENCY})
#: DeviceService.Watch and its request, looked up by name: not in every server's protos yet.
WATCH_RPC, WATCH_REQUEST = "Watch", "WatchRequest"
#: The agent's default ``latency_buckets_ms`` (agent.settings), so windows look like a default
#: agent's and merge with them exactly on the server.
AGENT_BUCKETS_MS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0)


class SimulationError(Exception):
    """The root of what the simulator raises: a refused enrollment, a wait that timed out."""


class EnrollmentRefused(SimulationError):
    """The server refused an enrollment for a reason asking again will not fix."""


class SimulationTimeout(SimulationError):
    """A wait of the public API did not see what it waited for within its timeout."""


@dataclass(frozen=True)
class SimSettings:
    """Every bound and interval of a simulated fleet."""

    poll_seconds: float = 5.0           # between rounds (the agent's --poll-interval)
    jitter: float = 0.2                 # each wait is poll_seconds * (1 +- jitter)
    rpc_timeout_seconds: float = 30.0
    download_timeout_seconds: float = 300.0
    watch_timeout_seconds: float = 300.0   # a watch stream is opened again after this
    channels: int = 4                   # HTTP/2 connections the devices share
    max_calls_in_flight: int = 256      # unary calls, all devices together
    max_downloads_in_flight: int = 32
    max_enrollments_in_flight: int = 32
    enroll_attempts: int = 8            # transient failures of one Enroll before giving up
    backoff_min_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    metrics_window_seconds: float = 10.0
    latency_buckets_ms: tuple[float, ...] = AGENT_BUCKETS_MS
    max_events_per_report: int = 50     # the agent's defaults, below the server's limits
    max_windows_per_report: int = 100
    max_message_bytes: int = 4 * MiB
    download: bool = True               # False: trust the entry's size and sha256 unread
    watch: bool = True                  # use DeviceService.Watch when the server has it

    def __post_init__(self) -> None:
        for name in ("poll_seconds", "rpc_timeout_seconds", "download_timeout_seconds",
                     "watch_timeout_seconds", "metrics_window_seconds",
                     "backoff_min_seconds", "backoff_max_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be greater than 0")
        for name in ("channels", "max_calls_in_flight", "max_downloads_in_flight",
                     "max_enrollments_in_flight", "enroll_attempts", "max_events_per_report",
                     "max_windows_per_report"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")


@dataclass(frozen=True)
class Behaviour:
    """How a device runs one version (or variant) of a model: what its windows say and whether
    the install or the probation fails.

    ``install_failure``: a finding reason (``load_failed``, ``validation_failed``,
    ``latency_budget``: reported ``failed``; ``golden_mismatch``: ``incompatible``).
    ``rollback``: a probation reason (``probation_errors``, ``probation_nonfinite``,
    ``probation_latency``): ``probation_seconds`` after activation the device goes back to
    its kept previous version and reports ``rolled_back``.
    """

    latency_p50_ms: float = 2.0
    latency_spread: float = 0.25        # sigma of the log latency (0: every call at p50)
    error_rate: float = 0.0
    nonfinite_rate: float = 0.0
    inferences_per_second: float = 5.0
    install_failure: str | None = None
    rollback: str | None = None
    probation_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.latency_p50_ms <= 0 or self.latency_spread < 0:
            raise ValueError("latency_p50_ms must be > 0 and latency_spread >= 0")
        if not (0 <= self.error_rate <= 1 and 0 <= self.nonfinite_rate <= 1):
            raise ValueError("error_rate and nonfinite_rate must be in [0, 1]")
        if self.inferences_per_second < 0 or self.probation_seconds < 0:
            raise ValueError("inferences_per_second and probation_seconds must be >= 0")
        if self.install_failure is not None and self.install_failure not in INSTALL_FAILURES:
            raise ValueError(f"install_failure must be one of {sorted(INSTALL_FAILURES)}")
        if self.rollback is not None and self.rollback not in ROLLBACK_REASONS:
            raise ValueError(f"rollback must be one of {sorted(ROLLBACK_REASONS)}")

    def latency_quantile_ms(self, z: float) -> float:
        """The latency at the standard normal quantile ``z`` (1.645: p95)."""
        return self.latency_p50_ms * math.exp(self.latency_spread * z)


#: Behaviours by ``"VERSION/VARIANT"``, ``"VERSION"``, ``"VARIANT"`` or ``"*"`` (tried in that
#: order); a ref none of them names runs with ``Behaviour()``.
Behaviours = Mapping[str, Behaviour]


def behaviour_for(behaviours: Behaviours, version: str, variant: str) -> Behaviour:
    for key in (f"{version}/{variant}", version, variant, "*"):
        if key in behaviours:
            return behaviours[key]
    return Behaviour()


def hardware_profile(*, arch: str = "aarch64", interpreter: str = "tflite-runtime",
                     interpreter_version: str = "2.14.0", ram_bytes: int = 4 * GiB,
                     cpu_cores: int = 4, storage_free_bytes: int = 16 * GiB,
                     delegates: Sequence[str] = ("xnnpack",), os: str = "linux",
                     cpu_model: str = "simulated") -> pb.HardwareProfile:
    """A device's hardware profile as an agent reports it (what makes its class: arch,
    interpreter name and release series, RAM tier, accelerator delegates)."""
    return pb.HardwareProfile(
        arch=arch, cpu_model=cpu_model, cpu_cores=cpu_cores, ram_bytes=ram_bytes,
        ram_available_bytes=ram_bytes * 3 // 4, storage_free_bytes=storage_free_bytes, os=os,
        interpreter=pb.InterpreterInfo(name=interpreter, version=interpreter_version),
        delegates=list(delegates),
    )


def load_trust_key(pem: bytes) -> Ed25519PublicKey:
    """The fleet's ed25519 public key from its PEM (``signing-key.pub``). Raises ValueError."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the trust key must be an ed25519 public key")
    return key


# -- desired states, verified -------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    model: str
    version: str
    variant: str
    sha256: str

    def to_proto(self) -> pb.ModelRef:
        return pb.ModelRef(model=self.model, version=self.version, variant=self.variant,
                           sha256=self.sha256)

    def __str__(self) -> str:
        return f"{self.model}:{self.version} ({self.variant})"


@dataclass(frozen=True)
class Entry:
    ref: Ref
    size: int
    hold: bool


@dataclass(frozen=True)
class Desired:
    sequence: int
    entries: tuple[Entry, ...]


def _verified(signed: SignedLike, key: Ed25519PublicKey, doc_type: str) -> dict[str, Any]:
    try:
        key.verify(bytes(signed.signature), bytes(signed.payload))
    except InvalidSignature as exc:
        raise ContractError("the signature does not verify against the trust key") from exc
    doc = parse_payload(signed.payload)
    if doc.get("type") != doc_type:
        raise ContractError(f"document type {doc.get('type')!r}, expected {doc_type!r}")
    return doc


def verify_desired_state(signed: SignedLike, key: Ed25519PublicKey, *, device_id: str,
                         held_sequence: int, now: datetime) -> Desired | None:
    """The desired state in ``signed``, checked in the contract's order (signature, type,
    device, expiry, sequence, each entry's manifest); None when its sequence is the one held.
    Raises ContractError."""
    doc = _verified(signed, key, DESIRED_STATE_TYPE)
    if doc.get("device_id") != device_id:
        raise ContractError(f"desired state for device {doc.get('device_id')!r}, "
                            f"this is {device_id!r}")
    if parse_rfc3339(doc.get("expires_at")) <= now:
        raise ContractError(f"desired state expired at {doc['expires_at']}")
    sequence = doc.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise ContractError(f"sequence {sequence!r} is not a positive integer")
    if sequence == held_sequence:
        return None
    if sequence < held_sequence:
        raise ContractError(f"sequence {sequence} is older than the held {held_sequence}")
    models = doc.get("models")
    if not isinstance(models, list):
        raise ContractError("desired state has no list of models")
    entries = tuple(_entry(raw, key) for raw in models)
    if len({e.ref.model for e in entries}) != len(entries):
        raise ContractError("desired state lists a model twice")
    return Desired(sequence, entries)


def _entry(raw: object, key: Ed25519PublicKey) -> Entry:
    if not isinstance(raw, dict):
        raise ContractError("desired state entry is not an object")
    manifest = _verified(Signed.from_json(raw.get("manifest")), key, MANIFEST_TYPE)
    for name in ENTRY_FIELDS:
        if name not in raw or manifest.get(name) != raw[name]:
            raise ContractError(f"entry and manifest of {raw.get('model')!r} disagree on {name}")
    size = raw["size"]
    if not is_sha256(raw["sha256"]) or not isinstance(size, int) or size < 0:
        raise ContractError(f"entry {raw['model']!r} has a bad sha256 or size")
    ref = Ref(str(raw["model"]), str(raw["version"]), str(raw["variant"]), raw["sha256"])
    return Entry(ref, size, raw.get("hold") is True)


# -- one device ---------------------------------------------------------------------------------


@dataclass
class _Window:
    ref: Ref
    start: datetime
    opened: float                       # monotonic


@dataclass
class DeviceLink:
    """What a device shares with the rest of its fleet: a stub on one of the channels, the
    semaphores, the trust key and the settings."""

    stub: pb_grpc.DeviceServiceStub
    calls: asyncio.Semaphore
    downloads: asyncio.Semaphore
    key: Ed25519PublicKey
    settings: SimSettings
    watch: bool


class SimulatedDevice:
    """One device's protocol state; its ``run`` task does rounds until the fleet stops.

    Read from the fleet's loop only (``SimulatedFleet.wait_until`` predicates run there):
    ``active`` (model -> Ref served), ``states`` (model -> last reported install state),
    ``sequence``, ``sent_windows``/``sent_inferences``/``sent_errors``/``sent_nonfinite``
    (in reports the server acknowledged) and ``last_error``.
    """

    def __init__(self, index: int, link: DeviceLink, *, hardware: pb.HardwareProfile,
                 behaviours: Behaviours, name: str, labels: Mapping[str, str],
                 seed: int) -> None:
        self.index = index
        self.name = name
        self.labels = dict(labels)
        self.hardware = hardware
        self.behaviours = dict(behaviours)
        self.enrollment_key = secrets.token_urlsafe(24)
        self.device_id = ""
        self._token = ""
        self._link = link
        self._rng = np.random.default_rng(seed)
        self._jitter = random.Random(seed)
        self._wake = asyncio.Event()
        self._stopping = False
        self._hardware_sent = False
        self.desired: Desired | None = None
        self.active: dict[str, Ref] = {}
        self.kept: dict[str, Ref] = {}       # the previous version, for a rollback
        self.staged: dict[str, Ref] = {}     # downloaded and proven, held
        self.states: dict[str, str] = {}
        self._refused: set[str] = set()      # sha256s refused under ``desired``
        self._refused_fingerprint = ""
        self._probation: dict[str, float] = {}   # model -> monotonic end of probation
        self._windows_open: dict[str, _Window] = {}
        self._events: list[pb.InstallEvent] = []
        self._windows: list[pb.MetricWindow] = []
        #: (model, version) -> time.monotonic() of its (last) activation here.
        self.activated_at: dict[tuple[str, str], float] = {}
        self.sent_windows = 0
        self.sent_inferences = 0
        self.sent_errors = 0
        self.sent_nonfinite = 0
        self.rounds = 0
        self.last_error = ""

    @property
    def sequence(self) -> int:
        return self.desired.sequence if self.desired else 0

    def behaviour(self, ref: Ref) -> Behaviour:
        return behaviour_for(self.behaviours, ref.version, ref.variant)

    # -- enrollment --------------------------------------------------------------------------

    async def enroll(self, token: str, enrollments: asyncio.Semaphore) -> None:
        """Enroll with ``token`` (asked again, same key, after a transient error).

        Raises EnrollmentRefused (refused, or still failing after ``enroll_attempts``)."""
        settings = self._link.settings
        request = pb.EnrollRequest(name=self.name, hardware=self.hardware, labels=self.labels,
                                   enrollment_key=self.enrollment_key)
        delay = settings.backoff_min_seconds
        for attempt in range(1, settings.enroll_attempts + 1):
            try:
                async with enrollments:
                    response = await self._link.stub.Enroll(
                        request, timeout=settings.rpc_timeout_seconds, metadata=_bearer(token))
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in TRANSIENT_CODES or attempt == settings.enroll_attempts:
                    raise EnrollmentRefused(
                        f"device {self.name}: Enroll answered {exc.code().name}: "
                        f"{exc.details()}") from exc
                await asyncio.sleep(self._jittered(delay))
                delay = min(delay * 2, settings.backoff_max_seconds)
                continue
            self.device_id, self._token = response.device_id, response.device_token
            return

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Rounds until ``stop``: a transport error backs off, anything else is kept in
        ``last_error`` and backs off too (a simulator bug costs a round, not the fleet)."""
        settings = self._link.settings
        self._stopping = False
        watcher = asyncio.create_task(self._watch()) if self._link.watch else None
        backoff = settings.backoff_min_seconds
        try:
            while not self._stopping:
                try:
                    await self._round()
                    self.last_error = ""
                    delay, backoff = settings.poll_seconds, settings.backoff_min_seconds
                except grpc.aio.AioRpcError as exc:
                    self.last_error = f"{exc.code().name}: {exc.details()}"
                    delay, backoff = backoff, min(backoff * 2, settings.backoff_max_seconds)
                except (ContractError, ValueError) as exc:
                    self.last_error = str(exc)
                    delay, backoff = backoff, min(backoff * 2, settings.backoff_max_seconds)
                await self._idle(self._jittered(delay))
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            for model in list(self._windows_open):   # kept for the next run, as the agent
                self._close_window(model)            # keeps its open window at stop

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _round(self) -> None:
        self.rounds += 1
        await self._flush()
        request = pb.SyncRequest(known_sequence=self.sequence,
                                 active=[r.to_proto() for r in self.active.values()])
        if not self._hardware_sent:
            request.hardware.CopyFrom(self.hardware)
        response = await self._call("Sync", request)
        self._hardware_sent = True
        if response.HasField("desired_state"):
            self._accept(response.desired_state)
        await self._reconcile()
        self._tick()
        await self._flush()

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, closing windows and ending probations when due; a watch push or
        ``stop`` ends the wait early."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
            self._wake.clear()
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(remaining, self._next_due()))
                woken = True
            if self._tick():
                await self._quietly(self._flush())
            if woken:
                return

    def _next_due(self) -> float:
        now = time.monotonic()
        dues = [w.opened + self._link.settings.metrics_window_seconds - now
                for w in self._windows_open.values()]
        dues += [end - now for end in self._probation.values()]
        return max(0.01, min(dues, default=self._link.settings.poll_seconds))

    async def _watch(self) -> None:
        """Hold a Watch stream; every message wakes the device for a round. Ends for good when
        the server does not implement it."""
        settings = self._link.settings
        backoff = settings.backoff_min_seconds
        while not self._stopping:
            try:
                call = getattr(self._link.stub, WATCH_RPC)(
                    _watch_request(self.sequence), metadata=_bearer(self._token),
                    timeout=settings.watch_timeout_seconds)
                async for _ in call:
                    backoff = settings.backoff_min_seconds
                    self._wake.set()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    await asyncio.sleep(self._jittered(backoff))
                    backoff = min(backoff * 2, settings.backoff_max_seconds)

    # -- desired state -----------------------------------------------------------------------

    def _accept(self, signed: pb.SignedDocument) -> None:
        try:
            desired = verify_desired_state(signed, self._link.key, device_id=self.device_id,
                                           held_sequence=self.sequence, now=datetime.now(UTC))
        except ContractError as exc:
            fingerprint = hashlib.sha256(signed.payload + signed.signature).hexdigest()
            if fingerprint != self._refused_fingerprint:   # once per document, not per poll
                self._refused_fingerprint = fingerprint
                self._event(None, "failed", f"desired state refused: {exc}")
            return
        if desired is not None:
            self.desired, self._refused = desired, set()

    async def _reconcile(self) -> None:
        if self.desired is None:
            return
        wanted = {e.ref.model: e for e in self.desired.entries}
        for entry in wanted.values():
            ref = entry.ref
            if self.active.get(ref.model) == ref or ref.sha256 in self._refused:
                continue
            if self.staged.get(ref.model) != ref:
                if not await self._fetch(entry):
                    continue
                self.staged[ref.model] = ref
                if entry.hold:
                    await self._report(ref, "staged", "downloaded and proven; held")
            if not entry.hold:
                del self.staged[ref.model]
                self._activate(ref)
            await self._quietly(self._flush_events())
        for model in [m for m in self.active if m not in wanted]:
            ref = self.active.pop(model)
            self._close_window(model)
            self.kept.pop(model, None)
            self._probation.pop(model, None)
            await self._report(ref, "removed", "no longer in the desired state")

    async def _fetch(self, entry: Entry) -> bool:
        """Download, verify and "prove" ``entry``; False (reported) when it is refused.
        Raises grpc.aio.AioRpcError when the download was interrupted (tried again later)."""
        ref = entry.ref
        await self._report(ref, "downloading", f"{entry.size} bytes")
        if self._link.settings.download:
            size, digest = await self._download(ref.sha256, entry.size)
            if size != entry.size or digest != ref.sha256:
                self._refused.add(ref.sha256)
                await self._report(ref, "failed",
                                   f"artifact is {size} bytes with sha256 {digest}; the "
                                   f"manifest says {entry.size} and {ref.sha256}")
                return False
        await self._report(ref, "verified", "length, sha256 and signature match the manifest")
        failure = self.behaviour(ref).install_failure
        if failure is not None:
            self._refused.add(ref.sha256)
            await self._report(ref, INSTALL_FAILURES[failure], f"simulated {failure}",
                               self._finding(failure, observed=1.0, limit=0.0))
            return False
        await self._report(ref, "proven", "golden samples reproduced (simulated)")
        return True

    async def _download(self, sha256: str, size: int) -> tuple[int, str]:
        """Every byte of artifact ``sha256``, at most ``size``: (length, sha256 hex)."""
        digest, received = hashlib.sha256(), 0
        async with self._link.downloads:
            call = self._link.stub.DownloadArtifact(
                pb.DownloadRequest(sha256=sha256, offset=0), metadata=_bearer(self._token),
                timeout=self._link.settings.download_timeout_seconds)
            async for chunk in call:
                if chunk.offset != received or received + len(chunk.data) > size:
                    call.cancel()
                    return received + len(chunk.data), "(not the announced bytes)"
                digest.update(chunk.data)
                received += len(chunk.data)
        return received, digest.hexdigest()

    def _activate(self, ref: Ref) -> None:
        previous = self.active.get(ref.model)
        self._close_window(ref.model)
        if previous is not None:
            self.kept[ref.model] = previous
        self.active[ref.model] = ref
        self.activated_at[ref.model, ref.version] = time.monotonic()
        behaviour = self.behaviour(ref)
        if behaviour.rollback is not None:
            self._probation[ref.model] = time.monotonic() + behaviour.probation_seconds
        self._event(ref, "active", "serving (simulated)")

    # -- time passing: windows and probation -------------------------------------------------

    def _tick(self) -> bool:
        """Close due windows, end due probations; True when something waits to be sent."""
        now = time.monotonic()
        for model, end in list(self._probation.items()):
            if end <= now:
                del self._probation[model]
                self._roll_back(model)
        for model, window in list(self._windows_open.items()):
            if now - window.opened >= self._link.settings.metrics_window_seconds:
                self._close_window(model)
        for model, ref in self.active.items():
            if model not in self._windows_open:
                self._windows_open[model] = _Window(ref, datetime.now(UTC), now)
        return bool(self._events or self._windows)

    def _roll_back(self, model: str) -> None:
        ref = self.active[model]
        behaviour = self.behaviour(ref)
        reason = behaviour.rollback or PROBATION_ERRORS
        observed, limit = {
            PROBATION_ERRORS: (behaviour.error_rate, 0.05),
            PROBATION_NONFINITE: (behaviour.nonfinite_rate, 0.0),
            PROBATION_LATENCY: (behaviour.latency_quantile_ms(1.645),
                                4 * behaviour.latency_quantile_ms(1.645)),
        }[reason]
        finding = self._finding(reason, observed=observed, limit=limit)
        self._refused.add(ref.sha256)
        self._close_window(model)
        kept = self.kept.pop(model, None)
        if kept is None:
            self._event(ref, "failed", f"simulated {reason}; no previous version to roll back "
                                       "to, still serving it", finding)
            return
        self.active[model] = kept
        self._event(kept, "active", f"rolled back from {ref.version} ({ref.variant})")
        self._event(ref, "rolled_back", f"simulated {reason}", finding)

    def _close_window(self, model: str) -> None:
        window = self._windows_open.pop(model, None)
        if window is None:
            return
        seconds = max(0.0, time.monotonic() - window.opened)
        behaviour = self.behaviour(window.ref)
        count = int(self._rng.poisson(behaviour.inferences_per_second * seconds))
        if count == 0:
            return   # the agent draws a window's id at its first inference: no empty windows
        latencies = behaviour.latency_p50_ms * np.exp(
            behaviour.latency_spread * self._rng.standard_normal(count))
        bounds = self._link.settings.latency_buckets_ms
        # side="left": a latency equal to a bound is counted in that bound's bucket.
        counts = np.bincount(np.searchsorted(bounds, latencies, side="left"),
                             minlength=len(bounds) + 1)
        errors = int(self._rng.binomial(count, behaviour.error_rate))
        nonfinite = int(self._rng.binomial(count, behaviour.nonfinite_rate))
        total, peak = float(latencies.sum()), float(latencies.max())
        check_window(bounds, counts.tolist(), count=count, errors=errors, nonfinite=nonfinite,
                     latency_sum_ms=total, latency_max_ms=peak)
        proto = pb.MetricWindow(
            window_id=str(uuid.uuid4()), ref=window.ref.to_proto(), count=count, errors=errors,
            bucket_bounds_ms=bounds, bucket_counts=counts.tolist(), latency_sum_ms=total,
            latency_max_ms=peak, nonfinite=nonfinite)
        proto.start.FromDatetime(window.start)
        proto.end.FromDatetime(datetime.now(UTC))
        self._windows.append(proto)

    # -- reports -----------------------------------------------------------------------------

    def _finding(self, reason: str, *, observed: float, limit: float) -> pb.Finding:
        return pb.Finding(reason=reason, interpreter=self.hardware.interpreter.name,
                          interpreter_version=self.hardware.interpreter.version,
                          sample=0 if reason == GOLDEN_MISMATCH else -1,
                          observed=observed, limit=limit)

    def _event(self, ref: Ref | None, state: str, message: str,
               finding: pb.Finding | None = None) -> None:
        event = pb.InstallEvent(ref=ref.to_proto() if ref else pb.ModelRef(), state=state,
                                message=message, finding=finding)
        event.at.FromDatetime(datetime.now(UTC))
        self._events.append(event)
        if ref is not None:
            self.states[ref.model] = state

    async def _report(self, ref: Ref | None, state: str, message: str,
                      finding: pb.Finding | None = None) -> None:
        """An install step, told to the server at once (best effort), as the agent does."""
        self._event(ref, state, message, finding)
        await self._quietly(self._flush_events())

    async def _flush(self) -> None:
        """Events, then windows, oldest first; what a failed call carried stays for the next."""
        await self._flush_events()
        limit = self._link.settings.max_windows_per_report
        while self._windows:
            batch = self._windows[:limit]
            await self._call("ReportMetrics", pb.MetricsReport(windows=batch))
            del self._windows[:len(batch)]
            self.sent_windows += len(batch)
            self.sent_inferences += sum(w.count for w in batch)
            self.sent_errors += sum(w.errors for w in batch)
            self.sent_nonfinite += sum(w.nonfinite for w in batch)

    async def _flush_events(self) -> None:
        limit = self._link.settings.max_events_per_report
        while self._events:
            batch = self._events[:limit]
            await self._call("ReportStatus", pb.StatusReport(
                events=batch, active=[r.to_proto() for r in self.active.values()]))
            del self._events[:len(batch)]

    async def _quietly(self, report: Awaitable[None]) -> None:
        """Best effort now; what fails is sent with the next round."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            await report

    async def _call(self, rpc: str, request: Any) -> Any:
        async with self._link.calls:
            method = getattr(self._link.stub, rpc)
            return await method(request, timeout=self._link.settings.rpc_timeout_seconds,
                                metadata=_bearer(self._token))

    def _jittered(self, seconds: float) -> float:
        j = self._link.settings.jitter
        return seconds * (1 + self._jitter.uniform(-j, j))


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    # As agent.transport.bearer: the server's interceptor reads this form.
    return (("authorization", f"Bearer {token}"),)


def _watch_request(sequence: int) -> Any:
    """A WatchRequest carrying ``known_sequence`` when the message has that field."""
    message = getattr(pb, WATCH_REQUEST)()
    if "known_sequence" in message.DESCRIPTOR.fields_by_name:
        message.known_sequence = sequence
    return message


# -- the fleet ----------------------------------------------------------------------------------


@dataclass
class FleetCounts:
    """How many devices stand where, for one model (``SimulatedFleet.counts``)."""

    devices: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_version: dict[str, int] = field(default_factory=dict)   # of the active ones
    erroring: int = 0                                          # last round failed


class SimulatedFleet:
    """Devices sharing ``settings.channels`` channels to ``address``; use on one event loop.

    ``async with SimulatedFleet(address, trust_key_pem) as fleet``: ``enroll`` devices (in
    batches of any hardware and behaviour), ``start`` their loops, ``wait_until`` what a test
    waits for; leaving the block stops every device and closes the channels.
    """

    def __init__(self, address: str, trust_key_pem: bytes, settings: SimSettings | None = None,
                 *, seed: int = 0) -> None:
        self.address = address
        self.settings = settings or SimSettings()
        self._key = load_trust_key(trust_key_pem)
        self._seed = seed
        self.devices: list[SimulatedDevice] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._channels: list[grpc.aio.Channel] = []
        self._stubs: list[pb_grpc.DeviceServiceStub] = []
        self._calls: asyncio.Semaphore | None = None
        self._downloads: asyncio.Semaphore | None = None
        self._enrollments: asyncio.Semaphore | None = None

    async def __aenter__(self) -> SimulatedFleet:
        limit = self.settings.max_message_bytes
        for i in range(self.settings.channels):
            # A local subchannel pool (and a distinct argument) gives each channel its own TCP
            # connection: channels with equal arguments would share one.
            options = [("grpc.max_receive_message_length", limit),
                       ("grpc.max_send_message_length", limit),
                       ("grpc.use_local_subchannel_pool", 1), ("edgefleet.sim_channel", i)]
            channel = grpc.aio.insecure_channel(self.address, options=options)
            self._channels.append(channel)
            self._stubs.append(pb_grpc.DeviceServiceStub(channel))
        self._calls = asyncio.Semaphore(self.settings.max_calls_in_flight)
        self._downloads = asyncio.Semaphore(self.settings.max_downloads_in_flight)
        self._enrollments = asyncio.Semaphore(self.settings.max_enrollments_in_flight)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        for channel in self._channels:
            await channel.close()

    @property
    def watching(self) -> bool:
        """Whether devices hold Watch streams (the server's stub has it, and settings allow)."""
        return self.settings.watch and bool(self._stubs) and hasattr(self._stubs[0], WATCH_RPC)

    async def enroll(self, token: str, count: int, *, hardware: pb.HardwareProfile,
                     behaviours: Behaviours | None = None,
                     labels: Mapping[str, str] | None = None,
                     name: str = "sim") -> list[SimulatedDevice]:
        """Enroll ``count`` new devices with ``token`` (it needs that many uses), at most
        ``max_enrollments_in_flight`` at once; they are named ``NAME-<index>``.

        Raises EnrollmentRefused (the first refusal; devices enrolled before it are kept)."""
        if self._calls is None or self._downloads is None or self._enrollments is None:
            raise RuntimeError("enter the fleet (async with) before enrolling")
        new = []
        for _ in range(count):
            index = len(self.devices)
            link = DeviceLink(self._stubs[index % len(self._stubs)], self._calls,
                              self._downloads, self._key, self.settings, self.watching)
            device = SimulatedDevice(index, link, hardware=hardware,
                                     behaviours=behaviours or {}, name=f"{name}-{index}",
                                     labels=labels or {}, seed=self._seed * 1_000_003 + index)
            self.devices.append(device)
            new.append(device)
        results = await asyncio.gather(*(d.enroll(token, self._enrollments) for d in new),
                                       return_exceptions=True)
        enrolled = [d for d, r in zip(new, results, strict=True) if r is None]
        refused = {d.index for d, r in zip(new, results, strict=True) if r is not None}
        self.devices = [d for d in self.devices if d.index not in refused]
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return enrolled

    def start(self, devices: Iterable[SimulatedDevice] | None = None) -> None:
        """Start the round loop of ``devices`` (default: every enrolled one not running)."""
        for device in self.devices if devices is None else devices:
            if device.index not in self._tasks:
                self._tasks[device.index] = asyncio.create_task(device.run(),
                                                                name=device.name)

    async def stop(self) -> None:
        """Stop every device after the round it is in (so what a device counts as sent is what
        the server acknowledged); a device still busy after two call timeouts is cancelled."""
        for device in self.devices:
            device.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=2 * self.settings.rpc_timeout_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def counts(self, model: str) -> FleetCounts:
        counts = FleetCounts(devices=len(self.devices))
        for d in self.devices:
            state = d.states.get(model, "none")
            counts.by_state[state] = counts.by_state.get(state, 0) + 1
            if (ref := d.active.get(model)) is not None:
                counts.by_version[ref.version] = counts.by_version.get(ref.version, 0) + 1
            counts.erroring += bool(d.last_error)
        return counts

    async def wait_until(self, what: str, done: Callable[[list[SimulatedDevice]], bool], *,
                         timeout: float, check_seconds: float = 0.1) -> None:
        """Wait until ``done(devices)``. Raises SimulationTimeout naming ``what`` and the
        devices' last errors past ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self.devices):
            for task in self._tasks.values():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise SimulationError(f"a device loop died: {task.exception()!r}")
            if time.monotonic() > deadline:
                errors = sorted({d.last_error for d in self.devices if d.last_error})[:5]
                raise SimulationTimeout(f"timed out after {timeout:g} s waiting for {what}; "
                                        f"last errors: {errors or 'none'}")
            await asyncio.sleep(check_seconds)

    async def wait_active(self, model: str, version: str, *, timeout: float,
                          devices: Sequence[SimulatedDevice] | None = None) -> None:
        """Wait until every device of ``devices`` (default all) serves ``model:version`` and
        the server heard it (no event left unsent)."""
        members = list(self.devices if devices is None else devices)

        def done(_: list[SimulatedDevice]) -> bool:
            return all((r := d.active.get(model)) is not None and r.version == version
                       and not d._events for d in members)

        await self.wait_until(f"{len(members)} devices active on {model}:{version}", done,
                              timeout=timeout)


class FleetThread:
    """A ``SimulatedFleet`` on an event loop in a thread of its own, for synchronous tests and
    benchmarks: ``call`` runs one of the fleet's coroutines there and waits for it (with a
    timeout); ``with FleetThread(...) as ft`` stops everything on exit."""

    def __init__(self, address: str, trust_key_pem: bytes, settings: SimSettings | None = None,
                 *, seed: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleetsim",
                                        daemon=True)
        self.fleet = SimulatedFleet(address, trust_key_pem, settings, seed=seed)

    def __enter__(self) -> FleetThread:
        self._thread.start()
        self.call(self.fleet.__aenter__(), timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.fleet.__aexit__(None, None, None), timeout=self._stop_timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()

    @property
    def _stop_timeout(self) -> float:
        # SimulatedFleet.stop waits two call timeouts for rounds in flight, then cancels.
        return 3 * self.fleet.settings.rpc_timeout_seconds + 30

    def call(self, coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
        """Run ``coro`` on the fleet's loop. Raises SimulationTimeout past ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise SimulationTimeout(f"a fleet call took more than {timeout:g} s") from exc

    def enroll(self, token: str, count: int, *, hardware: pb.HardwareProfile,
               behaviours: Behaviours | None = None, labels: Mapping[str, str] | None = None,
               name: str = "sim", timeout: float = 600) -> list[SimulatedDevice]:
        return self.call(self.fleet.enroll(token, count, hardware=hardware,
                                           behaviours=behaviours, labels=labels, name=name),
                         timeout=timeout)

    def start(self) -> None:
        async def start() -> None:
            self.fleet.start()
        self.call(start(), timeout=60)

    def stop(self) -> None:
        """Stop every device's loop (what they reported stays readable)."""
        self.call(self.fleet.stop(), timeout=self._stop_timeout)

    def wait_active(self, model: str, version: str, *, timeout: float,
                    devices: Sequence[SimulatedDevice] | None = None) -> None:
        self.call(self.fleet.wait_active(model, version, timeout=timeout, devices=devices),
                  timeout=timeout + 30)

    def counts(self, model: str) -> FleetCounts:
        async def counts() -> FleetCounts:
            return self.fleet.counts(model)
        return self.call(counts(), timeout=60)
