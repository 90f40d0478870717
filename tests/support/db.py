"""Test databases: private PostgreSQL databases, cleaning them, and migrated SQLite copies.

Invariants: every schema here is built by Alembic (``controlplane.db.upgrade``), never by
``create_all``; a private PostgreSQL database is named ``edgefleet_test_<random>`` so runs sharing
a server never touch each other's data; cleaning keeps ``alembic_version`` (the schema stays
migrated) and empties every other table.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from controlplane.db import upgrade
from tests.support.backends import BACKENDS as BACKENDS  # testdb.BACKENDS, as before

DATABASE_PREFIX = "edgefleet_test_"
# A test that leaks an open transaction would make TRUNCATE wait forever; fail loudly instead.
TRUNCATE_LOCK_TIMEOUT = "10s"


def _libpq_url(url: str) -> str:
    """``url`` as libpq/psycopg accepts it (no SQLAlchemy ``+driver`` suffix)."""
    parsed = make_url(url)
    return parsed.set(drivername=parsed.drivername.split("+", 1)[0]).render_as_string(
        hide_password=False
    )


def with_database(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name`` instead (query and credentials kept)."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str) -> str:
    """Create an empty ``edgefleet_test_<random>`` database on the server; return its URL."""
    name = DATABASE_PREFIX + secrets.token_hex(6)
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(url: str, server_url: str | None = None) -> None:
    """Drop the database ``url`` names, disconnecting anyone still connected to it.

    The DROP runs through ``server_url`` (any other database on the same server; default: its
    ``postgres`` database). Refuses (``ValueError``) a database whose name lacks the test prefix,
    so a wrong URL can never drop real data.
    """
    name = make_url(url).database or ""
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a {DATABASE_PREFIX}* test database")
    maintenance = server_url or with_database(url, "postgres")
    with psycopg.connect(_libpq_url(maintenance), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_migrated_database(server_url: str) -> str:
    """A new private database on the server with the schema at Alembic head; return its URL."""
    url = create_database(server_url)
    try:
        upgrade(url)
    except BaseException:
        drop_database(url, server_url)
        raise
    return url


def truncate_all(url: str) -> None:
    """Empty every table of the PostgreSQL database ``url`` except ``alembic_version``.

    Identity sequences restart. Raises ``psycopg.errors.LockNotAvailable`` when something (a
    leaked session from an earlier test) still holds a lock on a table.
    """
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables "
                "WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
            )
        ]
        if not tables:
            return
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(TRUNCATE_LOCK_TIMEOUT)))
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            )
        )


def sqlite_file_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_sqlite_template(path: Path) -> Path:
    """Create a SQLite file at ``path`` migrated to Alembic head (done once, then copied)."""
    upgrade(sqlite_file_url(path))
    return path


def copy_sqlite(template: Path, dest: Path) -> str:
    """Copy the migrated SQLite ``template`` to ``dest``; return the copy's URL.

    Uses SQLite's backup API, so the copy is consistent even if the template is in WAL mode.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(template)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return sqlite_file_url(dest)
