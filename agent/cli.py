"""``edgefleet-agent``: run the device agent, and talk to a running one.

    edgefleet-agent run --server ADDR --data-dir DIR [--enroll-token TOKEN] [--labels k=v,...]
                        [--serve ADDR] [--trust-key FILE] [--hardware-profile FILE.json]
                        [--tls-ca FILE]
                        [--name NAME] [--poll-interval SECONDS]
    edgefleet-agent status  [--data-dir DIR | --endpoint ADDR] [-o table|json]
    edgefleet-agent predict [--data-dir DIR | --endpoint ADDR] [--model NAME]
                            --input IN.npz --output OUT.npz [-o table|json]

Environment fallbacks: ``EDGEFLEET_SERVER`` for --server, ``EDGEFLEET_AGENT_DATA_DIR`` for
--data-dir, ``EDGEFLEET_AGENT_TRUST_KEY`` for --trust-key (whose default is
``/etc/edgefleet/trust-key.pub``), ``EDGEFLEET_TLS_CA`` for --tls-ca. With ``-o json`` exactly
one JSON document is printed on stdout; errors go to stderr.

The trust key is read at every start of ``run`` and never kept in the data dir; a path inside
the data dir, or a file its group or others may write, is refused (exit 2).

Exit codes:
    0  success (``run``: stopped by SIGTERM/SIGINT)
    1  unexpected failure (a bug: please report it with the stderr output)
    2  usage or configuration error (no trust key or an unsafe one, no --enroll-token, socket
       in use ...)
    3  not reachable: the control plane (``run``) or the local agent (``status``, ``predict``)
    4  refused: invalid input, unknown model, no model loaded, enrollment token refused
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from agent import trust_key
from agent.client import InferenceClient
from agent.daemon import Agent
from agent.errors import (
    AgentDataError,
    AgentError,
    AgentTransportError,
    ConfigurationError,
    InvalidInputError,
    PredictRequestError,
)
from agent.hardware import load_hardware_overrides
from agent.settings import AgentSettings
from agent.transport import low_latency_grpc

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4

_TRUST_KEY_HELP = f"""\
trust key: the agent runs only what the control plane's key signed. `run` reads that
public key (the server's DATA_DIR/signing-key.pub) at every start from --trust-key FILE,
else ${trust_key.ENV}, else {trust_key.DEFAULT_PATH}.
It refuses a key inside the agent's data dir, or one its group or others may write.
Install it once per device, e.g.:
  install -D -m 0644 signing-key.pub {trust_key.DEFAULT_PATH}

exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 not reachable, 4 refused"""


def main(argv: list[str] | None = None) -> int:
    """``edgefleet-agent``; ``argv`` None: the command line (then this process is the agent's
    own, and it picks gRPC's low-latency poller before any channel or server exists,
    ``agent.transport``). A caller passing ``argv`` (an application, a test) owns its process's
    gRPC setup: the choice is process-wide and would also change how its forks behave (gRPC's
    poll-based poller runs fork handlers in every child)."""
    if argv is None:
        low_latency_grpc()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command(args))
    except AgentError as exc:
        print(f"edgefleet-agent: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130


def exit_code(exc: AgentError) -> int:
    """The documented exit code for an agent error."""
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE
    # AgentDataError includes EnrollmentRefusedError: a refused token exits "refused", 4.
    if isinstance(exc, AgentDataError | PredictRequestError):
        return EXIT_REFUSED
    if isinstance(exc, AgentTransportError):
        return EXIT_UNREACHABLE
    return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgefleet-agent",
        description="EdgeFleet device agent: pulls verified models, serves them locally.",
        epilog=_TRUST_KEY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="subcommand", required=True)

    run = sub.add_parser("run", help="enroll (first run), then sync and serve until stopped",
                         epilog=_TRUST_KEY_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--server", default=os.environ.get("EDGEFLEET_SERVER"),
                     help="control plane HOST:PORT (env EDGEFLEET_SERVER; default: the one "
                          "stored at enrollment)")
    _data_dir_arg(run, required=True)
    run.add_argument("--enroll-token", help="one-time enrollment token (first run only)")
    run.add_argument("--labels", type=_labels, default={}, help="k=v,... sent at enrollment")
    run.add_argument("--serve", help="local inference endpoint: unix://PATH or HOST:PORT "
                                     "(default unix://DATA_DIR/agent.sock)")
    run.add_argument("--trust-key", type=Path, metavar="FILE",
                     help=f"the control plane's signing-key.pub, read at every start (env "
                          f"{trust_key.ENV}; default {trust_key.DEFAULT_PATH}); outside the "
                          "data dir, not writable by group or others")
    run.add_argument("--tls-ca", type=Path, metavar="FILE",
                     default=os.environ.get("EDGEFLEET_TLS_CA") or None,
                     help="CA certificate (PEM) to verify the control plane's TLS with "
                          "(env EDGEFLEET_TLS_CA; kept in the data dir; without it, and none "
                          "kept, the connection is plaintext)")
    run.add_argument("--hardware-profile", type=Path,
                     help="JSON file whose fields win over detected hardware")
    run.add_argument("--name", help="device name (default: host name)")
    run.add_argument("--poll-interval", type=_positive_float, metavar="SECONDS",
                     help="sync at least this often (overrides the server's interval)")
    run.add_argument("--set", dest="settings", action="append", default=[],
                     metavar="NAME=VALUE",
                     help="change one agent setting (agent/settings.py), e.g. "
                          "probation_seconds=30; repeatable")
    run.set_defaults(command=_run)

    status = sub.add_parser("status", help="what the local agent serves")
    _target_args(status)
    _output_arg(status)
    status.set_defaults(command=_status)

    predict = sub.add_parser("predict", help="run inputs from an .npz through the local agent")
    _target_args(predict)
    predict.add_argument("--model", help="model name (optional when one model is loaded)")
    predict.add_argument("--input", required=True, type=Path, help="IN.npz: float arrays by "
                                                                  "input name")
    predict.add_argument("--output", required=True, type=Path, help="OUT.npz to write")
    _output_arg(predict)
    predict.set_defaults(command=_predict)
    return parser


def _data_dir_arg(parser: argparse.ArgumentParser, *, required: bool) -> None:
    default = os.environ.get("EDGEFLEET_AGENT_DATA_DIR")
    parser.add_argument("--data-dir", type=Path, default=default,
                        required=required and default is None,
                        help="agent data dir (env EDGEFLEET_AGENT_DATA_DIR)")


def _target_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data-dir", type=Path,
                       help="the running agent's data dir (env EDGEFLEET_AGENT_DATA_DIR)")
    group.add_argument("--endpoint", help="the agent's --serve address: unix://PATH or "
                                          "HOST:PORT")


def _output_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output-format", dest="format", choices=("table", "json"),
                        default="table", help="output format (default table)")


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for pair in filter(None, text.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"label {pair!r} is not k=v")
        labels[key.strip()] = value.strip()
    return labels


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tls_ca = _read_file(args.tls_ca, "--tls-ca") if args.tls_ca else None
    overrides = load_hardware_overrides(args.hardware_profile) if args.hardware_profile else None
    try:
        settings = AgentSettings(poll_interval_seconds=args.poll_interval).with_text(args.settings)
    except ValueError as exc:   # a setting's own check (__post_init__) or a bad --set
        raise ConfigurationError(str(exc)) from exc
    agent = Agent(
        args.data_dir,
        server=args.server,
        enroll_token=args.enroll_token,
        trust_key_path=args.trust_key,   # None: the agent looks at the env, then the default
        tls_ca_pem=tls_ca,
        labels=args.labels,
        name=args.name,
        serve=args.serve,
        hardware_overrides=overrides,
        settings=settings,
    )
    wake = _StopSignal()   # before start(): a SIGTERM while starting stops it right after
    agent.start()
    wake.watch(agent)
    try:
        wake.wait()
    finally:
        logging.getLogger(__name__).info("stopping")
        agent.stop()
    if agent.fatal_error is not None:
        return exit_code(agent.fatal_error)
    return EXIT_OK


class _StopSignal:
    """What ends ``run``: SIGTERM or SIGINT, or the sync thread ending on its own (enrollment
    refused); waited for with no timer, so an idle agent's main thread never wakes.

    A signal may be delivered to any thread, and Python runs its handler only when the main
    thread executes bytecode: a main thread asleep on a lock would sleep through it. So the main
    thread sleeps in a read of a pipe that the interpreter's C-level signal handler writes to
    (``signal.set_wakeup_fd``), whichever thread the signal hit; a watcher thread that joins the
    sync thread writes to it too. The pipe stays open for the life of the process: the watcher
    may write after ``run`` returned, and a closed descriptor's number could be reused.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)   # the wake-up byte is what counts

    def watch(self, agent: Agent) -> None:
        def watcher() -> None:
            agent.wait()
            os.write(self._write, b"\0")

        threading.Thread(target=watcher, name="agent-watch", daemon=True).start()

    def wait(self) -> None:
        os.read(self._read, 1)


def _client(args: argparse.Namespace) -> InferenceClient:
    target = args.endpoint or args.data_dir or os.environ.get("EDGEFLEET_AGENT_DATA_DIR")
    if not target:
        raise ConfigurationError("which agent? pass --data-dir DIR or --endpoint ADDR "
                                 "(or set EDGEFLEET_AGENT_DATA_DIR)")
    return InferenceClient(target)


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        doc = client.status()
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"device            {doc['device_id'] or '(not enrolled)'}")
    print(f"server            {doc['server']}")
    print(f"desired sequence  {doc['desired_sequence']}")
    print(f"last sync         {doc['last_sync'] or 'never'}")
    if doc["last_error"]:
        print(f"last error        {doc['last_error']}")
    rows = [["MODEL", "VERSION", "VARIANT", "STATE", "SHA256", "INFERENCES", "P50 MS", "MESSAGE"]]
    rows += [
        [m["model"], m["version"], m["variant"], m["state"], m["sha256"][:12],
         str(m["inferences"]), f"{m['latency_p50_ms']:.2f}", m["message"] or ""]
        for m in doc["models"]
    ]
    print()
    if doc["models"]:
        _print_table(rows)
    else:
        print("no model")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    inputs = _read_npz(args.input)
    with _client(args) as client:
        result = client.predict_result(inputs, model=args.model)
    try:
        with open(args.output, "wb") as f:   # a file object: np.savez would append ".npz"
            np.savez(f, **result.outputs)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {args.output}: {exc}") from exc
    doc: dict[str, Any] = {
        "model": result.ref.model,
        "version": result.ref.version,
        "variant": result.ref.variant,
        "sha256": result.ref.sha256,
        "latency_ms": result.latency_ms,
        "output": str(args.output),
        "outputs": {
            name: {"shape": list(v.shape), "dtype": v.dtype.name}
            for name, v in result.outputs.items()
        },
    }
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{doc['model']} {doc['version']} ({doc['variant']}) answered in "
          f"{doc['latency_ms']:.2f} ms; wrote {args.output}")
    _print_table([["OUTPUT", "SHAPE", "DTYPE"]] + [
        [name, str(o["shape"]), o["dtype"]] for name, o in doc["outputs"].items()
    ])
    return EXIT_OK


def _read_file(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {flag} {path}: {exc}") from exc


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError) as exc:
        raise InvalidInputError(
            f"cannot read {path} as an .npz of arrays keyed by input name: {exc}"
        ) from exc


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
