"""Enrollment, device records, hardware profiles, and signed desired states.

Invariants:
- ``publish_desired_state`` is the only writer of ``DesiredState``; it takes the next sequence with
  an atomic increment and signs the document for exactly the rows it read in the same transaction,
  and has every server told of it after the commit (``controlplane.notify``).
- ``desired_for_sync`` does one primary-key read and no write unless the stored document is close
  to expiry, or older than the one the device holds (a restored database), when it is re-signed
  under a new sequence.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from controlplane.auth import tokens
from controlplane.auth.services import spend_enrollment_token
from controlplane.config import Settings
from controlplane.db import new_id
from controlplane.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from controlplane.fleet.classes import HardwareClass, hardware_class, hardware_facts
from controlplane.fleet.desired_cache import CachedState
from controlplane.fleet.models import (
    DesiredState,
    Device,
    DeviceModel,
    HardwareProfile,
    HardwareProfileChange,
)
from controlplane.notify import notify_after_commit
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page
from controlplane.registry.errors import ArtifactNotFoundError
from controlplane.registry.models import ModelVersion, Variant
from controlplane.registry.services import manifest_json
from controlplane.registry.signing import Signer, build_desired_state
from controlplane.registry.store import FilesystemArtifactStore
from controlplane.selectors import Selector, parse_selector, validate_labels
from controlplane.validation import (
    check_label_count,
    check_name,
    check_selector_text,
    is_uuid,
    shown,
)
from protos.contract.identifiers import is_enrollment_key, is_sha256

# The widths of the hardware profile's indexed columns (the whole profile is kept as JSON).
_PROFILE_COLUMNS = {"arch": 32, "interpreter.name": 64, "interpreter.version": 32}
# Sequences live in a signed BIGINT; leave head-room so ``after + 1`` can never overflow.
MAX_SEQUENCE = 2**62

log = logging.getLogger(__name__)


def enroll(
    session: Session,
    *,
    enrollment_token_id: str,
    name: str,
    hardware: dict[str, Any],
    labels: dict[str, str],
    now: dt.datetime,
    settings: Settings,
    enrollment_key: str = "",
) -> tuple[Device, str]:
    """Spend one use of the enrollment token and create a device; return it and its credential.

    With an ``enrollment_key`` this device was already enrolled with (by this token), no use is
    spent: the same device is returned with a new credential, the old one stops working. That is
    how an agent recovers when the answer to its Enroll was lost; only the holder of both the
    token and the key (random, never leaves the device but in this call) can do it.
    """
    labels = validate_labels(labels)
    key_hash = _enrollment_key_hash(enrollment_key)
    if key_hash is not None:
        again = session.scalars(
            sa.select(Device).where(
                Device.enrollment_token_id == enrollment_token_id,
                Device.enrollment_key_hash == key_hash,
            ).with_for_update()
        ).first()
        if again is not None:
            if again.revoked_at is not None:
                raise UnauthenticatedError(
                    f"device {again.id} was revoked: enroll with a new enrollment token and an "
                    f"empty data dir"
                )
            _, secret, credential = tokens.mint("device", token_id=again.id)
            again.secret_hash = tokens.hash_secret(secret)
            again.last_seen = now
            set_hardware(session, again.id, hardware, now=now, settings=settings)
            log.info("device %s enrolled again with its enrollment key: new credential", again.id)
            return again, credential
    token_labels = spend_enrollment_token(session, enrollment_token_id, now=now)
    device_id, secret, credential = tokens.mint("device", token_id=new_id())
    device = Device(
        id=device_id,
        name=(name or socket.gethostname())[:200],
        # The token's labels win: they are the operator's word on where the device belongs;
        # the device may only add labels of its own, never move itself into another site.
        labels={**labels, **token_labels},
        secret_hash=tokens.hash_secret(secret),
        enrollment_token_id=enrollment_token_id,
        enrollment_key_hash=key_hash,
        enrolled_at=now,
        last_seen=now,
    )
    session.add(device)
    session.flush()
    set_hardware(session, device.id, hardware, now=now, settings=settings)
    return device, credential


def enroll_device(
    session: Session,
    *,
    enrollment_token_id: str,
    name: str,
    hardware: dict[str, Any],
    labels: dict[str, str],
    settings: Settings,
    now: dt.datetime,
    enrollment_key: str = "",
) -> tuple[Device, str]:
    """``enroll`` for an Enroll request: what the request may carry is checked first, so
    nothing is stored or spent for a request past a bound, and nothing is cut to fit.

    Raises InvalidArgumentError (a name past ``max_device_name_chars`` or holding a control
    character, bad labels, a bad hardware profile), ResourceExhaustedError (more than
    ``max_labels`` labels: the device's own, or with its enrollment token's), and what
    ``enroll`` raises.
    """
    check_name(name, what="device name", max_chars=settings.max_device_name_chars,
               setting="max_device_name_chars")
    check_label_count(labels, settings=settings, what="the device")
    check_hardware(hardware, settings=settings)
    device, credential = enroll(session, enrollment_token_id=enrollment_token_id, name=name,
                                hardware=hardware, labels=labels, now=now, settings=settings,
                                enrollment_key=enrollment_key)
    # The token's labels are merged in by enroll; the transaction is rolled back on refusal.
    check_label_count(device.labels or {}, settings=settings,
                      what="the device (its own labels and its enrollment token's)")
    return device, credential


def device_secret_matches(session: Session, device_id: str, secret: str) -> bool:
    """Whether ``device_id`` names a device that may connect (not revoked) with this secret."""
    device = session.get(Device, device_id)
    return bool(device and device.revoked_at is None
                and tokens.secret_matches(secret, device.secret_hash))


def _enrollment_key_hash(key: str) -> str | None:
    """sha256 of a well-formed enrollment key; None for none. Raises InvalidArgumentError."""
    if not key:
        return None
    if not is_enrollment_key(key):
        raise InvalidArgumentError(
            "enrollment_key must be 16-128 characters of A-Z, a-z, 0-9, '_' and '-'"
        )
    return tokens.hash_secret(key)


def check_hardware(profile: dict[str, Any], *, settings: Settings) -> None:
    """Refuse a hardware profile (as ``MessageToDict`` makes it) that cannot be stored as is:
    larger than ``max_hardware_profile_bytes`` as JSON, NUL in any of its strings (PostgreSQL
    cannot store it; other characters are kept, detected CPU names may hold tabs), or an
    indexed field wider than its column. Raises InvalidArgumentError."""
    import json

    size = len(json.dumps(profile))
    if size > settings.max_hardware_profile_bytes:
        raise InvalidArgumentError(
            f"the hardware profile is {size} bytes as JSON; at most "
            f"{settings.max_hardware_profile_bytes} (setting max_hardware_profile_bytes)")
    for field, value in _profile_strings(profile):
        if "\x00" in value:
            raise InvalidArgumentError(f"hardware {field} {shown(value)} holds a NUL character")
        width = _PROFILE_COLUMNS.get(field)
        if width is not None and len(value) > width:
            raise InvalidArgumentError(
                f"hardware {field} {shown(value)} is longer than {width} characters")


def _profile_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _profile_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _profile_strings(v, path)


def set_hardware(
    session: Session, device_id: str, profile: dict[str, Any], *, now: dt.datetime,
    settings: Settings,
) -> None:
    """Store the device's current hardware profile and class (replacing the previous one),
    checked first (``check_hardware``); a profile that differs from the stored one is also
    added to the device's history, of which the newest ``max_profile_history`` are kept."""
    check_hardware(profile, settings=settings)
    interp = profile.get("interpreter") or {}
    hclass = hardware_class(profile)
    row = session.get(HardwareProfile, device_id)
    if row is not None and row.profile == profile and row.hardware_class == hclass.key:
        row.updated_at = now
        return
    if row is None:
        row = HardwareProfile(device_id=device_id, profile=profile)
        session.add(row)
    row.profile = profile
    row.arch = str(profile.get("arch", ""))[:32]
    row.cpu_cores = int(profile.get("cpu_cores") or 0)
    row.ram_bytes = int(profile.get("ram_bytes") or 0)
    row.interpreter_name = str(interp.get("name", ""))[:64]
    row.interpreter_version = str(interp.get("version", ""))[:32]
    row.hardware_class, row.class_name = hclass.key, hclass.name
    row.updated_at = now
    session.add(HardwareProfileChange(device_id=device_id, profile=profile,
                                      hardware_class=hclass.key, recorded_at=now))
    session.flush()
    _prune_history(session, device_id, keep=settings.max_profile_history)


