"""The package's import graph: not a speed measurement, the structure behind issue 13's figures.

``python benchmarks/import_graph.py [ROOT]`` reads every module under ``ROOT/workbench`` (default:
this checkout) with :mod:`ast` and prints the number of modules and import edges, the imports of
project modules made inside functions, the import cycles (strongly connected groups, counting
those local imports; ``if TYPE_CHECKING:`` blocks are left out), and the edges between rooms
(base, clusters, data, training, api, cli...). Run it on an older checkout to compare.
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

BASE = {"config", "hardware", "errors", "_yaml", "_redact", "checks", "display"}


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in (root / "workbench").rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def edges(mods: dict[str, Path]) -> dict[tuple[str, str], str]:
    """``(importer, imported) -> "top"`` or ``"local"`` (only inside functions)."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    found: dict[tuple[str, str], str] = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]

        def targets(node: ast.Import | ast.ImportFrom, package: str = package) -> list[str]:
            if isinstance(node, ast.Import):
                return [a.name for a in node.names]
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            subs = [f"{base}.{a.name}" for a in node.names]
            names = [s for s in subs if s in mods]
            return [*names, base] if any(s not in mods for s in subs) else names

        def visit(node: ast.AST, local: bool, mod: str = mod) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                    continue
                inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for name in targets(child):
                        target = resolve(name) if name.startswith("workbench") else None
                        if target and target != mod and found.get((mod, target)) != "top":
                            found[(mod, target)] = "local" if local else "top"
                visit(child, inner)

        visit(ast.parse(path.read_text()), False)
    return found


def cycles(mods: dict[str, Path], graph: dict[tuple[str, str], str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    out_edges = collections.defaultdict(set)
    for a, b in graph:
        out_edges[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in out_edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in mods:
        if v not in index:
            connect(v)
    return groups


def room(mod: str) -> str:
    parts = mod.split(".")
    if len(parts) == 1:
        return "workbench"
    return "base" if parts[1] in BASE else parts[1]


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    mods = modules(root)
    graph = edges(mods)
    local = [e for e, kind in graph.items() if kind == "local"]
    print(f"modules {len(mods)}, edges {len(graph)}, function-local project imports {len(local)}")
    groups = cycles(mods, graph)
    print(f"import cycles (counting function-local imports): {len(groups)}")
    for group in groups:
        print("  ", " <-> ".join(m.removeprefix("workbench.") for m in group))
    rooms = collections.Counter(
        (room(a), room(b), kind) for (a, b), kind in graph.items() if room(a) != room(b)
    )
    print("edges between rooms (from -> to [kind]: count):")
    for (a, b, kind), n in sorted(rooms.items()):
        print(f"   {a} -> {b} [{kind}]: {n}")


if __name__ == "__main__":
    main()
