"""Defaults come from workbench.yaml; arguments, env variables and user YAML override them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import pytest
import yaml

from workbench import config

YAML = Path(config.__file__).with_name("workbench.yaml")


def test_defaults_loaded_into_dask_config() -> None:
    defaults = yaml.safe_load(YAML.read_text())["workbench"]
    assert dask.config.get("workbench.profiles.default") == defaults["profiles"]["default"]
    assert dask.config.get("workbench.cluster.connect-timeout") == "10s"


def test_every_default_has_a_comment() -> None:
    for line in YAML.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        _key, _, value = stripped.partition(":")
        if value.strip():  # a leaf
            assert "#" in value, f"no comment on {line!r}"


def test_argument_wins_then_config() -> None:
    assert config.get("cluster.connect-timeout", "3s") == "3s"
    with dask.config.set({"workbench.cluster.connect-timeout": "7s"}):
        assert config.timeout_seconds("cluster.connect-timeout") == 7.0
    assert config.timeout_seconds("cluster.connect-timeout", 2) == 2.0


@pytest.mark.parametrize("bad", ["-1s", 0, "soon"])
def test_bad_timeout_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        config.timeout_seconds("cluster.connect-timeout", bad)  # type: ignore[arg-type]


def test_environment_variable_and_user_yaml_override(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("workbench:\n  profiles:\n    default: local-cpu\n")
    env = {
        **os.environ,
        "DASK_CONFIG": str(tmp_path),
        "DASK_WORKBENCH__CLUSTER__CONNECT_TIMEOUT": "42s",
    }
    code = (
        "import dask, workbench\n"
        "print(dask.config.get('workbench.cluster.connect-timeout'))\n"
        "print(dask.config.get('workbench.profiles.default'))\n"
        "print(dask.config.get('workbench.cluster.host'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42s", "local-cpu", "127.0.0.1"]
