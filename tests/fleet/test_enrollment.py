"""Enrollment against a real database: a use is spent once per device, and an Enroll repeated
with the agent's enrollment key (its answer was lost) returns the same device."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from controlplane.api import convert
from controlplane.auth import services as auth
from controlplane.auth.models import EnrollmentToken
from controlplane.auth.policy import Principal
from controlplane.config import Settings
from controlplane.db import transaction
from controlplane.errors import InvalidArgumentError, UnauthenticatedError
from controlplane.fleet import services as fleet
from controlplane.fleet import services as fleet_services
from controlplane.fleet.models import Device
from controlplane.pages import PageAsk

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def authenticate(s: Session, token: str, *, now: dt.datetime) -> Principal:
    """``auth.services.authenticate`` wired as the plane wires it (with the fleet's devices)."""
    return auth.authenticate(s, token, now=now,
                              device_secret_matches=fleet_services.device_secret_matches)

KEY = "k" * 43
HW = {"arch": "x86_64", "cpu_cores": 2}


def _token(factory: sessionmaker[Session], uses: int = 1) -> str:
    with transaction(factory) as s:
        row, _ = auth.create_enrollment_token(
            s, labels={"site": "lab"}, uses=uses, expires_in_seconds=3600, settings=Settings(),
            now=NOW,
        )
        return row.id


def _enroll(factory: sessionmaker[Session], token_id: str, key: str = KEY) -> tuple[str, str]:
    with transaction(factory) as s:
        device, credential = fleet.enroll(s, enrollment_token_id=token_id, name="cam",
                                          hardware=HW, labels={}, now=NOW, enrollment_key=key,
                                          settings=Settings())
        return device.id, credential


def test_enroll_repeated_with_the_same_key_returns_the_same_device_and_spends_one_use(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a one-use token presented twice with the same enrollment key."""
    token_id = _token(session_factory, uses=1)
    first_id, first_credential = _enroll(session_factory, token_id)
    again_id, again_credential = _enroll(session_factory, token_id)
    assert again_id == first_id and again_credential != first_credential
    with transaction(session_factory) as s:
        assert s.get(EnrollmentToken, token_id).uses_left == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Device)) == 1
        # Only the newest credential works: the lost one can never be used.
        assert authenticate(s, again_credential, now=NOW).id == first_id
        with pytest.raises(UnauthenticatedError):
            authenticate(s, first_credential, now=NOW)


def test_another_key_on_a_used_up_token_is_refused_and_creates_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a second agent (another key) with a one-use token the first one spent."""
    token_id = _token(session_factory, uses=1)
    _enroll(session_factory, token_id)
    with pytest.raises(UnauthenticatedError, match="no uses left"):
        _enroll(session_factory, token_id, key="o" * 43)
    with transaction(session_factory) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Device)) == 1


def test_the_same_key_with_another_token_is_another_device(
    session_factory: sessionmaker[Session],
) -> None:
    """The key is only good with the token it enrolled with: a data dir enrolled again with a
    new token (after the operator deleted the device, say) becomes a new device."""
    first, _ = _enroll(session_factory, _token(session_factory))
    second, _ = _enroll(session_factory, _token(session_factory))
    assert first != second


def test_enroll_without_a_key_spends_a_use_each_time(
    session_factory: sessionmaker[Session],
) -> None:
    """Agents that send no key (older ones) enroll as before: every call is a new device."""
    token_id = _token(session_factory, uses=2)
    a, _ = _enroll(session_factory, token_id, key="")
    b, _ = _enroll(session_factory, token_id, key="")
    assert a != b
    with pytest.raises(UnauthenticatedError):
        _enroll(session_factory, token_id, key="")


@pytest.mark.parametrize("key", ["short", "x" * 129, "has space in it..", "ünïcödé-key-1234"])
def test_malformed_enrollment_key_is_invalid_and_spends_nothing(
    session_factory: sessionmaker[Session], key: str
) -> None:
    """Input tried: a key too short, too long, with a space, with non-ASCII letters."""
    token_id = _token(session_factory, uses=1)
    with pytest.raises(InvalidArgumentError, match="enrollment_key"):
        _enroll(session_factory, token_id, key=key)
    with transaction(session_factory) as s:
        assert s.get(EnrollmentToken, token_id).uses_left == 1


def test_a_revoked_device_cannot_come_back_with_its_enrollment_key(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a revoked device repeating its Enroll with the token and key it used."""
    token_id = _token(session_factory, uses=3)
    device_id, credential = _enroll(session_factory, token_id)
    with transaction(session_factory) as s:
        fleet.revoke_device(s, device_id, now=NOW)
        assert fleet.revoke_device(s, device_id, now=NOW + dt.timedelta(days=1)).revoked_at == NOW
    with pytest.raises(UnauthenticatedError, match="revoked"):
        _enroll(session_factory, token_id)
    with transaction(session_factory) as s:
        with pytest.raises(UnauthenticatedError):
            authenticate(s, credential, now=NOW)
        assert s.get(EnrollmentToken, token_id).uses_left == 2  # nothing spent by the refusal
        assert [d.id for d in fleet.devices_matching(s, {})] == []
        listed = fleet.list_devices(s, "", PageAsk(), settings=Settings(), render=convert.device)
        assert [d.id for d in listed.items] == [device_id]  # kept for the record
