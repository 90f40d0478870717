"""Issuing and checking credentials.

Invariants:
- Secrets are returned once, at creation, and stored only as hashes.
- An enrollment token is spent with one atomic conditional UPDATE (``uses_left > 0`` and not
  expired), so two agents racing for the last use cannot both win, on any backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.auth import tokens
from controlplane.auth.models import EnrollmentToken, OperatorToken
from controlplane.auth.policy import ROLES, Principal
from controlplane.config import Settings
from controlplane.db import lock_fleet
from controlplane.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page
from controlplane.selectors import validate_labels
from controlplane.validation import check_label_count, is_token_id, shown


def create_operator_token(
    session: Session,
    *,
    role: str,
    description: str = "",
    created_by: str | None = None,
    expires_in_seconds: int | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> tuple[OperatorToken, str]:
    """A new operator token row and its secret string (shown once). ``expires_in_seconds``
    None: it never expires; otherwise it must be positive and at most the settings'
    ``operator_token_max_ttl_seconds``.

    Raises InvalidArgumentError (unknown role, a description or lifetime out of bounds).
    """
    settings = settings or Settings()
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown role {shown(role)}: use one of {', '.join(ROLES)}")
    if len(description) > settings.max_description_chars or "\x00" in description:
        raise InvalidArgumentError(
            f"a token description is at most {settings.max_description_chars} characters of "
            f"text (setting max_description_chars)")
    expires_at = None
    if expires_in_seconds is not None:
        if not 0 < expires_in_seconds <= settings.operator_token_max_ttl_seconds:
            raise InvalidArgumentError(
                f"a token's lifetime must be between 1 s and "
                f"{settings.operator_token_max_ttl_seconds} s (setting "
                f"operator_token_max_ttl_seconds), got {expires_in_seconds} s")
        expires_at = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=expires_in_seconds)
    token_id, secret, token = tokens.mint("operator")
    row = OperatorToken(
        id=token_id,
        secret_hash=tokens.hash_secret(secret),
        role=role,
        description=description,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def fleet_initialized(session: Session) -> bool:
    """Whether this database serves a fleet already: its first admin token was issued."""
    return bool(session.scalar(sa.select(sa.exists().where(OperatorToken.id.is_not(None)))))


def ensure_admin_token(session: Session) -> str | None:
    """On an empty database, create the first admin token and return it; otherwise None."""
    lock_fleet(session)
    if fleet_initialized(session):
        return None
    _, token = create_operator_token(session, role="admin", description="created at first start")
    return token


_TOKENS: Order[OperatorToken] = Order("token", (
    Key(OperatorToken.created_at, lambda t: t.created_at, "time"),
    Key(OperatorToken.id, lambda t: t.id),
))


def list_operator_tokens(
    session: Session, page: PageAsk, *, settings: Settings, render: Callable[[OperatorToken], M]
) -> Page[M]:
    """A page of the operator tokens, revoked ones included, oldest first (secrets are not
    kept), each as ``render`` makes it. Raises InvalidArgumentError (page size or token)."""
    return read_page(session, sa.select(OperatorToken), _TOKENS, page, settings=settings,
                     render=render)


def revoke_operator_token(session: Session, token_id: str, *, now: dt.datetime) -> OperatorToken:
    """Revoke an operator token (idempotent). Refuses to revoke the last working admin token:
    nobody could create tokens again without access to the database.

    Raises NotFoundError, FailedPreconditionError.
    """
    row = (session.get(OperatorToken, token_id, with_for_update=True)
           if is_token_id(token_id) else None)
    if row is None:
        raise NotFoundError(f"no operator token {shown(token_id)}: see `edgefleet token list`")
    if row.revoked_at is not None:
        return row
    if row.role == "admin":
        # Lock every live admin row so two admins revoking each other cannot both succeed.
        admins = session.scalars(
            sa.select(OperatorToken)
            .where(OperatorToken.role == "admin", OperatorToken.revoked_at.is_(None))
            .with_for_update()
        ).all()
        if [a.id for a in admins if a.works_at(now)] == [row.id]:
            raise FailedPreconditionError(
                f"{token_id} is the last admin token: create another with "
                f"`edgefleet token create --role admin` first"
            )
    row.revoked_at = now
    session.flush()
    return row


def revoke_enrollment_token(
    session: Session, token_id: str, *, now: dt.datetime
) -> EnrollmentToken:
    """Revoke an enrollment token (idempotent): no device enrolls with it any more, devices
    already enrolled with it keep their own credentials. Raises NotFoundError."""
    row = (session.get(EnrollmentToken, token_id, with_for_update=True)
           if is_token_id(token_id) else None)
    if row is None:
        raise NotFoundError(f"no enrollment token {shown(token_id)}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


def create_enrollment_token(
    session: Session,
    *,
    labels: Mapping[str, str],
    uses: int | None,
    expires_in_seconds: int | None,
    settings: Settings,
    now: dt.datetime,
    created_by: str | None = None,
) -> tuple[EnrollmentToken, str]:
    """A new enrollment token and its secret (shown once). ``uses`` and ``expires_in_seconds``
    None take the settings' defaults; both are capped by the settings (a token good for a
    million devices or for years is a leaked fleet, not a convenience).

    Raises InvalidArgumentError (bad labels, no use, no lifetime, over a cap),
    ResourceExhaustedError (more than ``max_labels`` labels).
    """
    labels = validate_labels(labels)
    check_label_count(labels, settings=settings, what="an enrollment token")
    uses = settings.enrollment_token_default_uses if uses is None else uses
    ttl = (settings.enrollment_token_default_ttl_seconds if expires_in_seconds is None
           else expires_in_seconds)
    if uses < 1:
        raise InvalidArgumentError("an enrollment token needs at least one use")
    if ttl <= 0:
        raise InvalidArgumentError("an enrollment token's lifetime must be positive")
    if uses > settings.enrollment_token_max_uses:
        raise InvalidArgumentError(
            f"an enrollment token allows at most {settings.enrollment_token_max_uses} uses "
            f"(asked for {uses}): create several tokens")
    if ttl > settings.enrollment_token_max_ttl_seconds:
        raise InvalidArgumentError(
            f"an enrollment token lives at most {settings.enrollment_token_max_ttl_seconds}s "
            f"(asked for {ttl}s): create a new token when it expires")
    token_id, secret, token = tokens.mint("enrollment")
    row = EnrollmentToken(
        id=token_id,
        secret_hash=tokens.hash_secret(secret),
        labels=dict(labels),
        uses_left=uses,
        uses_total=uses,
        expires_at=now + dt.timedelta(seconds=ttl),
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row, token


#: Whether a device that may connect (enrolled, not revoked) has this id and secret. The fleet
#: domain owns devices; it hands this in (``ControlPlane.authenticate``), so auth never imports it.
DeviceSecretCheck = Callable[[Session, str, str], bool]


def authenticate(
    session: Session, token: str, *, now: dt.datetime, device_secret_matches: DeviceSecretCheck
) -> Principal:
    """The principal behind a bearer token.

    Raises UnauthenticatedError for a malformed, unknown, revoked or expired token; the message
    does not say which, so a forger learns nothing about which ids exist.
    """
    parsed = tokens.parse(token)
    if parsed is None:
        raise UnauthenticatedError("malformed token")
    if parsed.kind == "operator":
        op = session.get(OperatorToken, parsed.id)
        if op and op.revoked_at is None and tokens.secret_matches(parsed.secret, op.secret_hash):
            if op.expires_at is not None and op.expires_at <= now:
                # Only the holder of the secret gets this far, so saying why leaks nothing.
                raise UnauthenticatedError(
                    f"token {op.id} expired at {op.expires_at:%Y-%m-%dT%H:%M:%SZ}: ask an admin "
                    f"for a new one (`edgefleet token create --role {op.role} --expires 30d`)")
            return Principal(kind="operator", id=op.id, role=op.role)
    elif parsed.kind == "enrollment":
        en = session.get(EnrollmentToken, parsed.id)
        if en and en.revoked_at is None and tokens.secret_matches(parsed.secret, en.secret_hash):
            if en.expires_at <= now:
                raise UnauthenticatedError("enrollment token expired: ask for a new one")
            # Uses are not checked here: they are taken atomically when spent, and an agent
            # repeating an Enroll whose answer it lost may present a token it used up itself.
            return Principal(kind="enrollment", id=en.id)
    elif parsed.kind == "device" and device_secret_matches(session, parsed.id, parsed.secret):
        return Principal(kind="device", id=parsed.id)
    raise UnauthenticatedError("unknown or invalid token")


def spend_enrollment_token(session: Session, token_id: str, *, now: dt.datetime) -> dict[str, Any]:
    """Take one use of an enrollment token atomically; return its labels.

    Raises UnauthenticatedError when no use is left or it expired meanwhile.
    """
    result = session.execute(
        sa.update(EnrollmentToken)
        .where(
            EnrollmentToken.id == token_id,
            EnrollmentToken.uses_left > 0,
            EnrollmentToken.expires_at > now,
            EnrollmentToken.revoked_at.is_(None),
        )
        .values(uses_left=EnrollmentToken.uses_left - 1)
        .returning(EnrollmentToken.labels)
    )
    row = result.first()
    if row is None:
        raise UnauthenticatedError(
            "enrollment token has no uses left (or just expired or was revoked): ask for a new one"
        )
    return dict(row[0] or {})
