"""Regenerate (or check) the committed Python stubs for ``protos/*.proto``.

Run from anywhere: ``python -m protos.generate`` rewrites the stubs beside the .proto files;
``python -m protos.generate --check`` exits 1 when the committed stubs differ from what the pinned
grpcio-tools would write. The pin lives here and in pyproject's ``dev`` extra, so the output is
reproducible.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

GRPCIO_TOOLS_VERSION = "1.85.1"
ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _protoc(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto into ``out_dir/protos``; return the written files."""
    from grpc_tools import protoc  # dev dependency; imported late so --help works without it

    installed = metadata.version("grpcio-tools")
    if installed != GRPCIO_TOOLS_VERSION:
        raise SystemExit(
            f"grpcio-tools {installed} is installed but the stubs are pinned to "
            f"{GRPCIO_TOOLS_VERSION}: pip install grpcio-tools=={GRPCIO_TOOLS_VERSION}"
        )
    include = str(Path(protoc.__file__).parent / "_proto")
    protos = sorted(PROTO_DIR.glob("*.proto"))
    (out_dir / "protos").mkdir(parents=True, exist_ok=True)
    for proto in protos:
        rel = proto.relative_to(ROOT)
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{ROOT}",
                f"-I{include}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                str(rel),
            ]
        )
        if rc != 0:
            raise SystemExit(f"protoc failed on {rel} (exit {rc})")
    return sorted(p for p in (out_dir / "protos").iterdir() if p.name.endswith(SUFFIXES))


def stale_files() -> list[str]:
    """Names of committed stubs that differ from a fresh generation (missing ones included)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = _protoc(Path(tmp))
        stale = []
        for f in fresh:
            committed = PROTO_DIR / f.name
            if not committed.exists() or not filecmp.cmp(f, committed, shallow=False):
                stale.append(f.name)
        generated_names = {f.name for f in fresh}
        stale += [p.name for p in PROTO_DIR.iterdir()
                  if p.name.endswith(SUFFIXES) and p.name not in generated_names]
        return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if committed stubs are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated stubs: " + ", ".join(stale), file=sys.stderr)
            print("run: python -m protos.generate", file=sys.stderr)
            return 1
        print("generated stubs are up to date")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for f in _protoc(Path(tmp)):
            shutil.copyfile(f, PROTO_DIR / f.name)
            print(f"wrote protos/{f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
