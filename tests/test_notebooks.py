"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel, and is stored clean."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: outputs"
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: no parameter cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "notebooks"  # the notebook's own folder, as in a clone
    temp = tmp_path / "tmp"  # the kernel's temporary folder (and its workers')
    folder.mkdir()
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "got rank" not in text  # XGBoost's per-rank lines stay out of the notebook
    # What a notebook writes goes to its scratch folder (ignored by git), and no key outlives it.
    assert {p.name for p in folder.iterdir()} <= {"scratch"}
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".pem", ".key")]
    if path.stem == "03-fraud-detection":  # the story ends with what the model saves
        assert re.search(r"\$[\d,]+ saved, \d+% of the fraud losses", text), text


def test_the_scratch_folder_is_ignored_by_git() -> None:
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "check-ignore", "-q", "notebooks/scratch/data.parquet"], cwd=root, check=False
    )
    assert out.returncode == 0
    for nb_path in NOTEBOOKS:  # every notebook names it among its parameters, and writes there
        cells = [c for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "code"]
        assert 'SCRATCH = "scratch"' in cells[0].source, nb_path.name
        source = "\n".join(c.source for c in cells)
        for old in ('"data/', '"models/', '"certs"'):
            assert old not in source, (nb_path.name, old)
