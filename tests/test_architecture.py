"""The layout stays true: no import cycles, each layer imports only those below it, small
modules, and docstrings on every package, public function, class and method.

Imports are read with ``ast`` (function-level ones too), so nothing is imported to check.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "reporter"
MIGRATIONS = ROOT / "store" / "migrations" / "versions"
MAX_LINES = 400

FOUNDATION = "foundation"
#: the modules of the foundation layer (besides the package ``reporter`` itself)
FOUNDATION_MODULES = {"errors", "money", "periods", "fsutil", "addresses", "logcontext"}
BELOW_CONFIG = {FOUNDATION, "store", "report", "alerts", "render", "deliver"}
#: layer -> the layers its modules may import (their own layer always)
ALLOWED: dict[str, set[str]] = {
    FOUNDATION: {FOUNDATION},
    "store": {FOUNDATION},
    "report": {FOUNDATION, "store"},
    "alerts": {FOUNDATION, "store", "report"},
    # a renderer never imports the store: it reads the report model only
    "render": {FOUNDATION, "report"},
    # delivery sends what was rendered: the email body and its chart are rendered in render
    "deliver": {FOUNDATION, "report"},
    # the configuration language builds the settings the packages below it define
    "config": BELOW_CONFIG,
    "jobs": BELOW_CONFIG | {"config"},
    "service": BELOW_CONFIG | {"config", "jobs"},
    "cli": BELOW_CONFIG | {"config", "jobs", "service"},
}


@dataclass(frozen=True)
class Import:
    """One ``import`` of a reporter module: who imports whom, and on which line."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{module_path(self.importer)}:{self.line}: imports {self.imported}"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def module_path(name: str) -> str:
    """A module's file, relative to the checkout."""
    return str(modules()[name].relative_to(ROOT.parent))


def _resolve(name: str) -> str:
    """The module a dotted name is in: ``reporter.x.y`` for ``reporter.x.y.SomeClass``."""
    while name not in modules():
        name = name.rsplit(".", 1)[0]
    return name


@cache
def imports() -> tuple[Import, ...]:
    """Every import of one reporter module by another, at any depth in the file."""
    found = []
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                # ``from reporter.x import y`` imports the module reporter.x.y if there is one
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules()
                           else base for alias in node.names]
            for target in targets:
                if target == "reporter" or target.startswith("reporter."):
                    imported = _resolve(target)
                    if imported != name:
                        found.append(Import(name, imported, node.lineno))
    return tuple(found)


