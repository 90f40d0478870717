"""The wire contract's generated stubs are fresh, and the two sides share nothing but it.

- ``protos.generate.stale_files()`` on the committed tree is empty; the same comparison run on a
  temp copy of ``protos/`` flags an edited, a missing and an orphaned stub (so it can fail).
- ``agent`` never imports ``controlplane`` and ``controlplane`` never imports ``agent``; the agent
  imports, outside ``try/except ImportError``, only what ``edgefleet[agent]`` installs (a device
  installs that extra alone). Imports are read with ``ast``, so an import that a test run never
  executes is still seen.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protos import generate

ROOT = Path(__file__).resolve().parent.parent
STUB = "edgefleet_pb2.py"


# --- generated stubs ---------------------------------------------------------------------------


def test_committed_stubs_are_fresh() -> None:
    assert generate.stale_files() == [], "run: python -m protos.generate"


@pytest.fixture
def protos_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``protos/`` (sources and committed stubs) that ``generate`` is pointed at."""
    copy = tmp_path / "protos"
    copy.mkdir()
    for f in generate.PROTO_DIR.iterdir():
        if f.name.endswith((".proto", *generate.SUFFIXES)):
            shutil.copyfile(f, copy / f.name)
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(generate, "PROTO_DIR", copy)
    return copy


def test_stale_check_passes_on_an_unmodified_copy(protos_copy: Path) -> None:
    assert generate.stale_files() == []


def test_stale_check_flags_an_edited_stub(protos_copy: Path) -> None:
    stub = protos_copy / STUB
    stub.write_text(stub.read_text() + "\n# hand edit\n")
    assert generate.stale_files() == [STUB]


def test_stale_check_flags_a_missing_stub(protos_copy: Path) -> None:
    (protos_copy / STUB).unlink()
    assert generate.stale_files() == [STUB]


def test_stale_check_flags_a_stub_without_a_proto(protos_copy: Path) -> None:
    (protos_copy / "removed_pb2.py").write_text("# left behind by a deleted .proto\n")
    assert generate.stale_files() == ["removed_pb2.py"]


# --- package boundaries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str          # absolute dotted name
    optional: bool       # inside try/except ImportError or ``if TYPE_CHECKING``

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module}"


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def _guards_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types):
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve_relative(package: list[str], level: int, module: str | None) -> str:
    """Absolute name of ``from <level dots><module> import …`` inside ``package``."""
    if level > len(package):
        return "." * level + (module or "")  # escapes the top-level package: keep it visible
    base = package[: len(package) - level + 1]
    return ".".join([*base, *([module] if module else [])])


def imports_in(path: Path, root: Path) -> Iterator[Import]:
    """Every import in the module at ``path`` (a file under ``root``), absolute names.

    Covers ``import x``, ``from x import y``, relative imports, and ``importlib.import_module`` /
    ``__import__`` called with a literal name.
    """
    parts = list(path.relative_to(root).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (same for __init__.py)

    def visit(node: ast.AST, optional: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, optional)
        elif isinstance(node, ast.ImportFrom):
            module = (
                _resolve_relative(package, node.level, node.module)
                if node.level else node.module or ""
            )
            yield Import(path, node.lineno, module, optional)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(path, node.lineno, node.args[0].value, optional)
        if isinstance(node, ast.Try) and _guards_import_error(node):
            for child in node.body:
                yield from visit(child, True)
            for rest in (*node.handlers, *node.orelse, *node.finalbody):
                yield from visit(rest, optional)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, True)
            for child in node.orelse:
                yield from visit(child, optional)
            return
        for sub in ast.iter_child_nodes(node):
            yield from visit(sub, optional)

    yield from visit(ast.parse(path.read_text(), filename=str(path)), False)


def package_imports(package: str, root: Path = ROOT) -> list[Import]:
    files = sorted((root / package).rglob("*.py"))
    return [imp for f in files for imp in imports_in(f, root)]


def test_import_scanner_sees_every_form(tmp_path: Path) -> None:
    """Input: a module importing ``controlplane`` in each form the boundary tests rely on."""
    pkg = tmp_path / "agent" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "agent" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        "import controlplane.db\n"
        "from controlplane import config\n"
        "from .. import settings\n"
        "from ...controlplane import x\n"
        "import importlib\n"
        "def late():\n"
        "    from controlplane.cli import main\n"
        "    return importlib.import_module('controlplane.app')\n"
        "try:\n"
        "    import ai_edge_litert\n"
        "except ImportError:\n"
        "    ai_edge_litert = None\n"
    )
    found = {(i.module, i.optional) for i in package_imports("agent", tmp_path)}
    assert found == {
        ("controlplane.db", False),
        ("controlplane", False),
        ("agent", False),
        ("...controlplane", False),
        ("importlib", False),
        ("controlplane.cli", False),
        ("controlplane.app", False),
        ("ai_edge_litert", True),
    }


@pytest.mark.parametrize(("package", "forbidden"), [("agent", "controlplane"),
                                                    ("controlplane", "agent")])
def test_package_never_imports_the_other_side(package: str, forbidden: str) -> None:
    crossing = [
        str(i) for i in package_imports(package)
        if i.top == forbidden or i.module.lstrip(".").split(".")[0] == forbidden
    ]
    assert crossing == [], f"{package} must not import {forbidden}:\n" + "\n".join(crossing)


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def agent_extra_distributions() -> set[str]:
    """Distributions a device gets from ``pip install edgefleet[agent]`` (declared directly)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["agent"]]
    names = set()
    for req in requirements:
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match, f"unparseable requirement {req!r}"
        names.add(_normalise(match.group(0)))
    return names


def test_agent_imports_only_what_the_agent_extra_installs() -> None:
    allowed = agent_extra_distributions()
    providers = importlib.metadata.packages_distributions()
    ours = {"agent", "protos"}
    unmet = []
    for imp in package_imports("agent"):
        if imp.optional or imp.module.startswith(".") or imp.top in ours:
            continue
        if imp.top in sys.stdlib_module_names or imp.top == "__future__":
            continue
        dists = {_normalise(d) for d in providers.get(imp.top, [])}
        if not dists & allowed:
            unmet.append(f"{imp}  (from {sorted(dists) or 'nothing installed'})")
    assert unmet == [], (
        "agent imports modules that edgefleet[agent] does not install; add the distribution to "
        "the agent extra or guard the import with try/except ImportError:\n" + "\n".join(unmet)
    )