def _prune_history(session: Session, device_id: str, *, keep: int) -> None:
    newest = (sa.select(HardwareProfileChange.id)
              .where(HardwareProfileChange.device_id == device_id)
              .order_by(HardwareProfileChange.recorded_at.desc(), HardwareProfileChange.id.desc())
              .limit(keep))
    session.execute(sa.delete(HardwareProfileChange).where(
        HardwareProfileChange.device_id == device_id,
        HardwareProfileChange.id.not_in(newest.scalar_subquery())))


def list_classes(session: Session) -> list[tuple[HardwareClass, int]]:
    """Every hardware class of a device that is not revoked, with its device count, most
    devices first (then by name)."""
    rows = session.execute(
        sa.select(HardwareProfile.hardware_class, sa.func.min(HardwareProfile.device_id),
                  sa.func.count())
        .join(Device, Device.id == HardwareProfile.device_id)
        .where(Device.revoked_at.is_(None), HardwareProfile.hardware_class != "")
        .group_by(HardwareProfile.hardware_class)).all()
    out = []
    for _key, device_id, count in rows:
        # The class's fields from one of its devices' profiles (all give the same class).
        profile = session.get(HardwareProfile, device_id)
        out.append((hardware_class(profile.profile if profile else None), int(count)))
    return sorted(out, key=lambda pair: (-pair[1], pair[0].name))


