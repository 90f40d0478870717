"""Running variants in one named interpreter, away from the caller's process.

``evaluate_isolated(models, samples, interpreter=...)`` runs every model in one child process
(``python -m controlplane.optimize.evaluate``, through ``isolation.run_batch``) that loads the
interpreter once: it runs each model on every sample and times it (``registry.measure.evaluate``).
The two interpreters the fleet runs each bundle their own TFLite, so each is used in a process of
its own, never side by side.

Invariants:
- One model's failure is that model's result (a ``ModelRunError``), never the others'.
- Inputs and outputs travel as ``.npz`` files in a private temp directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from controlplane.optimize.isolation import EXIT_MISSING, item_arguments, report, run_batch
from controlplane.registry.errors import InterpreterUnavailableError, ModelRunError
from controlplane.registry.measure import Evaluation, evaluate

_MODULE = "controlplane.optimize.evaluate"


def evaluate_isolated(
    models: Sequence[Path],
    samples: Mapping[str, np.ndarray],
    *,
    interpreter: str,
    runs: int,
    timeout: float,
) -> list[Evaluation | ModelRunError]:
    """One result per model, in order. ``timeout`` bounds each model's run.

    Raises InterpreterUnavailableError when ``interpreter`` is not installed on this host.
    """
    with tempfile.TemporaryDirectory(prefix="edgefleet-evaluate-") as tmp:
        out_dir = Path(tmp)
        np.savez(out_dir / "inputs.npz", **{k: np.asarray(v) for k, v in samples.items()})
        args = ["--interpreter", interpreter, "--inputs", str(out_dir / "inputs.npz"),
                "--runs", str(runs), "--out-dir", str(out_dir)]
        reports = run_batch(_MODULE, args, [str(m) for m in models], timeout=timeout,
                            what=f"running the model in {interpreter}")
        results: list[Evaluation | ModelRunError] = []
        for i, r in enumerate(reports):
            if isinstance(r, ModelRunError):
                results.append(r)
                continue
            with np.load(out_dir / f"{i}.npz", allow_pickle=False) as outputs:
                results.append(Evaluation(
                    outputs={k: outputs[k] for k in outputs.files},
                    latency_ms_median=float(r["latency_ms_median"]),
                    latency_ms_p95=float(r["latency_ms_p95"]),
                    interpreter_name=str(r["interpreter_name"]),
                    interpreter_version=str(r["interpreter_version"]),
                ))
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    parser.add_argument("--interpreter", required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--item", action="append", default=[], metavar="INDEX=MODEL_PATH")
    args = parser.parse_args(argv)
    with np.load(args.inputs, allow_pickle=False) as archive:
        samples = {k: archive[k] for k in archive.files}
    for index, path in item_arguments(args.item):
        try:
            result = evaluate(Path(path), samples, runs=args.runs, interpreter=args.interpreter)
        except InterpreterUnavailableError as exc:
            print(exc, file=sys.stderr)
            return EXIT_MISSING
        except (ModelRunError, ValueError) as exc:
            report(index, error=str(exc)[:2000])
            continue
        np.savez(args.out_dir / f"{index}.npz", **result.outputs)
        report(index, latency_ms_median=result.latency_ms_median,
               latency_ms_p95=result.latency_ms_p95, interpreter_name=result.interpreter_name,
               interpreter_version=result.interpreter_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
