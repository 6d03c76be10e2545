"""The package's layering (DESIGN.md, issue 13): import-linter's contracts, and no hidden circles.

``lint-imports`` checks the contracts in pyproject.toml ([tool.importlinter]): cli -> api ->
{clusters, training -> data} -> base, clusters knowing nothing of data or models, data nothing
of models, nothing importing the CLI. A function-local import of a project module hides an
import circle from both Python and the reader, so they are counted: none may appear beyond the
allow-list below, which may only shrink.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "workbench"

# (file, imported module) -> why it is still imported inside a function. Only shrink this list.
ALLOWED: dict[tuple[str, str], str] = {
    ("data/catalog.py", "workbench.data.generators"): "circle catalog -> generators; data room",
    ("data/catalog.py", "workbench.display"): "HTML repr; can move to the top (data room)",
    ("data/sources.py", "workbench.data.parquet"): "circle sources <-> parquet; data room",
    ("training/model.py", "workbench.display.plots"): "display.plots imports matplotlib (heavy)",
}


def _project_module(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """The project modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "workbench"]
    if node.level:
        package = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
        return [".".join([*package, *filter(None, [node.module])])]
    module = node.module or ""
    return [module] if module.split(".")[0] == "workbench" else []


def function_local_imports() -> dict[tuple[str, str], list[str]]:
    """(file, imported module) -> the functions importing it, over every module of the package."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(PACKAGE).as_posix()

        def visit(node: ast.AST, function: str | None, rel: str = rel, path: Path = path) -> None:
            for child in ast.iter_child_nodes(node):
                inner = function
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    inner = child.name if function is None else f"{function}.{child.name}"
                elif function is not None and isinstance(child, ast.Import | ast.ImportFrom):
                    for module in _project_module(child, path):
                        found.setdefault((rel, module), []).append(function)
                visit(child, inner)

        visit(tree, None)
    return found


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_no_new_function_local_imports_of_project_modules() -> None:
    found = function_local_imports()
    new = {
        f"workbench/{rel}: {', '.join(sorted(set(fns)))} imports {module}"
        for (rel, module), fns in found.items()
        if (rel, module) not in ALLOWED
    }
    assert not new, (
        "import project modules at the top of the module (a function-local import hides an "
        "import circle; one is fine only for an optional or heavy third-party library):\n"
        + "\n".join(sorted(new))
    )


def test_the_counter_sees_a_function_local_import() -> None:
    source = "def f():\n    from workbench.clusters import start\n    import workbench.data\n"
    tree = ast.parse(source)
    inner = tree.body[0]
    assert isinstance(inner, ast.FunctionDef)
    names = [
        m
        for node in inner.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for m in _project_module(node, PACKAGE / "x.py")
    ]
    assert names == ["workbench.clusters", "workbench.data"]


def test_the_cli_loads_the_data_and_training_stack_only_when_a_command_needs_it() -> None:
    # the CLI imports workbench.api, whose dataset and model operations load on first use
    code = (
        "import sys, workbench.cli\n"
        "heavy = ('dask.dataframe', 'workbench.data.load', 'workbench.training.api')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from workbench import api\n"
        "api.predict_to_folder, api.run_demo\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [
        "[]",
        "['dask.dataframe', 'workbench.data.load', 'workbench.training.api']",
    ]