def profile_history(session: Session, device_id: str) -> list[HardwareProfileChange]:
    """The device's recorded profiles, newest first (at most ``max_profile_history``)."""
    return list(session.scalars(
        sa.select(HardwareProfileChange).where(HardwareProfileChange.device_id == device_id)
        .order_by(HardwareProfileChange.recorded_at.desc(), HardwareProfileChange.id.desc())))


def get_device(session: Session, device_id: str) -> Device:
    """The device with its hardware and models. Raises NotFoundError, also for an id that is
    not a UUID (no device can have it; it never reaches a query)."""
    device = session.scalars(
        sa.select(Device).where(Device.id == device_id).options(*_device_loads())
    ).first() if is_uuid(device_id) else None
    if device is None:
        raise NotFoundError(f"device {shown(device_id)} not found: see `edgefleet device list`")
    return device


def _device_loads() -> list[Any]:
    return [
        selectinload(Device.hardware),
        selectinload(Device.models)
        .selectinload(DeviceModel.desired_variant)
        .selectinload(Variant.model_version),
        selectinload(Device.models)
        .selectinload(DeviceModel.active_variant)
        .selectinload(Variant.model_version),
    ]


_DEVICES: Order[Device] = Order("device", (
    Key(Device.name, lambda d: d.name),
    Key(Device.id, lambda d: d.id),
))


def list_devices(
    session: Session,
    selector: str,
    page: PageAsk,
    *,
    settings: Settings,
    render: Callable[[Device], M],
) -> Page[M]:
    """A page of the devices whose labels match ``selector`` (text; empty or ``*``: every
    device, revoked ones included), by name, each as ``render`` makes it. A page is full
    unless it is the last, or its weight stopped it (``controlplane.pages``).

    Raises InvalidArgumentError (a malformed or too long selector, page size or token).
    """
    wanted = parse_selector(check_selector_text(selector, settings=settings))
    # Matching happens here rather than in SQL: JSON operators differ between SQLite and
    # PostgreSQL. The page reader scans on past devices that do not match.
    return read_page(session, sa.select(Device).options(*_device_loads()), _DEVICES, page,
                     settings=settings, render=render,
                     keep=lambda d: device_matches(wanted, d), scope=wanted.scope)


def device_matches(selector: Selector, device: Device) -> bool:
    """Whether ``device`` (its labels, and its hardware profile when loaded) matches."""
    profile = device.hardware.profile if selector.needs_hardware and device.hardware else None
    return selector.matches(device.labels or {}, hardware_facts(profile))


def devices_matching(session: Session, selector: Selector) -> list[Device]:
    """Every device that is not revoked and that ``selector`` matches, by name: the devices a
    rollout gives work to."""
    query = (sa.select(Device).options(*_device_loads()).where(Device.revoked_at.is_(None))
             .order_by(*_DEVICES.clauses()))
    return [d for d in session.scalars(query) if device_matches(selector, d)]


@dataclass(frozen=True)
class Match:
    """A device a selector matched, with what selection reads of it."""

    device_id: str
    profile: dict[str, Any] | None
    hardware_class: str


