"""One error root for the control plane, mapped to gRPC codes and exit codes in one place each,
and ``SystemExit`` raised by the command-line entry points only."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import controlplane
from controlplane import errors
from controlplane.api.errors import STATUS, status_for
from controlplane.cli.errors import EXIT_CODES, CliError, ExitCode, exit_code_for

ROOT = Path(__file__).resolve().parent.parent


def _all_error_classes() -> list[type[errors.EdgeFleetError]]:
    for module in pkgutil.walk_packages(controlplane.__path__, "controlplane."):
        if not module.name.endswith(".__main__"):   # that one runs the CLI
            importlib.import_module(module.name)
    found, todo = [], [errors.EdgeFleetError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", [c for c in _all_error_classes()
                                 if c not in (errors.EdgeFleetError, CliError)],
                         ids=lambda c: c.__name__)
def test_every_control_plane_error_has_a_status_and_an_exit_code(
        cls: type[errors.EdgeFleetError]) -> None:
    exc = cls.__new__(cls)
    Exception.__init__(exc, "x")
    assert status_for(exc) is not None, f"{cls.__name__} is in no category of controlplane.errors"
    assert exit_code_for(exc) in ExitCode


def test_the_two_tables_name_the_same_categories() -> None:
    assert set(STATUS) == set(EXIT_CODES)
    assert all(cls.__bases__ == (errors.EdgeFleetError,) for cls in STATUS)


def test_registry_errors_answer_with_their_categorys_code() -> None:
    import grpc

    from controlplane.registry import errors as registry

    assert status_for(registry.InvalidModelError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(registry.ModelTooLargeError("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(registry.StorageError("x")) == grpc.StatusCode.UNAVAILABLE
    assert exit_code_for(registry.SigningKeyError("x")) == ExitCode.GENERIC
    assert exit_code_for(errors.DependencyUnreachableError("x")) == ExitCode.UNREACHABLE


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _raises_system_exit(path: Path) -> list[int]:
    """Lines of ``path`` that end the process, outside ``if __name__ == "__main__":``."""
    tree = ast.parse(path.read_text(), str(path))
    tree.body = [n for n in tree.body if not _is_main_guard(n)]
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id == "SystemExit":
                lines.append(node.lineno)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "exit" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "sys"):
            lines.append(node.lineno)
    return lines


def test_only_command_line_entry_points_end_the_process() -> None:
    """Library code raises its errors; only the CLIs (and ``__main__`` blocks of tools) turn
    them into exit statuses."""
    allowed = {"controlplane/cli", "agent/cli.py", "protos/generate.py"}
    offenders = []
    for package in ("controlplane", "agent", "protos"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(rel.startswith(a) for a in allowed):
                continue
            offenders += [f"{rel}:{line}" for line in _raises_system_exit(path)]
    assert offenders == []
