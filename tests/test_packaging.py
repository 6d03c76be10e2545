"""pyproject.toml and environment.yml list the same packages with the same versions."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from tests.conftest import ROOT

# PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {
    "cupy-cuda12x": "cupy",
    "rmm-cu12": "rmm",
    "dask-gateway-server": "dask-gateway-server-local",
    "types-pyyaml": "types-pyyaml",
}


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in ("gpu", "lab", "track", "remote", "test"):
        reqs += meta["optional-dependencies"][extra]
    out = {}
    for r in map(Requirement, reqs):
        name = r.name.lower()
        out[CONDA_NAMES.get(name, name)] = str(r.specifier)
    return out


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str) or dep.split("=")[0].split(">")[0] in ("python", "pip"):
            continue
        r = Requirement(dep)
        out[r.name.lower()] = str(r.specifier)
    return out


def test_environment_yml_matches_pyproject() -> None:
    assert _environment() == _pyproject()


def test_extras_are_declared() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(meta["optional-dependencies"]) >= {"gpu", "lab", "track", "remote", "test"}
    gpu = " ".join(meta["optional-dependencies"]["gpu"])
    assert "dask-cuda[cu12]" in gpu and "cupy-cuda12x" in gpu
    assert meta["scripts"]["workbench"] == "workbench.cli:main"


# --- every model the README offers works from the core install (`pip install -e .`) -------------

_CORE_RUN = """
import numpy as np, pandas as pd, sys
import workbench as wb

if __name__ == "__main__":
    folder = sys.argv[1]
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=400), "y": (a > 0).astype("int64")})
    frame.to_parquet(f"{folder}/part.0.parquet")
    with wb.start_cluster("local-cpu", n_workers=1, threads_per_worker=1, processes=False) as c:
        client = c.get_client()
        ds = wb.load(folder, target="y", client=client)
        train, valid = ds.split((0.8, 0.2), seed=0)
        for kind in ("xgboost", "lightgbm", "linear"):
            model = wb.train(train, valid, model=kind, rounds=3, progress=False, client=client)
            print(kind, "auc", round(model.evaluate(valid, client=client)["auc"], 3))
"""


def _core_distributions() -> set[str]:
    """The distributions that ``pip install .`` brings: pyproject's dependencies and theirs."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.utils import canonicalize_name

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(r), "") for r in meta["dependencies"]]
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while todo:
        req, parent_extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(req.name)
        for extra in ["", *sorted(req.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            names.add(name)
            try:
                requires = distribution(name).requires or []
            except PackageNotFoundError:
                continue  # a requirement for another platform
            todo += [(Requirement(r), extra) for r in requires]
    return names


def _core_site_packages(folder: Path) -> Path:
    """A site-packages holding links to the core distributions' files only."""
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    core = _core_distributions()
    site = folder / "site-packages"
    site.mkdir()
    for dist in distributions():
        if canonicalize_name(dist.metadata["Name"]) not in core or dist.files is None:
            continue
        for file in dist.files:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            source = Path(str(dist.locate_file(top)))
            link = site / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return site


def _run_core(site: Path, path: Path, script: str, arg: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with only ``site`` (and the workbench's source) on the path: no site."""
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DASK_"))}
    env["PYTHONPATH"] = f"{site}{os.pathsep}{ROOT}"
    return subprocess.run(
        [sys.executable, "-S", str(path), str(arg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_every_model_trains_from_the_core_install(tmp_path: Path) -> None:
    """XGBoost, LightGBM and the linear model train with only pyproject's core dependencies.

    The extras (lab, test, gpu, remote) are left out of the interpreter's path: this is what a
    user has after the README's first command. lightgbm.dask imports scikit-learn, which none of
    the core dependencies required before it was named (issue 12, item 11).
    """
    site = _core_site_packages(tmp_path)
    assert (site / "sklearn").exists()  # a core dependency since it was found missing
    assert not (site / "nbclient").exists() and not (site / "pytest").exists()  # extras
    data = tmp_path / "data"
    data.mkdir()
    run = _run_core(site, tmp_path / "core.py", _CORE_RUN, data)
    assert run.returncode == 0, run.stderr[-3000:]
    for kind in ("xgboost", "lightgbm", "linear"):
        assert f"{kind} auc" in run.stdout


def test_lightgbm_without_scikit_learn_names_the_fix(tmp_path: Path) -> None:
    """Without scikit-learn (``pip install --no-deps``) model='lightgbm' says what to install."""
    site = _core_site_packages(tmp_path)
    (site / "sklearn").unlink()
    script = (
        "import numpy as np, pandas as pd, sys\n"
        "import workbench as wb\n"
        "if __name__ == '__main__':\n"
        "    pd.DataFrame({'a': np.arange(40.0), 'y': np.arange(40) % 2}).to_parquet(\n"
        "        sys.argv[1] + '/p.parquet')\n"
        "    with wb.start_cluster('local-cpu', n_workers=1, processes=False) as c:\n"
        "        ds = wb.load(sys.argv[1], target='y', client=c.get_client())\n"
        "        try:\n"
        "            wb.train(ds, model='lightgbm', rounds=2, progress=False)\n"
        "        except wb.MissingDependencyError as e:\n"
        "            print('refused:', e)\n"
    )
    run = _run_core(site, tmp_path / "no_sklearn.py", script, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "refused:" in run.stdout and "pip install scikit-learn" in run.stdout


def test_every_package_of_the_source_is_in_the_wheel() -> None:
    """pyproject lists packages by hand (two come from other folders): none may be forgotten."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "workbench").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