def matching_devices(session: Session, selector: Selector) -> list[Match]:
    """Every device that is not revoked and that ``selector`` matches, by id: labels and
    profiles only, in one query (a rollout's start over a fleet of 10,000 devices loads no
    models or variants)."""
    query = (sa.select(Device.id, Device.labels, HardwareProfile.profile,
                       HardwareProfile.hardware_class)
             .outerjoin(HardwareProfile, HardwareProfile.device_id == Device.id)
             .where(Device.revoked_at.is_(None)).order_by(Device.id))
    return [Match(device_id, profile, hclass or "")
            for device_id, labels, profile, hclass in session.execute(query)
            if selector.matches(labels or {}, hardware_facts(profile))]


def any_device_matches(session: Session, selector: Selector) -> bool:
    """Whether some device that is not revoked matches ``selector``, stopping at the first
    match: labels and profiles only (no models or variants loaded)."""
    query = sa.select(Device.labels, HardwareProfile.profile).outerjoin(
        HardwareProfile, HardwareProfile.device_id == Device.id).where(
        Device.revoked_at.is_(None))
    return any(selector.matches(labels or {}, hardware_facts(profile))
               for labels, profile in session.execute(query))


def revoked_device_ids(session: Session) -> set[str]:
    """Every revoked device's id, in one query (revocations are rare: the set stays small)."""
    return set(session.scalars(sa.select(Device.id).where(Device.revoked_at.is_not(None))))


def revoke_device(session: Session, device_id: str, *, now: dt.datetime) -> Device:
    """Revoke a device (idempotent): its credential is refused from now on (servers that cached
    it: within ``auth_cache_seconds``), it cannot enroll again with its old enrollment key, and
    rollouts skip it. Its record stays for the audit trail. Raises NotFoundError."""
    device = get_device(session, device_id)
    if device.revoked_at is None:
        device.revoked_at = now
        session.flush()
    return device


def label_device(
    session: Session, device_id: str, changes: dict[str, str], *, settings: Settings
) -> Device:
    """Set labels; an empty value removes the label.

    Raises InvalidArgumentError (a bad label), NotFoundError, ResourceExhaustedError (more
    than ``max_labels`` changes, or labels on the device after them).
    """
    check_label_count(changes, settings=settings, what="one label change")
    changes = validate_labels(changes, allow_empty_values=True)
    device = get_device(session, device_id)
    labels = dict(device.labels or {})
    for k, v in changes.items():
        if v:
            labels[k] = v
        else:
            labels.pop(k, None)
    check_label_count(labels, settings=settings, what=f"device {device_id}")
    device.labels = labels
    return device


def touch_last_seen(session: Session, seen: dict[str, dt.datetime]) -> None:
    """Write a batch of last-seen times (the sync path buffers them; see api.device).

    Rows are updated in id order, as ``publish_desired_states`` locks them: two batches that
    share devices queue behind each other instead of deadlocking."""
    for device_id, at in sorted(seen.items()):
        session.execute(
            sa.update(Device)
            .where(Device.id == device_id)
            .where(sa.or_(Device.last_seen.is_(None), Device.last_seen < at))
            .values(last_seen=at)
        )


def sequence_floor(now: dt.datetime) -> int:
    """The smallest sequence a desired state signed at ``now`` may carry: microseconds since the
    epoch. Sequences are ``max(last + 1, floor)``, so every new document outnumbers any the
    device could hold, even one issued before the database was restored from a backup, and a
    device can never be legitimately ahead of the server."""
    return int(now.timestamp() * 1_000_000)


def publish_desired_state(
    session: Session,
    device_id: str,
    *,
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
) -> DesiredState:
    """Sign and store a new desired state for the device from its ``DeviceModel`` rows.

    Its sequence is ``max(the device's last + 1, sequence_floor(now))``, taken with one atomic
    update. Raises ResourceExhaustedError when the document would not fit a device's messages
    (``max_desired_state_bytes``, ``max_models_per_device``); nothing is stored then.
    """
    outcome = publish_desired_states(session, [device_id], signer=signer, settings=settings,
                                     now=now)[device_id]
    if isinstance(outcome, ResourceExhaustedError):
        raise outcome
    return outcome


