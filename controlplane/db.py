"""Database infrastructure: the one ``DeclarativeBase``, shared column types, engines, sessions.

Invariants:
- Every timestamp is stored and returned as an aware UTC ``datetime`` (``UTCDateTime``), on
  SQLite too.
- SQLite runs in WAL mode with a busy timeout and foreign keys on; a write transaction takes the
  write lock at BEGIN (IMMEDIATE), a read-only one does not. PostgreSQL is the multi-writer store.
- The schema is built only by Alembic (``upgrade``); tests never call ``create_all``.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from controlplane.config import normalise_db_url, redact_url
from controlplane.errors import DependencyUnreachableError, SchemaError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A transaction that lost to a concurrent one is run this many times in all.
ATTEMPTS = 5
#: Execution option marking a read-only session (SQLite then begins deferred, not IMMEDIATE).
READ_ONLY = "edgefleet_read_only"
FLEET_LOCK_KEY = 0x0EDF1EE7  # any constant; only lock_fleet takes it

T = TypeVar("T")
log = logging.getLogger(__name__)
# PostgreSQL SQLSTATEs that mean "another transaction got in the way; run yours again".
_PG_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone, so we re-attach it)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; EdgeFleet stores aware UTC datetimes only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime}
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def import_all_models() -> sa.MetaData:
    """Import every domain's tables so ``Base.metadata`` is complete (Alembic, tests)."""
    from controlplane.audit import models as _audit  # noqa: F401
    from controlplane.auth import models as _auth  # noqa: F401
    from controlplane.fleet import models as _fleet  # noqa: F401
    from controlplane.registry import models as _registry  # noqa: F401
    from controlplane.rollouts import models as _rollouts  # noqa: F401
    from controlplane.telemetry import models as _telemetry  # noqa: F401

    return Base.metadata


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalise_db_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = sa.create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite starts transactions only at the first write, so a read-then-write step
            # would read outside its transaction. Taking transaction control (SQLAlchemy's
            # documented recipe) makes every transaction a real snapshot: a writer whose snapshot
            # went stale gets SQLITE_BUSY (OperationalError, retried) instead of a lost update.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A write transaction takes SQLite's write lock up front and waits for it (busy
            # timeout). A deferred one that reads first and writes later fails at once with
            # "database is locked" when another writer committed in between, whatever the
            # timeout: that is how measurement tasks lost to concurrent pushes.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def is_contention(exc: BaseException) -> bool:
    """Whether ``exc`` says a concurrent transaction won, so running the whole transaction again
    is correct: SQLite's "database is locked" (a stale WAL snapshot fails at once, whatever the
    busy timeout), PostgreSQL's serialization failure and deadlock."""
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRYABLE:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


def retry_on_contention(fn: Callable[[], T]) -> T:
    """Call ``fn`` (one whole transaction), again when it loses to a concurrent transaction,
    up to ``ATTEMPTS`` times in all; any other error, or the last attempt's, is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == ATTEMPTS or not is_contention(exc):
                raise
            log.info("transaction lost to a concurrent one (%s); attempt %d of %d",
                     exc.__class__.__name__, attempt + 1, ATTEMPTS)
            # Jittered so the transactions that collided do not collide again in step.
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``. ``read_only`` sessions must not write: on SQLite they begin
    deferred (readers never wait for the write lock); others take it at BEGIN."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def insert_ignoring_conflicts(
    session: Session, table: type[Base], rows: list[dict[str, Any]], *, key: list[str],
    returning: Any = None,
) -> Any:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` on PostgreSQL and SQLite: a row whose key
    exists already (perhaps inserted by a concurrent transaction a moment ago) is skipped, never
    an IntegrityError. Returns the result (rows of ``returning``, when given, for those
    inserted)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=key)
    return session.execute(stmt if returning is None else stmt.returning(returning), rows)


def lock_fleet(session: Session) -> None:
    """Serialise fleet-wide one-time steps (the first admin token) across processes: a
    transaction-scoped advisory lock on PostgreSQL; on SQLite the write transaction already
    holds the database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": FLEET_LOCK_KEY})


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    migrations = Path(__file__).resolve().parent.parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", normalise_db_url(url).replace("%", "%%"))
    return cfg


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn "the database does not answer" (SQLAlchemy's OperationalError while connecting) into
    ``DependencyUnreachableError`` worded for the operator; other errors pass through."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        if is_contention(exc):
            raise
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else "?"
        raise DependencyUnreachableError(
            f"cannot use the database {redact_url(url)}: {reason}. Is it running, and are "
            f"--db / EDGEFLEET_DB right?"
        ) from exc


def current_revision(url: str) -> str | None:
    """The Alembic revision the database at ``url`` is at; None for an empty database.

    Raises DependencyUnreachableError when the database does not answer.
    """
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with reaching(url), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision in ``migrations/``: the schema this code needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("migrations/ holds no revision")
    return head


def schema_problem(url: str, who: str = "this server") -> str | None:
    """Why the schema at ``url`` cannot serve this code, or None when it is at the head revision.

    Raises DependencyUnreachableError when the database does not answer.
    """
    current, head = current_revision(url), head_revision()
    if current == head:
        return None
    return (f"database schema is at {current or 'nothing'}, {who} needs {head}: run "
            f"`edgefleet init --db URL` (or `edgefleet db upgrade --db URL`) first")


def check_schema(url: str, who: str = "this server") -> None:
    """Refuse to run on a database whose schema is not at the code's head revision.

    Raises SchemaError, DependencyUnreachableError.
    """
    if problem := schema_problem(url, who):
        raise SchemaError(problem)


def upgrade(url: str, revision: str = "head") -> dict[str, str | None]:
    """Bring the schema at ``url`` to ``revision`` with Alembic (idempotent).

    Returns ``{"from": before, "to": after}``, the revisions either side (None: empty database).
    """
    from alembic import command

    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the parent directory
    before = current_revision(url)
    with reaching(url):
        command.upgrade(alembic_config(url), revision)
    return {"from": before, "to": current_revision(url)}