def layer(name: str) -> str:
    """The layer of a module: a package under reporter/, or the foundation."""
    parts = name.split(".")
    if parts[1:] == ["__main__"]:  # ``python -m reporter``: the command line's entry point
        return "cli"
    if len(parts) == 1 or parts[1] in FOUNDATION_MODULES:
        return FOUNDATION
    if parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{module_path(name)}: in no layer; add it to tests/test_architecture.py "
                         "and docs/ARCHITECTURE.md")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of names (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_reader_finds_imports_of_every_form() -> None:
    edges = {(i.importer, i.imported) for i in imports()}
    # ``from reporter.store import orgs as store`` names a module
    assert ("reporter.report.aggregate", "reporter.store.orgs") in edges
    # ``from reporter.errors import X`` names a class in a module
    assert ("reporter.store.db", "reporter.errors") in edges
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for edge in imports():
        graph.setdefault(edge.importer, set()).add(edge.imported)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [f"{edge} ({layer(edge.importer)} may not import {layer(edge.imported)})"
             for edge in imports()
             if layer(edge.imported) not in ALLOWED[layer(edge.importer)] | {
                 layer(edge.importer)}]
    assert wrong == []


def test_nothing_imports_the_cli() -> None:
    wrong = [str(edge) for edge in imports()
             if layer(edge.imported) == "cli" and layer(edge.importer) != "cli"]
    assert wrong == []


def _counted() -> Iterator[Path]:
    for path in modules().values():
        if MIGRATIONS not in path.parents:
            yield path


def test_modules_are_small() -> None:
    big = {str(p.relative_to(ROOT.parent)): n for p in _counted()
           if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: split them by what they do"


@pytest.mark.parametrize("package", sorted(n for n, p in modules().items()
                                           if p.name == "__init__.py" and
                                           MIGRATIONS not in p.parents))
def test_every_package_says_what_it_holds_and_may_import(package: str) -> None:
    path = modules()[package]
    doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
    assert doc, f"{module_path(package)}: no docstring"
    assert "import" in doc.lower(), f"{module_path(package)}: say what the package may import"


def _overload(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    """A ``typing.overload`` signature: the implementation after it holds the docstring."""
    return any(isinstance(d, ast.Name | ast.Attribute) and
               (d.id if isinstance(d, ast.Name) else d.attr) == "overload"
               for d in node.decorator_list)


def _undocumented(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text("utf-8"))
    where = path.relative_to(ROOT.parent)
    if not ast.get_docstring(tree):
        yield f"{where}: module"
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body:
        if not isinstance(node, kinds) or node.name.startswith("_") or _overload(node):
            continue
        if not ast.get_docstring(node):
            yield f"{where}:{node.lineno}: {node.name}"
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if (isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                        and not method.name.startswith("_") and not _overload(method)
                        and not ast.get_docstring(method)):
                    yield f"{where}:{method.lineno}: {node.name}.{method.name}"


def test_public_functions_classes_and_methods_have_docstrings() -> None:
    missing = [item for path in _counted() for item in _undocumented(path)]
    assert missing == [], f"{len(missing)} without a docstring:\n" + "\n".join(missing)


def test_test_modules_share_helpers_not_each_other() -> None:
    """Shared test code lives in tests/helpers.py, tests/*_support.py and *_checks.py; a test
    module stays free to change for its own tests without breaking another's."""
    tests = Path(__file__).resolve().parent
    wrong = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"tests/{path.name}:{node.lineno}: imports {name}" for name in names
                      if name.startswith("tests.test_")]
    assert wrong == []


def _rule(code: str) -> tuple[str, str]:
    """A ruff rule code or selector as (letters, digits): ``T201`` -> (``T``, ``201``)."""
    match = re.fullmatch(r"([A-Z]+)([0-9]*)", code)
    assert match, code
    return match.group(1), match.group(2)


def test_noqa_names_only_rules_ruff_checks() -> None:
    """A noqa comment for a rule ruff does not select silences nothing and misleads the
    reader; a broad ``except`` says why in a plain comment instead."""
    checkout = ROOT.parent
    config = tomllib.loads((checkout / "pyproject.toml").read_text("utf-8"))
    selected = [_rule(s) for s in config["tool"]["ruff"]["lint"]["select"]]
    wrong = []
    for folder in ("reporter", "tests", "bench"):
        for path in sorted((checkout / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
                for match in re.finditer(r"#\s*noqa:\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)",
                                         line):
                    for letters, digits in map(_rule, re.split(r"\s*,\s*", match.group(1))):
                        if not any(letters == a and digits.startswith(d) for a, d in selected):
                            wrong.append(f"{path.relative_to(checkout)}:{number}: {line.strip()}")
    assert wrong == [], f"ruff selects only {', '.join(a + d for a, d in selected)}"


def test_the_architecture_page_names_every_module() -> None:
    """docs/ARCHITECTURE.md stays true to the code: each module is named there by its path
    (``jobs/run``, ``errors``), and it names no module that does not exist."""
    page = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text("utf-8")
    named = {name for name in re.findall(r"`([a-z_]+(?:/[a-z_]+)*)`", page)}
    paths = {str(p.relative_to(ROOT).with_suffix("")).removesuffix("/__init__")
             for p in _counted() if p.parent != ROOT or p.name != "__init__.py"}
    modules = {p for p in paths if p.rsplit("/", 1)[-1] not in ("__init__",)
               and (ROOT / f"{p}.py").is_file()}
    assert sorted(modules - named) == [], "modules docs/ARCHITECTURE.md does not name"
    listed = {n for n in named if "/" in n and n.split("/", 1)[0] in ALLOWED}
    assert sorted(n for n in listed if not (ROOT / f"{n}.py").is_file()
                  and not (ROOT / n).is_dir()) == [], "named but not there"
