"""Crash-safe file writes, for the agent's data dir and the control plane's alike.

Invariant: a reader of ``path`` sees the old content or the new, never a mix or a torn file, and
a write that returned survives a power cut: data is fsynced before the rename and the directory
after it. A file is never visible with a wider mode than asked for: the temp file is created
0600 (``mkstemp``) and only then given ``mode``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename, a new entry or an unlink in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp_beside(path: Path, data: bytes, *, mode: int) -> Path:
    """A fully written, fsynced temp file with ``mode`` in ``path``'s directory (same filesystem,
    so it can be renamed or linked onto ``path``). Raises OSError; leaves nothing behind then."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def replace_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (see the module invariant). Raises OSError."""
    path = Path(path)
    temp = write_temp_beside(path, data, mode=mode)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def move_into_place(source: Path, target: Path) -> None:
    """Rename a complete, fsynced file ``source`` onto ``target`` (same filesystem) and make the
    rename durable: ``target``'s directory is fsynced, and ``source``'s too when it differs.
    Raises OSError."""
    source, target = Path(source), Path(target)
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent.resolve() != target.parent.resolve():
        fsync_dir(source.parent)
