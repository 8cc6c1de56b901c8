"""The engine's modules depend on each other in one direction: no import circle.

A circle (the engine calling its actions, which call the engine back) is how a
change ends up with no obvious home. The graph is read from the source with
`ast`, so an import inside a function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import verification

ROOT = Path(verification.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the verification modules it imports."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from package import module` imports the module itself.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph[node]):
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_verification_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_graph_sees_imports_and_the_check_finds_a_circle():
    graph = import_graph()
    # The reader sees real edges, including `from verification import actions`.
    assert "verification.actions" in graph["verification.flows.messages"]
    assert "verification.engine" in graph["verification.telegram_reads"]
    # And a circle, were one added, is reported.
    graph["verification.engine"].add("verification.telegram_reads")
    assert find_cycle(graph) is not None


def test_the_engine_points_back_at_nothing_that_uses_it():
    graph = import_graph()
    users = {"verification.actions", "verification.telegram_reads", "verification.handlers",
             "verification.commands", "verification.recording", "verification.flows"}
    assert not {m for m in graph["verification.engine"]
                if any(m == u or m.startswith(u + ".") for u in users)}
