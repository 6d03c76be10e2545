"""pyproject.toml and environment.yml list the same packages with the same versions."""

from __future__ import annotations

import tomllib

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
    for extra in ("gpu", "lab", "remote", "test"):
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
    assert set(meta["optional-dependencies"]) >= {"gpu", "lab", "remote", "test"}
    gpu = " ".join(meta["optional-dependencies"]["gpu"])
    assert "dask-cuda[cu12]" in gpu and "cupy-cuda12x" in gpu
    assert meta["scripts"]["workbench"] == "workbench.cli:main"
