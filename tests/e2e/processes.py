"""Running EdgeFleet's own commands as real processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
BIN = Path(sys.executable).parent


def command(name: str) -> str:
    return str(BIN / name)


class Fleet:
    """Processes started for one test, stopped (SIGTERM, then SIGKILL) when it ends."""

    def __init__(self, root: Path, server: str) -> None:
        self.root = root
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        self.env["EDGEFLEET_SERVER"] = server
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, label: str, args: list[str],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``args`` with the fleet's environment, plus ``env`` for this process only."""
        log = (self.root / f"{label}.log").open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                env={**self.env, **(env or {})})
        self.procs[label] = proc
        return proc

    def log(self, label: str) -> str:
        return (self.root / f"{label}.log").read_text(errors="replace")

    def alive(self) -> None:
        for label, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{label} exited {proc.returncode}:\n{self.log(label)[-3000:]}"
                )

    def cli(self, *args: str, check: bool = True) -> Any:
        """``edgefleet ARGS -o json``: the parsed document, or the CompletedProcess if not check."""
        out = subprocess.run(
            [command("edgefleet"), *args, "-o", "json"],
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        if not check:
            return out
        assert out.returncode == 0, f"edgefleet {args}: {out.returncode} {out.stderr.decode()}"
        return json.loads(out.stdout)

    def agent(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [command("edgefleet-agent"), *args], env=self.env, capture_output=True, timeout=60
        )

    def stop(self, label: str, timeout: float = 20) -> int:
        proc = self.procs[label]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{label} ignored SIGTERM for {timeout} s") from None
        return proc.returncode

    def stop_all(self) -> None:
        for label in reversed(list(self.procs)):
            with suppress(AssertionError):
                self.stop(label)


@contextmanager
def fleet(root: Path, server: str) -> Iterator[Fleet]:
    f = Fleet(root, server)
    try:
        yield f
    finally:
        f.stop_all()


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = 60,
    check: Callable[[], None] | None = None,
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        value = probe()
        if value is not None:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
