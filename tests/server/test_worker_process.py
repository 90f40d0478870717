"""``edgefleet worker -o json`` as a real process on Redis: its stdout carries only JSON event
lines (``ready`` once it consumes, ``stopped`` after SIGTERM), and it exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from controlplane.config import Settings
from controlplane.startup import init_fleet
from tests.e2e.processes import command


def test_worker_json_events_on_stdout_and_a_clean_stop(redis_db_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/fleet.db"
    settings = Settings(data_dir=tmp_path / "data", database_url=db)
    plane, _ = init_fleet(settings)   # what `edgefleet init` does
    plane.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    proc = subprocess.Popen(
        [command("edgefleet"), "worker", "--db", db, "--redis", redis_db_url,
         "--data-dir", str(settings.data_dir), "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # blocks until the worker consumes
        assert first["event"] == "ready" and first["broker"] == redis_db_url.split("@")[-1]
        proc.send_signal(signal.SIGTERM)
        rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rest == [{"event": "stopped", "exit_code": 0}]
