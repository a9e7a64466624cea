"""The layering the lifecycle relies on: the domain core imports no storage module, no
module of the core imports another in a cycle at import time, and no module calls into
another module's private (``_name``) functions."""

from __future__ import annotations

import ast
from pathlib import Path

import baton

ROOT = Path(baton.__file__).parent
DOMAIN = {"baton.lifecycle", "baton.ledger", "baton.suppression", "baton.escalation",
          "baton.inhibit", "baton.records"}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if is_pkg else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    names = [f"{base}.{a.name}" for a in node.names]
    return [base, *names]


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private_calls = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        for node in tree.body:  # import time only: a function-level import is deferred
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = _resolve(name, path.name == "__init__.py", node)
            # A submodule naming its own package (``from . import x``) is no cycle: the
            # package is already initialising when its submodule runs.
            graph[name] |= {t for t in targets if t in modules and t != name
                            and not name.startswith(t + ".")}
        for node in ast.walk(tree):  # anywhere, deferred imports included
            if isinstance(node, ast.ImportFrom):
                private_calls += [
                    f"{name} imports {t}"
                    for t in _resolve(name, path.name == "__init__.py", node)[1:]
                    if t.rsplit(".", 1)[-1].startswith("_")
                    and not t.rsplit(".", 1)[-1].startswith("__") and t not in modules]
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id.startswith("_")
                    and len(node.value.id) <= 3):
                private_calls.append(f"{name}: {node.value.id}.{node.attr}")
    return graph, private_calls


def test_no_import_cycles() -> None:
    graph, _ = _graph()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, m, n]))
            if n not in state:
                visit(n, [*stack, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_domain_core_imports_no_storage() -> None:
    graph, _ = _graph()
    for m in DOMAIN:
        assert not {n for n in graph[m] if n.startswith("baton.store")}, m


def test_no_calls_into_another_modules_private_functions() -> None:
    _, private = _graph()
    assert private == []
