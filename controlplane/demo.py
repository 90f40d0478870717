"""``edgefleet demo``: the whole mission on one machine, with real processes.

An embedded control plane (``edgefleet server``), a real CNN from ``controlplane.modelgen``, three
agents (``edgefleet-agent run``) each in its own process and data dir, a rollout, predictions
through every agent, a table, and a clean shutdown. Every step goes through the same commands a
user types, so the demo proves the CLI contract too. Nothing here imports ``agent``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from protos.contract.interpreters import installed_versions

T = TypeVar("T")

MODEL_NAME = "demo-mobilenet"
MODEL_VERSION = "1.0.0"


class DemoError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """The console script next to this interpreter (the venv's), else from PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _wait(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")


class Demo:
    def __init__(self, root: Path, devices: int) -> None:
        self.root = root
        self.devices = devices
        self.variants_table = ""
        self.model: dict[str, Any] = {}
        self.server_dir = root / "server"
        self.addr = f"127.0.0.1:{_free_port()}"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.env = {**os.environ, "EDGEFLEET_SERVER": self.addr}
        self.env.pop("EDGEFLEET_TOKEN", None)

    # -- processes ---------------------------------------------------------------------------

    def spawn(self, label: str, args: list[str],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{label}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                env={**self.env, **(env or {})})
        self.procs.append((label, proc))
        return proc

    def check_alive(self) -> None:
        for label, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.root / f"{label}.log").read_text(errors="replace")[-2000:]
                raise DemoError(f"{label} exited with code {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        # agents first, then the server, so the agents' last reports can still land
        for _label, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def cli_text(self, *args: str) -> str:
        """Run ``edgefleet ARGS`` and return what it prints (a table, or ``-o json``'s
        document)."""
        self.check_alive()
        out = subprocess.run([_bin("edgefleet"), *args], env=self.env, capture_output=True,
                             timeout=120)
        if out.returncode != 0:
            raise DemoError(f"edgefleet {' '.join(args)} failed ({out.returncode}): "
                            f"{out.stderr.decode(errors='replace').strip()}")
        return out.stdout.decode()

    def cli(self, *args: str) -> Any:
        """Run ``edgefleet ARGS -o json`` and return its JSON document."""
        return json.loads(self.cli_text(*args, "-o", "json"))

    # -- the mission -------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        from controlplane import modelgen

        say(f"1/7 starting the control plane on {self.addr} (data in {self.server_dir})")
        self.spawn(
            "server",
            [
                _bin("edgefleet"),
                "server",
                "--data-dir",
                str(self.server_dir),
                "--listen",
                self.addr,
            ],
        )
        token_file = self.server_dir / "admin-token"
        admin = _wait("the server's admin token", lambda: self._read_token(token_file), 60)
        self.env["EDGEFLEET_TOKEN"] = admin
        _wait("the server to answer", lambda: self._answers(), 60)

        say("2/7 generating a real MobileNet-like TFLite CNN and calibration data "
            "(controlplane.modelgen)")
        model_path = self.root / "demo-mobilenet.tflite"
        model_path.write_bytes(modelgen.build_mobilenet(seed=0))
        calib_path = self.root / "calibration.npz"
        modelgen.write_calibration(model_path, calib_path, samples=32, seed=0)

        say("3/7 pushing it (edgefleet model push --wait): the control plane builds its "
            "variants and measures each in every interpreter")
        self.cli(
            "model",
            "push",
            str(model_path),
            "--name",
            MODEL_NAME,
            "--version",
            MODEL_VERSION,
            "--calibration",
            str(calib_path),
            "--wait",
            "--timeout",
            "5m",
        )
        model = _wait("the model to be measured", lambda: self._model_settled(), 90)
        if model["status"] != "ready":
            raise DemoError(f"model failed: {model.get('failure')}")
        self.model = model
        self.variants_table = self.cli_text("model", "show", f"{MODEL_NAME}:{MODEL_VERSION}")
        ready = [v["kind"] for v in model["variants"] if v["status"] == "ready"]
        say(f"    ready: {', '.join(ready)} (the table follows at the end)")

        say(f"4/7 starting {self.devices} agents, each its own process and data dir")
        enroll = self.cli(
            "enroll-token",
            "create",
            "--labels",
            "site=demo",
            "--uses",
            str(self.devices),
            "--expires",
            "1h",
        )
        for i in range(self.devices):
            # Every other device runs ai-edge-litert, as on Python 3.12+, so the fleet has both
            # interpreters and selection gives each what it runs correctly.
            interpreter = "tflite-runtime" if i % 2 == 0 else "ai-edge-litert"
            self.spawn(
                f"agent-{i + 1}",
                [
                    _bin("edgefleet-agent"),
                    "run",
                    "--server",
                    self.addr,
                    "--data-dir",
                    str(self.root / f"agent-{i + 1}"),
                    "--enroll-token",
                    enroll["token"],
                    "--trust-key",
                    str(self.server_dir / "signing-key.pub"),
                    "--labels",
                    f"slot=device-{i + 1}",
                    "--name",
                    f"demo-device-{i + 1}",
                    "--poll-interval",
                    "1",
                ],
                env={"EDGEFLEET_AGENT_INTERPRETER": interpreter}
                if interpreter in installed_versions() else None,
            )
        _wait("every agent to enroll", lambda: self._enrolled(), 60)

        say(f"5/7 rolling {MODEL_NAME}:{MODEL_VERSION} out to site=demo")
        rollout = self.cli(
            "rollout", "create", f"{MODEL_NAME}:{MODEL_VERSION}", "--selector", "site=demo"
        )
        final = _wait("the rollout to finish", lambda: self._rollout_done(rollout["id"]), 90)
        if final["state"] != "succeeded":
            raise DemoError(f"rollout ended {final['state']}: {json.dumps(final)}")

        say("6/7 predicting through every agent (edgefleet-agent predict)")
        return self._predict_all(model_path, calib_path, model)

    def _read_token(self, path: Path) -> str | None:
        self.check_alive()
        return path.read_text().strip() if path.exists() else None

    def _answers(self) -> bool | None:
        self.check_alive()
        try:
            self.cli("model", "list")
            return True
        except DemoError:
            return None

    def _model_settled(self) -> dict[str, Any] | None:
        m = self.cli("model", "show", f"{MODEL_NAME}:{MODEL_VERSION}")
        return m if m["status"] in ("ready", "failed") else None

    def _enrolled(self) -> list[Any] | None:
        devices = self.cli("device", "list", "--selector", "site=demo")
        devices = devices if isinstance(devices, list) else devices.get("devices", [])
        return devices if len(devices) >= self.devices else None

    def _rollout_done(self, rollout_id: str) -> dict[str, Any] | None:
        r = self.cli("rollout", "status", rollout_id)
        return r if r["state"] in ("succeeded", "failed", "aborted", "rolled_back") else None

    def _predict_all(
        self, model_path: Path, calib_path: Path, model: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from controlplane.registry.measure import reference_outputs

        with np.load(calib_path) as npz:
            sample = {k: npz[k][:1].reshape(npz[k].shape[1:]) for k in npz.files}
        np.savez(self.root / "input.npz", **sample)
        expected = reference_outputs(model_path, sample)
        devices = {d["name"]: d for d in self._enrolled() or []}
        rows = []
        for i in range(self.devices):
            data_dir = self.root / f"agent-{i + 1}"
            out_path = self.root / f"output-{i + 1}.npz"
            start = time.perf_counter()
            run = subprocess.run(
                [
                    _bin("edgefleet-agent"),
                    "predict",
                    "--data-dir",
                    str(data_dir),
                    "--input",
                    str(self.root / "input.npz"),
                    "--output",
                    str(out_path),
                    "-o",
                    "json",
                ],
                capture_output=True,
                env=self.env,
                timeout=60,
            )
            wall_ms = (time.perf_counter() - start) * 1000
            if run.returncode != 0:
                raise DemoError(f"predict on agent-{i + 1} failed: {run.stderr.decode()}")
            answer = json.loads(run.stdout)
            with np.load(out_path) as npz:
                got = {k: npz[k] for k in npz.files}
            err = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
            status = subprocess.run(
                [_bin("edgefleet-agent"), "status", "--data-dir", str(data_dir), "-o", "json"],
                capture_output=True,
                env=self.env,
                timeout=60,
            )
            st = json.loads(status.stdout)
            m = st["models"][0]
            interpreter = (dev_hw := (devices.get(f"demo-device-{i + 1}", {}).get("hardware")
                                      or {})).get("interpreter") or {}
            dev = devices.get(f"demo-device-{i + 1}", {})
            rows.append(
                {
                    "device": dev.get("name", f"agent-{i + 1}"),
                    "device_id": st["device_id"],
                    "arch": dev_hw.get("arch", ""),
                    "interpreter": f"{interpreter.get('name', '?')} "
                                   f"{interpreter.get('version', '')}".strip(),
                    "model": f"{m['model']}:{m['version']}",
                    "variant": m["variant"],
                    "sha256": m["sha256"][:12],
                    "state": m["state"],
                    "inference_ms": float(answer.get("latency_ms", 0.0)),
                    "predict_wall_ms": wall_ms,
                    "max_abs_error": err,
                    "top_class": int(np.argmax(next(iter(got.values())))),
                }
            )
        return rows


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="EdgeFleet demo: every device runs the rolled-out model")
    for col, justify in (
        ("device", "left"),
        ("interpreter", "left"),
        ("model", "left"),
        ("variant", "left"),
        ("sha256", "left"),
        ("state", "left"),
        ("inference ms", "right"),
        ("max |err| vs float32", "right"),
        ("class", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r["device"],
            r["interpreter"],
            r["model"],
            r["variant"],
            r["sha256"],
            r["state"],
            f"{r['inference_ms']:.3f}",
            f"{r['max_abs_error']:.1e}",
            str(r["top_class"]),
        )
    # A pipe gets a fixed width wide enough for the table rather than rich's 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def run_demo(
    data_dir: Path | None = None, devices: int = 3, keep: bool = False, output: str = "table"
) -> int:
    """Run the demo; returns the process exit code (0 success, 1 failure)."""
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="edgefleet-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, devices)
    started = time.monotonic()
    try:
        rows = demo.run()
    except (DemoError, subprocess.TimeoutExpired) as exc:
        say(f"demo failed: {exc}\nlogs are in {root}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        say("7/7 shutting everything down (SIGTERM, graceful)")
        demo.stop_all()
    # Every process was up with its SIGTERM handler installed, so a clean stop is exit 0; -15
    # (killed by the signal's default action) or -9 (killed after the grace period) is not.
    bad = [(label, p.returncode) for label, p in demo.procs if p.returncode != 0]
    if output == "json":
        print(
            json.dumps(
                {
                    "devices": rows,
                    "variants": demo.model.get("variants", []),
                    "seconds": round(time.monotonic() - started, 1),
                    "data_dir": str(root),
                }
            )
        )
    else:
        print(demo.variants_table.split("variants:\n", 1)[-1].rstrip() + "\n")
        print_table(rows)
        kept = keep or data_dir is not None
        print(
            f"done in {time.monotonic() - started:.1f} s"
            + (f"; logs and data in {root}" if kept else "")
        )
    if bad:
        say(f"some processes did not stop cleanly: {bad}")
        return 1
    if not keep and data_dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0
