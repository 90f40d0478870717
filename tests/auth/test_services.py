"""Issuing and checking credentials against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controlplane.api import convert
from controlplane.auth import services
from controlplane.auth.models import EnrollmentToken
from controlplane.auth.policy import Principal
from controlplane.config import Settings
from controlplane.db import make_engine, make_session_factory, transaction
from controlplane.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)
from controlplane.fleet import services as fleet_services
from controlplane.pages import PageAsk

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def authenticate(s: Session, token: str, *, now: dt.datetime) -> Principal:
    """``auth.services.authenticate`` wired as the plane wires it (with the fleet's devices)."""
    return services.authenticate(s, token, now=now,
                                 device_secret_matches=fleet_services.device_secret_matches)



def test_first_admin_token_is_created_once(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as s:
        token = services.ensure_admin_token(s)
    assert token is not None
    with transaction(session_factory) as s:
        assert services.ensure_admin_token(s) is None
        p = authenticate(s, token, now=NOW)
    assert (p.kind, p.role) == ("operator", "admin")


def test_secrets_are_stored_hashed(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as s:
        row, token = services.create_operator_token(s, role="viewer")
        assert token.split("_", 2)[2] not in row.secret_hash
        assert len(row.secret_hash) == 64


@pytest.mark.parametrize("bad", ["", "efo_nope_nope", "not-a-token"])
def test_unknown_or_malformed_tokens_are_refused(
    session_factory: sessionmaker[Session], bad: str
) -> None:
    """Input tried: empty string, a well-formed token for an id that does not exist, garbage."""
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError):
        authenticate(s, bad, now=NOW)


def test_wrong_secret_for_a_real_id_is_refused(session_factory: sessionmaker[Session]) -> None:
    """Input tried: a real token id with a forged secret."""
    with transaction(session_factory) as s:
        _row, token = services.create_operator_token(s, role="admin")
    forged = token[: token.rindex("_") + 1] + "A" * 43
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError):
        authenticate(s, forged, now=NOW)


def test_unknown_role_is_invalid(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as s, pytest.raises(InvalidArgumentError):
        services.create_operator_token(s, role="root")


def test_expired_enrollment_token_is_refused(session_factory: sessionmaker[Session]) -> None:
    """Input tried: an enrollment token one second past its expiry."""
    with transaction(session_factory) as s:
        _, token = services.create_enrollment_token(
            s, labels={}, uses=1, expires_in_seconds=3600, settings=Settings(), now=NOW
        )
    later = NOW + dt.timedelta(hours=1, seconds=1)
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError, match="expired"):
        authenticate(s, token, now=later)


def test_enrollment_token_cannot_be_used_past_its_uses(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: a two-use token spent a third time."""
    with transaction(session_factory) as s:
        row, token = services.create_enrollment_token(
            s, labels={"site": "berlin"}, uses=2, expires_in_seconds=3600, settings=Settings(),
            now=NOW,
        )
    for _ in range(2):
        with transaction(session_factory) as s:
            assert services.spend_enrollment_token(s, row.id, now=NOW) == {"site": "berlin"}
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError, match="no uses"):
        services.spend_enrollment_token(s, row.id, now=NOW)
    # The token still authenticates (for Enroll only): an agent repeating an Enroll whose answer
    # it lost presents a token it used up itself; uses are checked when one is spent.
    with transaction(session_factory) as s:
        assert authenticate(s, token, now=NOW).kind == "enrollment"


def test_two_workers_race_for_the_last_use_on_postgres(pg_clean_url: str) -> None:
    """Eight threads with their own connections spend a 3-use token at once: exactly 3 win."""
    engine = make_engine(pg_clean_url, pool_size=10)
    factory = make_session_factory(engine)
    with transaction(factory) as s:
        row, _ = services.create_enrollment_token(
            s, labels={}, uses=3, expires_in_seconds=3600, settings=Settings(), now=NOW
        )
    barrier = threading.Barrier(8)
    wins: list[bool] = []
    lock = threading.Lock()

    def spend() -> None:
        barrier.wait()
        try:
            with transaction(factory) as s:
                services.spend_enrollment_token(s, row.id, now=NOW)
            ok = True
        except UnauthenticatedError:
            ok = False
        with lock:
            wins.append(ok)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True] * 3
    with transaction(factory) as s:
        assert s.get(EnrollmentToken, row.id).uses_left == 0
    engine.dispose()


def test_revoked_operator_token_no_longer_authenticates(
    session_factory: sessionmaker[Session],
) -> None:
    """Input tried: an operator token used after it was revoked, and revoked a second time."""
    with transaction(session_factory) as s:
        services.ensure_admin_token(s)
        row, token = services.create_operator_token(s, role="operator")
    with transaction(session_factory) as s:
        services.revoke_operator_token(s, row.id, now=NOW)
    with transaction(session_factory) as s:
        again = services.revoke_operator_token(s, row.id, now=NOW + dt.timedelta(hours=1))
        assert again.revoked_at == NOW  # idempotent: the first revocation time stands
        with pytest.raises(UnauthenticatedError):
            authenticate(s, token, now=NOW)


def test_the_last_admin_token_cannot_be_revoked(session_factory: sessionmaker[Session]) -> None:
    """Input tried: revoking the only admin token; then, with a second admin, the first one."""
    with transaction(session_factory) as s:
        first = services.ensure_admin_token(s)
    assert first is not None
    first_id = first.split("_")[1]
    with transaction(session_factory) as s, pytest.raises(FailedPreconditionError,
                                                          match="last admin token"):
        services.revoke_operator_token(s, first_id, now=NOW)
    with transaction(session_factory) as s:
        services.create_operator_token(s, role="admin")
    with transaction(session_factory) as s:
        assert services.revoke_operator_token(s, first_id, now=NOW).revoked_at == NOW


def test_revoking_an_unknown_token_is_not_found(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as s, pytest.raises(NotFoundError, match="token list"):
        services.revoke_operator_token(s, "0123456789abcdef", now=NOW)
    with transaction(session_factory) as s, pytest.raises(NotFoundError):
        services.revoke_enrollment_token(s, "0123456789abcdef", now=NOW)


def test_revoked_enrollment_token_enrolls_nobody(session_factory: sessionmaker[Session]) -> None:
    """Input tried: a token with uses left, revoked, then presented and spent."""
    with transaction(session_factory) as s:
        row, token = services.create_enrollment_token(
            s, labels={}, uses=5, expires_in_seconds=3600, settings=Settings(), now=NOW
        )
    with transaction(session_factory) as s:
        assert services.revoke_enrollment_token(s, row.id, now=NOW).uses_left == 5
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError):
        authenticate(s, token, now=NOW)
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError, match="revoked"):
        services.spend_enrollment_token(s, row.id, now=NOW)


def test_an_expired_operator_token_is_unauthenticated_and_says_so(
        session_factory: sessionmaker[Session]) -> None:
    """Input tried: a viewer token created with a one-hour lifetime, used an hour and a second
    later; and lifetimes of 0 s and of ten years."""
    with transaction(session_factory) as s:
        row, token = services.create_operator_token(s, role="viewer", expires_in_seconds=3600,
                                                    now=NOW)
        assert row.expires_at == NOW + dt.timedelta(hours=1)
    with transaction(session_factory) as s:
        assert authenticate(s, token, now=NOW + dt.timedelta(minutes=59)).role == "viewer"
    with transaction(session_factory) as s, pytest.raises(UnauthenticatedError,
                                                          match=r"expired at .*token create"):
        authenticate(s, token, now=NOW + dt.timedelta(hours=1, seconds=1))
    for seconds in (0, 10 * 366 * 86400):
        with transaction(session_factory) as s, pytest.raises(InvalidArgumentError,
                                                              match="lifetime"):
            services.create_operator_token(s, role="viewer", expires_in_seconds=seconds, now=NOW)


def test_an_expired_admin_token_does_not_count_as_the_last_working_one(
        session_factory: sessionmaker[Session]) -> None:
    """Input tried: revoking the first admin token while the only other admin token has
    expired: refused, since nobody could create tokens afterwards."""
    with transaction(session_factory) as s:
        services.ensure_admin_token(s)
        first = services.list_operator_tokens(s, PageAsk(), settings=Settings(),
                                               render=convert.operator_token).items[0]
        services.create_operator_token(s, role="admin", expires_in_seconds=60, now=NOW)
    with transaction(session_factory) as s, pytest.raises(FailedPreconditionError,
                                                          match="last admin token"):
        services.revoke_operator_token(s, first.id, now=NOW + dt.timedelta(minutes=2))
