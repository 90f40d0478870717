"""``edgefleet demo`` runs the whole mission on one machine with real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.processes import command

pytestmark = pytest.mark.e2e


def test_demo_runs_every_device_and_shuts_down_cleanly(tmp_path: Path) -> None:
    out = subprocess.run(
        [command("edgefleet"), "demo", "--data-dir", str(tmp_path), "-o", "json"],
        capture_output=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    doc = json.loads(out.stdout)  # exactly one JSON document on stdout
    rows = doc["devices"]
    assert len(rows) == 3
    assert len({r["device_id"] for r in rows}) == 3
    variants = {v["kind"]: v for v in doc["variants"]}
    assert list(variants) == ["float32", "float16", "dynamic_int8", "weight_only_int8", "int8"]
    assert all(v["status"] == "ready" and v["measurements"] for v in variants.values())
    for r in rows:
        assert r["state"] == "active" and r["variant"] in variants
        name = r["interpreter"].split()[0]
        # never a variant that was rejected for the device's interpreter
        verdicts = {m["interpreter"]: m["status"] for m in variants[r["variant"]]["measurements"]}
        assert verdicts.get(name, "ok") == "ok", (r, verdicts)
        # float inputs in, float outputs out, close to the float32 reference whatever variant
        assert r["max_abs_error"] < 0.1, r
    assert {r["interpreter"].split()[0] for r in rows} >= {"ai-edge-litert"}
    # every process logged its own clean stop
    assert "edgefleet server stopped" in (tmp_path / "server.log").read_text()
    for i in (1, 2, 3):
        assert (tmp_path / f"agent-{i}" / "credential.json").exists()
