"""No import cycles through ``quantdesk.security`` or ``quantdesk.users`` (issue 10).

Function-local imports used to hide three: ``security.services`` <-> ``security.tokens``,
``users.auth`` <-> ``users.mfa``, and ``security`` -> ``users`` -> ``security``.  The graph
here counts every import statement, wherever it sits in a module (the import-linter
contracts of ``make lint`` check the direction security -> users; this checks cycles).
"""

from __future__ import annotations

import ast
from pathlib import Path

import quantdesk

PACKAGES = ("quantdesk.security", "quantdesk.users")


def _modules() -> dict[str, Path]:
    root = Path(quantdesk.__file__).parent.parent
    found = {}
    for path in (root / "quantdesk").rglob("*.py"):
        name = ".".join(path.with_suffix("").relative_to(root).parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A shortest import path from ``start`` back to itself, if there is one."""
    paths = {target: [start, target] for target in graph[start]}
    frontier = list(paths)
    while frontier:
        following = []
        for module in frontier:
            if module == start:
                return paths[module]
            for target in graph[module]:
                if target not in paths:
                    paths[target] = [*paths[module], target]
                    following.append(target)
        frontier = following
    return None


def test_no_import_cycle_runs_through_security_or_users() -> None:
    graph = _import_graph()
    cycles = [
        " -> ".join(cycle)
        for module in sorted(graph)
        if module.startswith(PACKAGES) and (cycle := _cycle_through(graph, module)) is not None
    ]
    assert cycles == []
