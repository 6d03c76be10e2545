"""Tracking with MLflow: real SQLite stores under tmp_path, a real cluster, real XGBoost."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost
from click.testing import CliRunner
from distributed import Client, get_client

import workbench as wb
from workbench.cli import main
from workbench.tuning.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(y=y)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    for i in range(2):
        _table(2000, i).to_parquet(folder / f"part-{i}.parquet")
    return folder


@pytest.fixture(scope="module")
def sets(client: Client, data_path: Path) -> tuple[wb.Dataset, wb.Dataset]:
    ds = wb.load(data_path, target="y", client=client)
    train, valid = ds.split((0.75, 0.25), seed=0)
    return train, valid


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store under tmp_path, set as ``workbench.tracking.uri`` for the module."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    with dask.config.set({"workbench.tracking.uri": uri}):
        yield uri


@pytest.fixture(scope="module")
def recorded(
    client: Client, sets: tuple[wb.Dataset, wb.Dataset], store: str
) -> tuple[wb.Model, Any]:
    train, valid = sets
    model = wb.train(train, valid, rounds=5, experiment="e", client=client, progress=False)
    found = mlflow.MlflowClient(store).search_runs(
        [mlflow.MlflowClient(store).get_experiment_by_name("e").experiment_id]
    )
    assert len(found) == 1
    return model, found[0]


def _run_count(uri: str) -> int:
    c = mlflow.MlflowClient(uri)
    return sum(len(c.search_runs([e.experiment_id])) for e in c.search_experiments())


def test_a_training_is_recorded_as_one_run(
    client: Client,
    sets: tuple[wb.Dataset, wb.Dataset],
    store: str,
    recorded: tuple[wb.Model, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, run = recorded
    train, valid = sets
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # for MLflow's own fluent search
    table = mlflow.search_runs(experiment_names=["e"])
    assert list(table["run_id"]) == [run.info.run_id] == [model.info["run_id"]]
    assert table["status"].tolist() == ["FINISHED"]
    assert run.info.run_name == "xgboost table0"  # the source's short name, as on the bar

    params = run.data.params
    assert params["model"] == "xgboost" and params["rounds"] == "5"
    for name, value in model.params.items():  # text; lists as JSON
        assert params[name] == (json.dumps(value) if isinstance(value, list) else str(value))

    c = mlflow.MlflowClient(store)
    assert len(model.history) == 5 and set(model.history.columns) == {
        "valid-logloss",
        "valid-auc",
    }
    for column in model.history.columns:
        steps = c.get_metric_history(run.info.run_id, column)
        assert sorted(m.step for m in steps) == list(range(5))
        got = [m.value for m in sorted(steps, key=lambda m: m.step)]
        assert got == pytest.approx(model.history[column].tolist(), rel=1e-12)
    for name, value in model.metrics.items():
        assert run.data.metrics[name] == pytest.approx(value, rel=1e-12)
    assert run.data.metrics["seconds"] == pytest.approx(model.info["seconds"])

    tags = run.data.tags
    rows = model.info["train_rows"]
    assert tags["workbench.data.rows"] == str(rows) and 2000 < rows < 4000
    assert tags["workbench.valid.rows"] == str(model.info["valid_rows"])
    assert tags["workbench.data.source"] == train.source
    assert tags["workbench.data.files"] == "2" and len(tags["workbench.data.files_hash"]) == 16
    assert tags["workbench.data.schema"] == tags["workbench.valid.schema"]
    assert tags["workbench.data.fingerprint"] != tags["workbench.valid.fingerprint"]  # rows
    assert tags["workbench.cluster.workers"] == "2" and tags["workbench.cluster.threads"] == "2"
    assert tags["workbench.cluster.deployment"] == "LocalCluster"
    for package in ("workbench", "xgboost", "dask", "distributed", "python", "mlflow"):
        assert tags[f"workbench.version.{package}"], package
    assert tags["workbench.version.xgboost"] == xgboost.__version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=".")
    if head.returncode == 0:
        assert tags["mlflow.source.git.commit"] == head.stdout.strip()
    else:
        assert "mlflow.source.git.commit" not in tags

    # the model file is an artifact that wb.load_model reads and that predicts as the model
    folder = c.download_artifacts(run.info.run_id, "model", str(tmp_path))
    assert run.info.artifact_uri.startswith(Path(store[len("sqlite:///") :]).parent.as_uri())
    loaded = wb.load_model(Path(folder) / "model.wbm")
    assert loaded.params == model.params and loaded.metrics == model.metrics
    theirs = client.compute(loaded.predict_proba(valid, client=client)).result()
    ours = client.compute(model.predict_proba(valid, client=client)).result()
    np.testing.assert_array_equal(theirs, ours)


def test_runs_returns_the_run_and_the_command_line_prints_it(
    recorded: tuple[wb.Model, Any], store: str
) -> None:
    model, run = recorded
    table = wb.runs("e")
    assert table["run_id"].tolist() == [run.info.run_id]
    row = table.iloc[0]
    assert row["name"] == run.info.run_name and row["status"] == "FINISHED"
    assert row["metrics.auc"] == pytest.approx(model.metrics["auc"])
    assert row["params.rounds"] == "5" and pd.isna(row["parent_run_id"])
    assert row["duration"] >= pd.Timedelta(0)
    assert str(row["start"].tz) == "UTC"
    everything = wb.runs()
    assert run.info.run_id in set(everything["run_id"])
    assert set(everything["experiment"]) >= {"e"}

    result = CliRunner().invoke(main, ["runs", "e"])
    assert result.exit_code == 0, result.output
    assert run.info.run_id in result.output and "FINISHED" in result.output
    assert "auc" in result.output and "max_depth" not in result.output
    result = CliRunner().invoke(main, ["runs", "e", "--params", "--uri", store])
    assert result.exit_code == 0, result.output
    assert "objective" in result.output and "binary:logistic" in result.output

    with pytest.raises(ValueError, match=r"no experiment 'nope' in .*'e'"):
        wb.runs("nope")
    result = CliRunner().invoke(main, ["runs", "nope"])
    assert result.exit_code == 2 and "no experiment 'nope'" in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_experiments_and_stores_are_refused_before_any_work(
    sets: tuple[wb.Dataset, wb.Dataset],
    store: str,
    recorded: tuple[wb.Model, Any],
    tmp_path: Path,
) -> None:
    train, valid = sets
    before = _run_count(store)
    with pytest.raises(ValueError):  # no client is current: a cluster would be started
        get_client()

    with pytest.raises(TypeError, match=r"experiment must be .* not 3"):
        wb.train(train, valid, experiment=3)  # type: ignore[arg-type]
    for empty in ("", "  "):
        with pytest.raises(ValueError, match=r"experiment=.* is empty"):
            wb.train(train, valid, experiment=empty)

    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("not a database")
    bad = {
        f"sqlite:///{tmp_path}/no/such/dir/x.db": "does not exist",
        f"sqlite:///{a_file}/x.db": "is a file, not a folder",
        f"sqlite:///{tmp_path}": "is a folder, not a database file",
        f"sqlite:///{not_sqlite}": "notes.db",
        "sqlite://": "in-memory",
        "foo://somewhere/x": "foo://somewhere/x",
        f"http://127.0.0.1:{_closed_port()}": "does not answer",
    }
    for uri, why in bad.items():
        start = time.perf_counter()
        with (
            dask.config.set({"workbench.tracking.uri": uri}),
            pytest.raises(ValueError, match=r"workbench\.tracking\.uri") as caught,
        ):
            wb.train(train, valid, experiment="e")
        assert why in str(caught.value), (uri, caught.value)
        assert time.perf_counter() - start < 30  # refused, not retried for minutes
    assert not (tmp_path / "no").exists()
    assert not_sqlite.read_text() == "not a database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "notes.db"]

    with pytest.raises(ValueError):  # still no cluster, nothing recorded
        get_client()
    assert _run_count(store) == before


def test_without_mlflow_experiment_names_the_extra(data_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        "sys.modules['mlflow'] = None\n"
        "import workbench as wb\n"
        "from workbench.errors import MissingDependencyError\n"
        "if __name__ == '__main__':\n"
        f"    ds = wb.load({str(data_path)!r}, target='y', task='binary', check=False)\n"
        "    for call in (lambda: wb.train(ds, experiment='e'), lambda: wb.runs('e')):\n"
        "        try:\n"
        "            call()\n"
        "        except MissingDependencyError as e:\n"
        "            print('refused:', e)\n"
        "    from workbench.cli import main\n"
        "    main(['runs', 'e'])\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 1, out.stderr  # the command's runtime failure
    refusals = [line for line in out.stdout.splitlines() if line.startswith("refused:")]
    assert len(refusals) == 2
    assert all("pip install 'workbench[track]'" in line for line in refusals)
    assert "pip install 'workbench[track]'" in out.stderr
    assert "starting the default local cluster" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.py"]


def test_the_store_comes_from_the_setting_then_mlflows_variable_then_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(dask.config.config["workbench"]["tracking"], "uri", None)  # the module's
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'b' / 'b.db'}")
    with dask.config.set({"workbench.tracking.uri": "sqlite:///a/a.db"}):  # relative: made absolute
        with Tracker("x") as t:
            assert t.uri == f"sqlite:///{tmp_path / 'a' / 'a.db'}"
        assert (tmp_path / "a" / "a.db").is_file()
    with Tracker("x") as t:
        assert t.uri == f"sqlite:///{tmp_path / 'b' / 'b.db'}"
    assert (tmp_path / "b" / "b.db").is_file()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with Tracker("x") as t:
        assert t.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
        exp = mlflow.MlflowClient(t.uri).get_experiment(t.experiment_id)
        assert exp.name == "x" and exp.artifact_location == (tmp_path / "mlartifacts").as_uri()
    with Tracker("x", uri=f"sqlite:///{tmp_path / 'a' / 'a.db'}") as t:  # uri= wins
        assert t.uri.endswith("/a/a.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "mlflow.db"]
    assert wb.runs("x").empty  # read from the working folder's store


def test_study_runs_nest_log_in_order_and_report_errors(
    client: Client,
    sets: tuple[wb.Dataset, wb.Dataset],
    recorded: tuple[wb.Model, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, _ = recorded
    train, valid = sets
    uri = f"sqlite:///{tmp_path / 'study.db'}"
    with Tracker("study", uri=uri) as tracker:
        context = tracker.context(train, valid, client)  # the split's rows are counted
        assert int(context["workbench.data.rows"]) == model.info["train_rows"]
        assert int(context["workbench.valid.rows"]) == model.info["valid_rows"]
        parent = tracker.start_run("study-1", tags=context, params={"trials": 2})
        rounds = 200
        history = {"valid": {"logloss": [1 / (r + 1) for r in range(rounds)], "auc": [0.5] * 200}}
        start = time.perf_counter()
        child = tracker.start_run("trial 0", tags=context, params={"eta": 0.1}, parent=parent)
        tracker.log_run(child, history=history, metrics={"valid-logloss": 0.004}, model=model)
        queued = time.perf_counter() - start
        tracker.flush()
        total = time.perf_counter() - start
        with capsys.disabled():  # a figure for the report, not an assertion
            print(
                f"\ntracking cost of one trial ({rounds} rounds x 2 metrics + model): "
                f"{queued * 1000:.1f} ms in the caller, {total * 1000:.1f} ms until recorded"
            )
        tracker.log_run(parent, metrics={"best_value": 0.005}, status="FINISHED")

        caplog.set_level(logging.WARNING, logger="workbench.tuning.tracking")
        tracker.log_run("no-such-run", metrics={"x": 1.0})
        with pytest.raises(Exception, match="no-such-run"):
            tracker.flush()
        said = caplog.text + capsys.readouterr().err  # stderr where the workbench's handler is
        assert "recording run no-such-run of experiment 'study'" in said
        tracker.flush()  # the error was raised once
    assert not [t for t in threading.enumerate() if t.name.startswith("workbench-tracking")]

    c = mlflow.MlflowClient(uri)
    assert c.get_run(child).data.tags["mlflow.parentRunId"] == parent
    assert c.get_run(child).data.params == {"eta": "0.1"}
    steps = c.get_metric_history(child, "valid-logloss")
    steps = sorted(steps, key=lambda m: m.step)
    assert [m.step for m in steps] == list(range(rounds + 1))  # the final value after them
    assert [m.value for m in steps] == [*history["valid"]["logloss"], 0.004]
    assert c.get_run(child).data.metrics["valid-logloss"] == 0.004  # the run's value
    assert [a.path for a in c.list_artifacts(child, "model")] == ["model/model.wbm"]
    table = wb.runs("study", uri=uri)
    assert table["run_id"].tolist() == [child, parent]  # newest first
    assert table.set_index("run_id").loc[child, "parent_run_id"] == parent
    assert set(table["status"]) == {"FINISHED"}


def test_nothing_is_written_into_the_repository() -> None:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout
    assert "mlflow.db" not in status and "mlartifacts" not in status and "mlruns" not in status
