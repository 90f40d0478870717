"""Running model work in a child process, so a hostile or broken model cannot take the worker
(or, in the embedded default, the whole server) down with it, and cannot run forever.

``run_child`` runs ``python -m MODULE ARGS`` with a timeout and turns what happened into the
registry's errors:
- the child reported the model's fault (exit ``EXIT_MODEL``)  -> ModelRunError (final)
- the interpreter or quantizer crashed the process            -> ModelRunError naming the signal
- it took longer than the timeout                            -> ModelRunError (final)
- a package is not installed on this host (``EXIT_MISSING``) -> InterpreterUnavailableError
  (the host's fault: retried, never blamed on the model)
The child's last stderr line is its message; stdout is its result.

``run_batch`` runs many items in one child (one interpreter or quantizer import for all) that
reports each item as a JSON line ``{"index": i, ...}`` as soon as it is done, or
``{"index": i, "error": "..."}`` for that item's fault. If the child dies, the items it reported
keep their results and each unfinished one runs again alone, so a crash is pinned on the item
that causes it and never on its neighbours.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from controlplane.registry.errors import InterpreterUnavailableError, ModelRunError

EXIT_MODEL = 3
EXIT_MISSING = 4


class ChildFailed(ModelRunError):
    """The child crashed, timed out or reported the model's fault; ``stdout`` is what it wrote
    before that (a child reporting item by item may have finished some)."""

    def __init__(self, message: str, stdout: str) -> None:
        super().__init__(message)
        self.stdout = stdout


def run_child(module: str, args: list[str], *, timeout: float, what: str) -> str:
    """The child's stdout after it exited 0. ``what`` names the work in messages
    ("running models in tflite-runtime", "building float16").

    Raises ChildFailed (a ModelRunError) or InterpreterUnavailableError, as above.
    """
    cmd = [sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ChildFailed(f"{what} took longer than {timeout:.0f} s", _text(exc.stdout)) from exc
    message = (done.stderr.strip().splitlines() or [""])[-1][:2000]
    if done.returncode == 0:
        return done.stdout
    if done.returncode == EXIT_MISSING:
        raise InterpreterUnavailableError(message)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise ChildFailed(f"{what}: the process crashed ({name})", done.stdout)
    raise ChildFailed(message or f"{what} failed (exit {done.returncode})", done.stdout)


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even for text=True runs.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_batch(module: str, args: list[str], items: Sequence[str], *, timeout: float,
              what: str) -> list[dict[str, Any] | ModelRunError]:
    """One result per item, in order: the item's JSON report, or a ModelRunError for it.
    ``items`` are passed as ``--item INDEX=VALUE``; ``timeout`` bounds each item.

    Raises InterpreterUnavailableError (the host lacks a package: nothing is the items' fault).
    """
    results: list[dict[str, Any] | ModelRunError | None] = [None] * len(items)

    def run(which: Sequence[int], limit: float) -> None:
        argv = [*args, *(a for i in which for a in ("--item", f"{i}={items[i]}"))]
        try:
            stdout = run_child(module, argv, timeout=limit, what=what)
        except ChildFailed as exc:
            _collect(exc.stdout, results)
            raise
        _collect(stdout, results)

    try:
        run(range(len(items)), timeout * len(items))
    except ModelRunError:
        for i in [i for i, r in enumerate(results) if r is None]:
            try:
                run([i], timeout)
            except ModelRunError as exc:
                results[i] = exc
    return [r if r is not None else ModelRunError(f"{what}: no result was reported")
            for r in results]


def _collect(stdout: str, results: list[dict[str, Any] | ModelRunError | None]) -> None:
    for line in stdout.splitlines():
        try:
            report = json.loads(line)
            i = int(report["index"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short by a crash, or a library's print: not a report
        if 0 <= i < len(results):
            results[i] = ModelRunError(str(report["error"])) if "error" in report else report


def item_arguments(specs: Sequence[str]) -> list[tuple[int, str]]:
    """The child's side of ``--item INDEX=VALUE``."""
    pairs = []
    for spec in specs:
        index, _, value = spec.partition("=")
        pairs.append((int(index), value))
    return pairs


def report(index: int, **fields: Any) -> None:
    """The child's side: one item's result line, flushed at once so a later crash keeps it."""
    print(json.dumps({"index": index, **fields}), flush=True)
