"""The module boundaries of the design, checked on the source (AST, nothing imported).

* The pure modules (documents, expressions, decisions, records) import no I/O library,
  neither themselves nor through the ``runbook_engine`` modules they import: they can be
  reasoned about, tested and reused without a store, an event loop or a network.
* Actions see the plugin surface (``runbook_engine.plugin``) and pure modules only,
  never the store, the scheduler or the engine.
* The engine never imports an action module: actions arrive through the
  ``runbook_engine.actions`` entry points, so a third-party action is no different.

Imports are those made at run time: under ``if TYPE_CHECKING:`` they do not count,
inside a function they do. Importing ``runbook_engine.x`` also runs the ``__init__`` of
every package above it, so those are followed too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "runbook_engine"

PURE_MODULES = (
    "model",
    "parser",
    "declarations",
    "step_outcomes",
    "source",  # yaml and json_source_map are parsing libraries, allowed
    "expressions",
    "expression_checks",
    "conditions",
    "selectors",
    "graph",
    "status",
    "records",
    "conductor",
    "inputs",
    "diagnostics",
    "variables",
    "ratecontrol",
)
IO_LIBRARIES = frozenset(
    {
        "anyio",
        "asyncio",
        "asyncssh",
        "docker",
        "boto3",
        "botocore",
        "sqlmodel",
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "click",
        "rich",
        "psycopg",
        "subprocess",
        "socket",
    }
)
# What an action may import from runbook_engine: the plugin surface (with the seams it
# hands out: targets, rate control, AWS, Parameter Store, processes) and pure modules.
ACTION_SURFACE = frozenset(
    {
        "plugin",
        "errors",
        "processes",
        "aws_surface",
        "aws_names",
        "parameters",
        "secrets",
        "targets",
        "inventory",
        "fanout",
        "coercion",
        "compute",
        *PURE_MODULES,
    }
)
ENGINE_ONLY = ("store", "scheduler", "engine")


def module_file(name: str) -> Path | None:
    """The source file of a module of this checkout (``a.b`` -> a/b.py or a/b/__init__.py)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` except those under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _import_nodes(node)


@cache
def runtime_imports(path: Path) -> frozenset[str]:
    """Fully qualified names of the modules ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base == "__future__":
            continue
        found.add(base)
        for alias in node.names:  # ``from pkg import module`` imports pkg.module
            if module_file(f"{base}.{alias.name}") is not None:
                found.add(f"{base}.{alias.name}")
    return frozenset(found)


def _with_packages(name: str) -> Iterator[str]:
    """``a.b.c`` and the packages whose ``__init__`` importing it runs: ``a``, ``a.b``."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def import_closure(start: str) -> dict[str, list[str]]:
    """Every module reached from ``start`` at run time, each with the chain that reaches it.

    Modules of this checkout are followed; others (the standard library, third-party
    packages) are recorded, not followed.
    """
    chains: dict[str, list[str]] = {start: [start]}
    pending = [start]
    while pending:
        current = pending.pop()
        path = module_file(current)
        if path is None:
            continue
        for imported in sorted(runtime_imports(path)):
            for name in _with_packages(imported):
                if name not in chains:
                    chains[name] = [*chains[current], name]
                    pending.append(name)
    return chains


def top_level(name: str) -> str:
    return name.partition(".")[0]


# -- the scanner itself -----------------------------------------------------------------------


def test_scanner_sees_runtime_imports_only() -> None:
    scheduler = runtime_imports(ROOT / PACKAGE / "scheduler.py")
    assert "anyio" in scheduler
    assert "runbook_engine.conductor" in scheduler
    assert "runbook_engine.engine" not in scheduler  # only under TYPE_CHECKING there
    validation = runtime_imports(ROOT / PACKAGE / "validation.py")
    assert "runbook_engine.registry" in validation  # imported inside a function
    assert "runbook_engine.graph" in validation  # ``from runbook_engine import graph``
    closure = import_closure("runbook_engine.engine")
    assert "sqlalchemy" in closure  # through runbook_engine.store (lazily, in open_store)
    assert closure["anyio"][:1] == ["runbook_engine.engine"]


def test_the_modules_named_here_exist() -> None:
    for name in (*PURE_MODULES, *ACTION_SURFACE, *ENGINE_ONLY):
        assert module_file(f"{PACKAGE}.{name}") is not None, name


# -- the rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_library(module: str) -> None:
    closure = import_closure(f"{PACKAGE}.{module}")
    offending = {
        name: " -> ".join(chain)
        for name, chain in closure.items()
        if top_level(name) in IO_LIBRARIES
    }
    assert not offending, f"{module} reaches I/O libraries: {offending}"


def action_modules() -> list[str]:
    return sorted(module_name(p) for p in (ROOT / "actions").glob("*.py"))


@pytest.mark.parametrize("module", action_modules())
def test_actions_see_only_the_plugin_surface(module: str) -> None:
    path = module_file(module)
    assert path is not None
    direct = {
        name.split(".")[1]
        for name in runtime_imports(path)
        if top_level(name) == PACKAGE and name != PACKAGE
    }
    assert direct <= ACTION_SURFACE, f"{module} imports {sorted(direct - ACTION_SURFACE)}"
    closure = import_closure(module)
    engine_side = {
        name: " -> ".join(chain)
        for name, chain in closure.items()
        if any(name == f"{PACKAGE}.{e}" or name.startswith(f"{PACKAGE}.{e}.") for e in ENGINE_ONLY)
    }
    assert not engine_side, f"{module} reaches the engine: {engine_side}"


def test_the_engine_imports_no_action_module() -> None:
    offending = {
        module_name(path): sorted(n for n in runtime_imports(path) if top_level(n) == "actions")
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
    }
    assert {m: names for m, names in offending.items() if names} == {}