def publish_desired_states(
    session: Session,
    device_ids: Sequence[str],
    *,
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
) -> dict[str, DesiredState | ResourceExhaustedError]:
    """``publish_desired_state`` for many devices in a fixed number of queries (a rollout
    starts thousands at once). Each device gets its stored document, or the
    ResourceExhaustedError that refused it; a refused device's stored document is left as it
    was (its counter may have moved: a skipped sequence is harmless, sequences only order).
    """
    ids = list(dict.fromkeys(device_ids))
    if not ids:
        return {}
    floor = sequence_floor(now)
    # Lock the rows in id order first (as touch_last_seen updates them): an UPDATE ... IN
    # locks in whatever order it scans, and two such batches deadlocked on PostgreSQL.
    session.execute(sa.select(Device.id).where(Device.id.in_(ids)).order_by(Device.id)
                    .with_for_update())
    sequences = dict(session.execute(
        sa.update(Device)
        .where(Device.id.in_(ids))
        .values(desired_sequence=sa.case((Device.desired_sequence >= floor,
                                          Device.desired_sequence + 1), else_=floor))
        .returning(Device.id, Device.desired_sequence)
        .execution_options(synchronize_session=False)
    ).all())
    rows = session.scalars(
        sa.select(DeviceModel)
        .where(DeviceModel.device_id.in_(ids), DeviceModel.desired_variant_id.is_not(None))
        .options(
            selectinload(DeviceModel.desired_variant)
            .selectinload(Variant.model_version)
            .selectinload(ModelVersion.model)
        )
        .order_by(DeviceModel.device_id, DeviceModel.model_name)
        # The caller has usually just changed desired_variant_id on rows already in this
        # session; refresh them so the relationship matches the column we sign.
        .execution_options(populate_existing=True)
    ).all()
    by_device: dict[str, list[DeviceModel]] = {d: [] for d in ids}
    for row in rows:
        by_device[row.device_id].append(row)
    stored = {st.device_id: st for st in session.scalars(
        sa.select(DesiredState).where(DesiredState.device_id.in_(ids)))}
    manifests: dict[str, dict[str, Any]] = {}
    expires = now + dt.timedelta(seconds=settings.desired_state_ttl_seconds)
    out: dict[str, DesiredState | ResourceExhaustedError] = {}
    for device_id in ids:
        if device_id not in sequences:
            raise NotFoundError(f"device {device_id} not found")
        try:
            out[device_id] = _store_desired_state(
                session, device_id, sequences[device_id], by_device[device_id],
                stored.get(device_id), manifests, signer=signer, settings=settings, now=now,
                expires=expires)
        except ResourceExhaustedError as exc:
            out[device_id] = exc
    session.flush()
    return out


def _store_desired_state(
    session: Session, device_id: str, seq: int, rows: list[DeviceModel],
    state: DesiredState | None, manifests: dict[str, dict[str, Any]], *, signer: Signer,
    settings: Settings, now: dt.datetime, expires: dt.datetime,
) -> DesiredState:
    entries = []
    for row in rows:
        v = row.desired_variant
        assert v is not None
        if v.id not in manifests:
            manifest = manifest_json(v)
            if manifest is None:  # only ready, signed variants are ever made desired
                raise RuntimeError(f"variant {v.id} has no signed manifest")
            manifests[v.id] = manifest
        entries.append(
            {
                "model": row.model_name,
                "version": v.model_version.version,
                "variant": v.kind,
                "sha256": v.artifact_sha256,
                "size": v.size,
                "manifest": manifests[v.id],
                # outside its rollout's maintenance window: fetch and prove, do not activate
                **({"hold": True} if row.hold else {}),
            }
        )
    if len(entries) > settings.max_models_per_device:
        raise ResourceExhaustedError(
            f"device {device_id} would run {len(entries)} models; at most "
            f"{settings.max_models_per_device} (setting max_models_per_device)")
    doc = build_desired_state(
        device_id=device_id,
        sequence=seq,
        issued_at=now,
        expires_at=expires,
        models=entries,
    )
    signed = signer.sign_document(doc)
    if len(signed.payload) > settings.max_desired_state_bytes:
        # Sent as is, it would exceed the device's message limit on every Sync, for good.
        raise ResourceExhaustedError(
            f"the desired state of device {device_id} would be {len(signed.payload)} bytes; at "
            f"most {settings.max_desired_state_bytes} (setting max_desired_state_bytes)")
    if state is None:
        state = DesiredState(device_id=device_id)
        session.add(state)
    state.sequence = seq
    state.payload = signed.payload
    state.signature = signed.signature
    state.key_id = signed.key_id
    state.issued_at = now
    state.expires_at = expires
    # What the device may download: each model and the golden samples its manifest references.
    goldens = {r.desired_variant.golden_sha256 for r in rows
               if r.desired_variant is not None and r.desired_variant.golden_sha256}
    state.artifacts = sorted({str(e["sha256"]) for e in entries} | goldens)
    # Watch streams and Sync caches on every server hear of it, once this is committed.
    notify_after_commit(session, device_id, seq)
    return state


