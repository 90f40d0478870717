"""Writing and reading the audit log.

Invariant: an entry is written in the same transaction as the change it records, so the log
never claims a change that was rolled back, nor misses one that was committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.audit.models import AuditEvent
from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError
from controlplane.pages import Key, M, Order, Page, PageAsk, read_page

ENGINE = "engine"


@dataclass(frozen=True)
class Actor:
    """Who acts: an operator token (its id and role), or the engine."""

    id: str
    role: str

    @classmethod
    def engine(cls) -> Actor:
        return cls(ENGINE, ENGINE)


def record(session: Session, actor: Actor, action: str, *, subject: str, subject_id: str,
           now: dt.datetime, reason: str = "", wave: int = -1,
           details: dict[str, Any] | None = None, settings: Settings) -> AuditEvent:
    """Add one entry. A reason longer than ``max_reason_chars`` is refused (it is what an
    operator typed: cutting it would change what they said)."""
    check_reason(reason, settings=settings)
    event = AuditEvent(actor=actor.id, actor_role=actor.role, action=action, subject=subject,
                       subject_id=subject_id, wave=wave, reason=reason,
                       details=details or {}, at=now)
    session.add(event)
    return event


def check_reason(reason: str, *, settings: Settings) -> str:
    """Raises InvalidArgumentError for a reason past ``max_reason_chars``."""
    if len(reason) > settings.max_reason_chars:
        raise InvalidArgumentError(
            f"the reason is {len(reason)} characters; at most {settings.max_reason_chars} "
            "(setting max_reason_chars)")
    return reason


_OLDEST_FIRST: Order[AuditEvent] = Order("audit", (
    Key(AuditEvent.at, lambda e: e.at, "time"),
    Key(AuditEvent.id, lambda e: e.id),
))
_NEWEST_FIRST: Order[AuditEvent] = Order("audit-newest", _OLDEST_FIRST.keys, descending=True)


def list_events(session: Session, page: PageAsk, *, settings: Settings,
                render: Callable[[AuditEvent], M], subject_id: str = "", actor: str = "",
                oldest_first: bool = False) -> Page[M]:
    """A page of the log, newest first (``oldest_first`` for a rollout's history), only
    ``subject_id``'s and ``actor``'s entries when given. Raises InvalidArgumentError (page size
    or token, or a filter longer than any id)."""
    query = sa.select(AuditEvent)
    for value, column in ((subject_id, AuditEvent.subject_id), (actor, AuditEvent.actor)):
        if len(value) > 64:
            raise InvalidArgumentError("an audit filter is an id: at most 64 characters")
        if value:
            query = query.where(column == value)
    return read_page(session, query, _OLDEST_FIRST if oldest_first else _NEWEST_FIRST, page,
                     settings=settings, render=render, scope=f"{subject_id}|{actor}")
