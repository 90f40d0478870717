"""Building variants with ai-edge-quantizer, away from the caller's process.

``build_isolated(model, kinds, ...)`` builds every kind in one child process
(``python -m controlplane.optimize.build``, through ``isolation.run_batch``): the quantizer is
imported once, and its calibration step runs the model in an interpreter, which a hostile model
could crash. Each kind's result is a file in ``out_dir`` or the reason it could not be built.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from controlplane.optimize.errors import VariantBuildError
from controlplane.optimize.isolation import EXIT_MISSING, item_arguments, report, run_batch
from controlplane.registry.errors import ModelRunError

_MODULE = "controlplane.optimize.build"


def build_isolated(model: Path, kinds: Sequence[str], *, calibration: Path | None,
                   max_samples: int, out_dir: Path, timeout: float) -> list[Path | ModelRunError]:
    """One result per kind, in order: the built model's path or why it failed. ``int8`` is
    calibrated on the first ``max_samples`` samples of ``calibration``; ``timeout`` bounds
    each kind.

    Raises InterpreterUnavailableError when the quantizer is not installed on this host.
    """
    args = ["--model", str(model), "--out-dir", str(out_dir), "--max-samples", str(max_samples)]
    if calibration is not None:
        args += ["--calibration", str(calibration)]
    reports = run_batch(_MODULE, args, list(kinds), timeout=timeout, what="building variants")
    return [r if isinstance(r, ModelRunError) else Path(str(r["path"])) for r in reports]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--calibration", type=Path)
    parser.add_argument("--max-samples", type=int, required=True)
    parser.add_argument("--item", action="append", default=[], metavar="INDEX=KIND")
    args = parser.parse_args(argv)
    try:
        import ai_edge_quantizer  # noqa: F401  (the optimize extra)
    except ImportError as exc:
        print(f"ai-edge-quantizer is not installed here ({exc}): "
              "pip install 'edgefleet[optimize]' on every worker", file=sys.stderr)
        return EXIT_MISSING
    from controlplane.optimize.recipes import build_variant

    source = args.model.read_bytes()
    calibration = None
    if args.calibration is not None:
        with np.load(args.calibration, allow_pickle=False) as archive:
            calibration = {k: archive[k][:args.max_samples] for k in archive.files}
    for index, kind in item_arguments(args.item):
        try:
            built = build_variant(source, kind, calibration=calibration)
        except (VariantBuildError, ValueError) as exc:
            report(index, error=str(exc)[:2000])
            continue
        out = args.out_dir / f"{index}-{kind}.tflite"
        out.write_bytes(built)
        report(index, path=str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
