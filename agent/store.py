"""The agent's on-disk state in its data dir, written so a crash never leaves half a file.

Layout::

    DATA_DIR/credential.json         device_id, device_token, server (mode 0600)
    DATA_DIR/enrollment-key          random, made before the first Enroll (mode 0600): an Enroll
                                     repeated after a lost answer gets the same device back
    DATA_DIR/server-ca.pem           the CA for the control plane's TLS, given once with --tls-ca
    DATA_DIR/metrics-buffer.json     what the server has not acknowledged yet: closed metric
                                     windows and install events (``agent.metrics_buffer``)
    DATA_DIR/metrics-open.json       the open metric window, as the last checkpoint saw it
                                     (``agent.checkpoint``); an earlier version's
                                     ``metrics-pending.json`` is moved into the buffer once
    DATA_DIR/state.json              accepted desired state (signed, base64), active models, the
                                     kept previous one and the staged (held) one per model, with
                                     signed manifests
    DATA_DIR/artifacts/<sha256>.tflite   complete artifacts whose length and sha256 verified
    DATA_DIR/downloads/<sha256>.part     partial downloads, resumed from their length
    DATA_DIR/quarantine/<sha256>.<time>  artifacts that failed re-verification, set aside (never
                                     loaded) for inspection; the newest ``max_quarantined`` kept

The trust key is not here: it is read at every start from a path outside the data dir
(``agent.trust_key``), and a ``DATA_DIR/trust-key.pub`` left by an earlier version is ignored.

Invariants:
- Every whole-file write goes to a temp file in the same directory, is fsynced, renamed over the
  target with ``os.replace`` and the directory is fsynced: a reader sees the old or the new file.
- A file lands in ``artifacts/`` only by ``install_part`` after its bytes verified; an artifact
  is verified again (``verified_artifact``) before every load, and a corrupt one is moved to
  ``quarantine/`` (out of every path a load reads), so it is fetched again, never loaded.
- This module decides nothing about trust: signatures are checked by ``agent.trust``, and no
  file in the data dir is ever taken as the key they are checked against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import (
    ArtifactMismatchError,
    ConfigurationError,
    DocumentError,
    InsufficientStorageError,
)
from agent.findings import INSUFFICIENT_STORAGE, Finding
from agent.refs import ModelRef
from agent.trust import Signed, check_artifact, nested_signed
from protos.contract.files import fsync_dir, move_into_place, replace_atomically
from protos.contract.identifiers import is_enrollment_key

log = logging.getLogger(__name__)

_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Credential:
    device_id: str
    device_token: str
    server: str


@dataclass(frozen=True)
class ActiveModel:
    """A model the agent serves, with the signed manifest it was verified against."""

    ref: ModelRef
    signed_manifest: Signed


@dataclass(frozen=True)
class StoredState:
    desired_state: Signed | None = None
    active: tuple[ActiveModel, ...] = ()
    kept: tuple[ActiveModel, ...] = ()   # the previous version per model, for rollback
    staged: tuple[ActiveModel, ...] = ()   # proven under a hold, not serving, per model
    #: Per model on probation: the sha256 watched and when the watch ends (epoch seconds).
    probation: Mapping[str, tuple[str, float]] = field(default_factory=dict)


class BestEffortWrites:
    """Writes whose failure (a full disk) costs metrics, never serving: ``attempt`` catches the
    OSError and says so in the log once per run of failures (a warning, then quiet until a write
    succeeds again, which is logged too), so a full disk is not also filled with the news."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._failing = False

    def attempt(self, write: Callable[[], None]) -> bool:
        """Run ``write``; True when it returned, False when it raised OSError (logged)."""
        try:
            write()
        except OSError as exc:
            if not self._failing:
                log.warning("could not write %s (%s): it is kept in memory only until a write "
                            "succeeds", self._what, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("%s written again", self._what)
            self._failing = False
        return True


def file_digest(path: Path) -> tuple[int, str]:
    """Length and sha256 hex of a file, read in bounded chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


class AgentStore:
    """Paths and crash-safe reads/writes of everything the agent keeps in ``data_dir``."""

    def __init__(self, data_dir: Path | str, *, max_quarantined: int = 4) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.max_quarantined = max_quarantined
        self.credential_path = self.data_dir / "credential.json"
        self.enrollment_key_path = self.data_dir / "enrollment-key"
        self.tls_ca_path = self.data_dir / "server-ca.pem"
        self.state_path = self.data_dir / "state.json"
        self.metrics_buffer_path = self.data_dir / "metrics-buffer.json"
        self.open_windows_path = self.data_dir / "metrics-open.json"
        self.legacy_pending_windows_path = self.data_dir / "metrics-pending.json"
        self.socket_path = self.data_dir / "agent.sock"
        self.artifacts_dir = self.data_dir / "artifacts"
        self.downloads_dir = self.data_dir / "downloads"
        self.quarantine_dir = self.data_dir / "quarantine"

    def ensure(self) -> None:
        """Create the data dir (0700: it holds the device credential) and its subdirectories."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.artifacts_dir.mkdir(exist_ok=True)
        self.downloads_dir.mkdir(exist_ok=True)

    # -- credential, enrollment key, TLS CA ----------------------------------------------

    def read_credential(self) -> Credential | None:
        """The stored credential, None before enrollment. Raises ConfigurationError if corrupt."""
        try:
            raw = json.loads(self.credential_path.read_bytes())
            return Credential(
                device_id=str(raw["device_id"]),
                device_token=str(raw["device_token"]),
                server=str(raw["server"]),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"{self.credential_path} is unreadable ({exc}); delete it and enroll again "
                "with --enroll-token"
            ) from exc

    def write_credential(self, credential: Credential) -> None:
        doc = {
            "device_id": credential.device_id,
            "device_token": credential.device_token,
            "server": credential.server,
        }
        replace_atomically(self.credential_path, _json_bytes(doc), mode=0o600)

    def enrollment_key(self) -> str:
        """This agent's enrollment key: made once (random, 0600) and then always the same, so
        an Enroll repeated after a lost answer gets the same device back."""
        try:
            key = self.enrollment_key_path.read_text().strip()
            if is_enrollment_key(key):
                return key
        except FileNotFoundError:
            pass
        key = secrets.token_urlsafe(32)
        replace_atomically(self.enrollment_key_path, key.encode() + b"\n", mode=0o600)
        return key

    def read_tls_ca(self) -> bytes | None:
        try:
            return self.tls_ca_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_tls_ca(self, pem: bytes) -> None:
        replace_atomically(self.tls_ca_path, pem, mode=0o644)

    # -- metrics not yet sent -------------------------------------------------------------

    def read_metrics_buffer(self) -> dict[str, Any]:
        """What ``write_metrics_buffer`` kept; empty when nothing is (see ``_read_metrics``)."""
        return _read_metrics(self.metrics_buffer_path)

    def write_metrics_buffer(self, doc: dict[str, Any]) -> None:
        """Raises OSError (a full disk): the caller keeps the buffer in memory and goes on."""
        replace_atomically(self.metrics_buffer_path, compact_json(doc))

    def read_open_windows(self) -> list[dict[str, Any]]:
        """The open window's records as the last checkpoint wrote them; empty when none."""
        return _window_docs(_read_metrics(self.open_windows_path))

    def write_open_windows(self, docs: list[dict[str, Any]]) -> None:
        """Keep the open window's records (none: remove the file). Raises OSError."""
        if docs:
            replace_atomically(self.open_windows_path, compact_json({"windows": docs}))
        else:
            _remove(self.open_windows_path)

    def read_legacy_pending_windows(self) -> list[dict[str, Any]]:
        """The closed windows an earlier version kept in ``metrics-pending.json``."""
        return _window_docs(_read_metrics(self.legacy_pending_windows_path))

    def remove_legacy_pending_windows(self) -> None:
        """Once they are in the metrics buffer's file. Raises OSError."""
        _remove(self.legacy_pending_windows_path)

    # -- accepted state ----------------------------------------------------------------------

    def read_state(self) -> StoredState:
        """The persisted state; empty before the first accepted desired state.

        Raises DocumentError when the file is not what ``write_state`` writes.
        """
        try:
            raw = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return StoredState()
        except ValueError as exc:
            raise DocumentError(f"{self.state_path} is not JSON: {exc}") from exc
        try:
            desired = raw.get("desired_state")
            return StoredState(
                desired_state=nested_signed(desired) if desired is not None else None,
                active=tuple(_active_model(a) for a in raw.get("active", [])),
                # A list of kept models; an earlier version wrote {model: sha256}, which cannot
                # be served again without its manifest: read as nothing kept.
                kept=tuple(_active_model(a) for a in raw.get("kept", [])),
                staged=tuple(_active_model(a) for a in raw.get("staged", [])),
                probation={str(m): (str(w["sha256"]), float(w["until"]))
                           for m, w in raw.get("probation", {}).items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DocumentError(f"{self.state_path} is malformed: {exc}") from exc

    def write_state(self, state: StoredState) -> None:
        doc: dict[str, Any] = {
            "desired_state": state.desired_state.to_json() if state.desired_state else None,
            "active": [_active_json(a) for a in state.active],
            "kept": [_active_json(k) for k in state.kept],
            "staged": [_active_json(s) for s in state.staged],
            "probation": {m: {"sha256": sha, "until": until}
                          for m, (sha, until) in state.probation.items()},
        }
        replace_atomically(self.state_path, _json_bytes(doc))

    # -- artifacts ---------------------------------------------------------------------------

    def artifact_path(self, sha256: str) -> Path:
        return self.artifacts_dir / f"{sha256}.tflite"

    def part_path(self, sha256: str) -> Path:
        return self.downloads_dir / f"{sha256}.part"

    def verified_artifact(self, manifest: dict[str, Any]) -> Path | None:
        """The artifact's path if it is on disk and matches ``manifest``; None if absent.

        A present file that does not match is quarantined (so it gets downloaded again, and is
        never loaded) and ArtifactMismatchError is raised.
        """
        path = self.artifact_path(manifest["sha256"])
        try:
            size, digest = file_digest(path)
        except FileNotFoundError:
            return None
        try:
            check_artifact(size, digest, manifest)
        except ArtifactMismatchError as exc:
            where = self.quarantine(path)
            raise ArtifactMismatchError(f"{exc}; set aside as {where}") from exc
        return path

    def quarantine(self, path: Path) -> Path:
        """Move ``path`` into ``quarantine/`` (the newest ``max_quarantined`` files stay there,
        older ones are deleted: a device's disk is small); returns where it went (or would
        have, when even that failed and it was deleted)."""
        self.quarantine_dir.mkdir(exist_ok=True)
        target = self.quarantine_dir / f"{path.stem}.{time.time_ns()}"
        try:
            path.replace(target)
        except OSError as exc:
            log.warning("could not quarantine %s (%s); deleting it", path, exc)
            path.unlink(missing_ok=True)
            return target
        log.warning("%s failed verification: quarantined as %s", path.name, target)
        kept = sorted(self.quarantine_dir.iterdir(), key=_quarantined_at)
        for old in kept[:max(0, len(kept) - self.max_quarantined)]:
            old.unlink(missing_ok=True)
        return target

    def check_room(self, sha256: str, size: int, *, reserve: int) -> None:
        """Raises InsufficientStorageError unless the data dir's file system has room for the
        rest of artifact ``sha256`` (``size`` bytes, less what its part file holds) with
        ``reserve`` bytes still free after it: the kept artifacts stay, the disk never fills."""
        part = self.part_path(sha256)
        have = part.stat().st_size if part.exists() else 0
        need = max(0, size - have) + reserve
        free = shutil.disk_usage(self.data_dir).free
        if free < need:
            raise InsufficientStorageError(
                f"artifact {sha256[:12]} needs {need - reserve} more bytes and {reserve} kept "
                f"free, but {self.data_dir} has {free} bytes free; free space there (the "
                "current and previous models stay)",
                finding=Finding(INSUFFICIENT_STORAGE, observed=float(free), limit=float(need)))

    def install_part(self, sha256: str) -> Path:
        """Move a verified part file into ``artifacts/`` (atomic rename, directory fsynced)."""
        target = self.artifact_path(sha256)
        move_into_place(self.part_path(sha256), target)
        return target

    def prune(self, keep: set[str]) -> list[str]:
        """Delete artifacts and partial downloads whose sha256 is not in ``keep``."""
        removed = []
        for directory, suffix in ((self.artifacts_dir, ".tflite"), (self.downloads_dir, ".part")):
            for path in directory.glob(f"*{suffix}"):
                if path.name.removesuffix(suffix) not in keep:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed


def _quarantined_at(path: Path) -> int:
    """When ``quarantine`` set ``path`` aside (its name's suffix); 0 for a stranger's file."""
    suffix = path.suffix[1:]
    return int(suffix) if suffix.isdigit() else 0


def _active_model(doc: dict[str, Any]) -> ActiveModel:
    ref = ModelRef(model=doc["model"], version=doc["version"], variant=doc["variant"],
                   sha256=doc["sha256"])
    return ActiveModel(ref=ref, signed_manifest=nested_signed(doc["manifest"]))


def _active_json(model: ActiveModel) -> dict[str, Any]:
    return {**dataclasses.asdict(model.ref), "manifest": model.signed_manifest.to_json()}


def _read_metrics(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when absent, and when unreadable (logged): metrics are
    not worth refusing to start for, and the next write replaces the file."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s): what it held is lost", path, exc)
        return {}
    if not isinstance(doc, dict):
        log.warning("%s does not hold a JSON object: what it held is lost", path)
        return {}
    return doc


def _window_docs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    windows = doc.get("windows", [])
    return [w for w in windows if isinstance(w, dict)] if isinstance(windows, list) else []


def _remove(path: Path) -> None:
    """Unlink ``path`` if it is there, durably (the directory fsynced). Raises OSError."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def compact_json(doc: dict[str, Any]) -> bytes:
    """The form the metrics files are written in: compact, since the metrics buffer's bound is
    in bytes, counted on this form (``agent.metrics_buffer``)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
