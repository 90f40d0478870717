"""Reproducible performance runs: ``python -m benchmarks.NAME [--quick]`` (see README.md).

Each benchmark measures a ratio against a baseline taken in the same run on the same machine and
writes its figures, with the machine they came from, to ``benchmarks/results/NAME.json``. Modules
whose names start with ``_`` are shared helpers, not benchmarks (``make bench`` skips them).
"""