def desired_for_sync(
    session: Session,
    device_id: str,
    known_sequence: int,
    *,
    signer: Signer,
    settings: Settings,
    now: dt.datetime,
) -> DesiredState | None:
    """The desired state to send, or None when the device already holds the current one.

    One primary-key read and no write, unless the stored document is close to expiry (it is
    re-signed under a new sequence). Raises InvalidArgumentError for a ``known_sequence`` no
    server could have issued, FailedPreconditionError for one above this device's latest
    (a device cannot be ahead of the server; nothing is changed for it).
    """
    if known_sequence > MAX_SEQUENCE:
        raise InvalidArgumentError(f"known_sequence {known_sequence} is out of range")
    state = session.get(DesiredState, device_id)
    latest = state.sequence if state is not None else 0
    if known_sequence > latest:
        # Trusting the claim would let one Sync move the device's counter anywhere (2^62 once
        # made every later Sync fail). After a database restore the device keeps serving what it
        # holds and accepts the next change: new sequences are time-based (sequence_floor).
        raise FailedPreconditionError(
            f"this device claims desired state {known_sequence}, but the newest the server "
            f"issued it is {latest or 'none'}; nothing was changed. If the control plane's "
            f"database was restored from a backup, the device accepts its next change")
    if state is None:
        return None
    if state.expires_at - now < dt.timedelta(seconds=settings.desired_state_refresh_seconds):
        state = publish_desired_state(session, device_id, signer=signer, settings=settings, now=now)
    return state if state.sequence > known_sequence else None


def cached_desired(session: Session, device_id: str) -> CachedState:
    """The device's stored desired state as the Sync cache keeps it (from the session's
    identity map when ``desired_for_sync`` just read it: no second query)."""
    state = session.get(DesiredState, device_id)
    if state is None:
        return CachedState(sequence=0)
    return CachedState(sequence=state.sequence, expires_at=state.expires_at,
                       payload=state.payload, signature=state.signature, key_id=state.key_id)


def may_download(session: Session, device_id: str, sha256: str) -> bool:
    """A device may fetch an artifact in its desired state or one it is running."""
    state = session.get(DesiredState, device_id)
    if state is not None and sha256 in (state.artifacts or []):
        return True
    return bool(
        session.scalar(
            sa.select(
                sa.exists()
                .where(Variant.id == DeviceModel.active_variant_id)
                .where(DeviceModel.device_id == device_id, Variant.artifact_sha256 == sha256)
            )
        )
    )


@dataclass
class Download:
    """An artifact a device may fetch, opened at its offset: ``size`` bytes in all, ``chunks``
    from the offset on (one chunk in memory at a time). ``close`` releases the file."""

    size: int
    chunks: Iterator[bytes]

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def open_download(
    session: Session,
    store: FilesystemArtifactStore,
    device_id: str,
    sha256: str,
    *,
    offset: int,
    chunk_bytes: int,
) -> Download:
    """Open an artifact assigned to ``device_id`` for streaming from ``offset``. Blocking.

    Raises InvalidArgumentError (not a sha256, offset past the end), NotFoundError: not assigned
    and not stored look the same, so a device cannot probe for other devices' artifacts.
    """
    if not is_sha256(sha256):
        raise InvalidArgumentError("sha256 must be 64 lowercase hex characters")
    not_assigned = NotFoundError(f"artifact {sha256} is not assigned to this device")
    if not may_download(session, device_id, sha256):
        raise not_assigned
    try:
        size = store.size(sha256)
    except ArtifactNotFoundError:
        raise not_assigned from None
    if offset > size:
        raise InvalidArgumentError(f"offset {offset} is past the end ({size} bytes)")
    return Download(size=size, chunks=store.open_range(sha256, offset, chunk_bytes))
