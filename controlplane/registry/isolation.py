"""Running a model in a separate process, so a hostile or broken model cannot take the worker
(or, in the embedded default, the whole server) down with it, and cannot run forever.

``measure_isolated`` runs ``python -m controlplane.registry.isolation PATH --runs N`` with a
timeout and turns what happened into the registry's errors:
- the model failed to load or run          -> ModelRunError (the model's fault; final)
- the interpreter crashed the process      -> ModelRunError naming the signal (final)
- it took longer than the timeout          -> ModelRunError (final)
- no interpreter installed on this host    -> InterpreterUnavailableError (the host's fault)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path

from controlplane.registry.errors import InterpreterUnavailableError, ModelRunError
from controlplane.registry.measure import Measurement, measure_latency

_EXIT_MODEL = 3
_EXIT_NO_INTERPRETER = 4


def measure_isolated(model_path: Path, *, runs: int, timeout: float) -> Measurement:
    """``measure_latency`` in a child process bounded by ``timeout`` seconds."""
    cmd = [sys.executable, "-m", "controlplane.registry.isolation", str(model_path),
           "--runs", str(runs)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ModelRunError(f"running the model took longer than {timeout:.0f} s") from exc
    message = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode == 0:
        return Measurement(**json.loads(done.stdout))
    if done.returncode == _EXIT_NO_INTERPRETER:
        raise InterpreterUnavailableError(message)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise ModelRunError(f"the interpreter crashed running the model ({name})")
    raise ModelRunError(message or f"measuring failed (exit {done.returncode})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.registry.isolation")
    parser.add_argument("model", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        m = measure_latency(args.model, runs=args.runs)
    except InterpreterUnavailableError as exc:
        print(exc, file=sys.stderr)
        return _EXIT_NO_INTERPRETER
    except ModelRunError as exc:
        print(exc, file=sys.stderr)
        return _EXIT_MODEL
    print(json.dumps(dataclasses.asdict(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
