"""Rendering for people (aligned plain-text tables) and for scripts (one JSON document).

Invariants: with ``-o json`` stdout receives exactly one JSON document per command and nothing
else; notes, warnings and progress always go to stderr. Tables are plain text with no colour, so
they read the same in a terminal, a pipe and a log. JSON keeps exact bytes; tables may abbreviate.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TextIO

Format = Literal["table", "json"]

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``"-"``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in _SIZE_UNITS:
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def cell(value: Any) -> str:
    """How one JSON-ish value reads in a table cell: ``None`` -> ``-``, dicts as ``k=v,...``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value) or "-"
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns left-aligned to their widest cell, two spaces apart, headers upper-cased."""
    text_rows = [[h.upper() for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in text_rows) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in text_rows]
    return "\n".join(lines)


def render_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """A ``name: value`` listing with the values aligned."""
    width = max((len(name) for name, _ in pairs), default=0) + 1
    return "\n".join(f"{(name + ':').ljust(width)} {cell(value)}" for name, value in pairs)


class Output:
    """Where a command's results, notes and progress go, chosen once by ``-o``.

    The streams are looked up at each write (not captured at construction) so that
    redirection by the caller, e.g. pytest's capture, is honoured.
    """

    def __init__(self, fmt: Format) -> None:
        self.format: Format = fmt

    @property
    def json(self) -> bool:
        return self.format == "json"

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def document(self, doc: Any) -> None:
        """The command's JSON result: the only thing written to stdout under ``-o json``."""
        self.stdout.write(json.dumps(doc, indent=2) + "\n")
        self.stdout.flush()

    def text(self, text: str) -> None:
        """The command's human result (table mode)."""
        self.stdout.write(text.rstrip("\n") + "\n")
        self.stdout.flush()

    def result(self, doc: Any, render: Any) -> None:
        """``doc`` as JSON or ``render(doc)`` as text, whichever ``-o`` asked for."""
        if self.json:
            self.document(doc)
        else:
            self.text(render(doc))

    def note(self, message: str) -> None:
        """A remark for the person at the terminal; never on stdout."""
        self.stderr.write(message.rstrip("\n") + "\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        self.note(f"warning: {message}")

    def error(self, message: str) -> None:
        self.note(f"edgefleet: error: {message}")

    @property
    def interactive(self) -> bool:
        """True when stdout is a terminal a person watches (redraws are allowed)."""
        return not self.json and _isatty(self.stdout)

    @property
    def progress_enabled(self) -> bool:
        """Progress bars only for a person: not under ``-o json``, and only on a terminal."""
        return not self.json and _isatty(self.stderr)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Any]:
        """Yields ``advance(n)``: a rich progress bar on stderr, or a no-op when disabled."""
        if not self.progress_enabled:
            yield lambda _n: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(file=self.stderr)) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


    @contextmanager
    def steps(self, description: str) -> Iterator[Any]:
        """Yields ``update(done, total, status)``: a progress bar of steps (not bytes) on
        stderr, or a no-op when disabled."""
        if not self.progress_enabled:
            yield lambda _done, _total, _status: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"))
        with Progress(*columns, console=Console(file=self.stderr)) as bar:
            task = bar.add_task(description, total=None, status="")

            def update(done: int, total: int, status: str) -> None:
                bar.update(task, completed=done, total=total, status=status)

            yield update


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams are not terminals
        return False
