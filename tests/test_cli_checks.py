"""What the command line can refuse without a cluster it refuses before one starts (issue 15).

Item 9. Each bad input below is named with a way on ("did you mean" where a near name exists),
and no cluster is started for it: no worker process appears and no "is up" line is printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import workbench as wb
from tests.conftest import children
from workbench.api.models import check_before_cluster
from workbench.cli import main
from workbench.errors import ProfileError
from workbench.lab import check_user


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((200, 3)), columns=["amount", "age", "score"])
    frame["label"] = (frame["amount"] > 0.5).astype(int)
    frame["shop"] = pd.Categorical(rng.choice(["a", "b"], 200))
    frame.to_parquet(folder / "part-0.parquet", index=False)
    return folder


def _refused(args: list[str], tmp_path: Path) -> str:
    before = children()
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "m.wbm")])
    assert result.exit_code in (1, 2), result.output  # a runtime failure, or a usage error
    assert "is up" not in result.output and children() == before  # no cluster was started
    assert not (tmp_path / "m.wbm").exists()
    return " ".join(result.output.split())


def test_a_missing_path(tmp_path: Path) -> None:
    out = _refused(["train", "--data", str(tmp_path / "nothing"), "--target", "y"], tmp_path)
    assert str(tmp_path / "nothing") in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--param", "max_dpeth=3"], ["max_dpeth", "did you mean 'max_depth'"]),
        (["--param", "max_depth=-2"], ["max_depth"]),  # refused whatever the task
        (["--drop", "scor"], ["--drop scor", "did you mean 'score'"]),
        (["-p", "local-cp"], ["did you mean 'local-cpu'"]),
        (["--model", "xgb"], ["xgb", "xgboost"]),
    ],
)
def test_a_bad_option(parquet: Path, tmp_path: Path, args: list[str], said: list[str]) -> None:
    out = _refused(["train", "--data", str(parquet), "--target", "label", *args], tmp_path)
    assert all(s in out for s in said), out


def test_a_misspelt_target(parquet: Path, tmp_path: Path) -> None:
    out = _refused(["train", "--data", str(parquet), "--target", "lable"], tmp_path)
    assert "--target lable" in out and "did you mean 'label'" in out


def test_a_task_specific_parameter_is_not_refused_early(parquet: Path) -> None:
    """What one task accepts passes: the target's task is known only once the data is loaded.

    ``num_class`` is refused for a binary or regression target and accepted for a multiclass
    one, so only the check after loading may refuse it.
    """
    check_before_cluster(str(parquet), "label", (), (), "xgboost", {"num_class": 3}, None)
    check_before_cluster(str(parquet), "label", (), (), "xgboost", {"scale_pos_weight": 3}, None)


def test_profiles_suggest_a_near_name() -> None:
    with pytest.raises(ProfileError, match="did you mean 'local-cpu'"):
        wb.start_cluster("lokal-cpu")


def test_root_needs_allow_root_before_anything_starts() -> None:
    with pytest.raises(PermissionError, match="workbench lab --allow-root"):
        check_user((), euid=0)
    check_user(("--allow-root",), euid=0)
    check_user(("--ServerApp.allow_root=True",), euid=0)
    check_user((), euid=1000)
