"""wb.tune on real clusters with real Optuna and XGBoost: packed and gang, pruning, bad inputs."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from distributed import Client, LocalCluster

import workbench as wb
from tests.conftest import ROOT
from workbench._client import ClusterSnapshot, WorkerInfo
from workbench.tuning import placement

F = optuna.distributions.FloatDistribution
I = optuna.distributions.IntDistribution  # noqa: E741

# a space where slow learning rates fall behind at once: pruning has something to stop
SPACE = {"learning_rate": F(0.005, 0.5, log=True), "max_depth": I(2, 6)}


@pytest.fixture(scope="module")
def higgs(client: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Dataset, ...]:
    path = tmp_path_factory.mktemp("data") / "higgs"
    wb.generate("higgs", 12_000, path, partitions=4, seed=1, client=client)
    ds = wb.load(path, target="is_signal", client=client)
    return tuple(s.persist(client=client) for s in ds.split((0.7, 0.15, 0.15), seed=0))


@pytest.fixture(scope="module")
def study(client: Client, higgs: tuple[wb.Dataset, ...]) -> wb.Study:
    train, valid, _ = higgs
    return wb.tune(
        train,
        valid,
        trials=12,
        rounds=120,
        early_stopping=10,
        space=SPACE,
        metric="logloss",
        seed=0,
        client=client,
        progress=False,
    )


def test_a_packed_study_finishes_prunes_and_ranks_its_trials(study: wb.Study) -> None:
    trials = study.trials
    assert study.placement == "packed"
    assert "packed:" in study.placement_reason and "per worker" in study.placement_reason
    assert len(trials) == 12 and set(trials["number"]) == set(range(12))
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert (trials["state"] == "PRUNED").sum() >= 1  # slow learners were stopped
    assert (trials["state"] == "COMPLETE").sum() >= 2
    pruned = trials[trials["state"] == "PRUNED"]
    assert (pruned["rounds"] < 120).all()  # stopped before their last round
    assert len(set(trials["worker"])) == 2  # both workers ran trials
    done = trials[trials["state"] == "COMPLETE"]
    assert study.best_value == pytest.approx(done["value"].min())  # logloss: the smallest
    assert study.direction == "minimize" and study.metric == "logloss"
    best = done.loc[done["value"].idxmin()]
    assert study.best_trial == best["number"]
    assert study.best_params["learning_rate"] == pytest.approx(best["params_learning_rate"])
    # each trial's value is its curve at its best round
    for number, curve in study.curves.items():
        row = trials.set_index("number").loc[number]
        if row["state"] == "COMPLETE":
            at = int(row["best_round"]) if not math.isnan(row["best_round"]) else len(curve) - 1
            assert row["value"] == pytest.approx(curve[at])


def test_the_best_model_is_what_wb_train_gives_with_the_best_params(
    study: wb.Study, client: Client, higgs: tuple[wb.Dataset, ...]
) -> None:
    train, valid, test = higgs
    best = study.best_model  # refitted on the cluster with the best parameters
    plain = wb.train(
        train,
        valid,
        params=study.best_params,
        rounds=120,
        early_stopping=10,
        client=client,
        progress=False,
    )
    a = client.compute(best.predict_proba(test, client=client)).result()
    b = client.compute(plain.predict_proba(test, client=client)).result()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert best.best_iteration == plain.best_iteration
    assert study.best_model is best  # refitted once


def test_study_reprs_and_plots(study: wb.Study) -> None:
    text = repr(study)
    assert study.name in text
    html = study._repr_html_()
    assert study.name in html and "<img" in html
    assert study.plot_history() is not None
    assert study.plot_rounds() is not None
    importances = study.param_importances()
    assert set(importances) == {"learning_rate", "max_depth"}
    assert study.plot_importance() is not None


def test_a_gang_study_prunes_through_the_training_rounds(
    client: Client, higgs: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = higgs
    study = wb.tune(
        train,
        valid,
        trials=5,
        rounds=60,
        space=SPACE,
        placement="gang",
        metric="logloss",
        seed=1,
        client=client,
        progress=False,
    )
    trials = study.trials
    assert study.placement == "gang" and len(trials) == 5
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert set(trials["worker"]) == {"all"}
    # a gang trial's model is kept as trained: no refit
    best = study.best_model
    assert best.history["valid-logloss"].iloc[best.best_iteration or -1] == pytest.approx(
        study.best_value
    ) or best.history["valid-logloss"].min() == pytest.approx(study.best_value)


def test_two_studies_from_two_threads_share_the_cluster(
    client: Client, higgs: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = higgs
    out: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            out[i] = wb.tune(
                train, valid, trials=4, rounds=40, space=SPACE, seed=i, client=client,
                progress=False,
            )  # fmt: skip
        except BaseException as e:  # reported below
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a study did not finish in 240 s"
    for i in range(2):
        assert isinstance(out[i], wb.Study), out[i]
        assert len(out[i].trials) == 4
        assert set(out[i].trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert out[0].name != out[1].name


# --- bad inputs: one clear error each, before any trial ---------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trials": 0}, ValueError, r"trials must be a whole number >= 1"),
        ({"trials": 2.5}, ValueError, r"trials must be a whole number"),
        ({"space": {"max_dpeth": I(2, 6)}}, ValueError, r"max_dpeth.*did you mean 'max_depth'"),
        ({"space": {"max_depth": [2, 6]}}, TypeError, r"IntDistribution\(2, 6\)"),
        ({"space": {"eta": (0.01, 0.3)}}, TypeError, r"FloatDistribution\(0.01, 0.3\)"),
        ({"space": {}}, ValueError, r"space is empty"),
        ({"space": SPACE, "params": {"max_depth": 3}}, ValueError, r"both searched"),
        ({"metric": "rmse"}, ValueError, r"metric='rmse' is not a validation metric of the binary"),
        (
            {"metric": "aucpr", "params": {"eval_metric": ["logloss"]}},
            ValueError,
            r"metric='aucpr' is not .* add it to params\['eval_metric'\]",
        ),
        ({"model": "linear", "pruning": True}, ValueError, r"pruning=True needs a model"),
        ({"placement": "spread"}, ValueError, r"placement='spread': use 'auto'"),
        ({"timeout": -1}, ValueError, r"timeout must be a number of seconds"),
        ({"pruning": "yes"}, TypeError, r"pruning must be True, False, None or an Optuna pruner"),
        ({"experiment": 3}, TypeError, r"experiment"),
    ],
)
def test_bad_inputs_are_refused_before_any_trial(
    client: Client, higgs: tuple[wb.Dataset, ...], kwargs: dict[str, Any], error: type, match: str
) -> None:
    train, valid, _ = higgs
    before = set(client.who_has())
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        wb.tune(train, valid, client=client, progress=False, **kwargs)
    assert time.perf_counter() - start < 30  # no trial ran
    assert set(client.who_has()) <= before  # nothing was sent to the workers


def test_valid_is_required(client: Client, higgs: tuple[wb.Dataset, ...]) -> None:
    train, _, _ = higgs
    with pytest.raises(TypeError, match="valid must be a workbench Dataset"):
        wb.tune(train, None, client=client)  # type: ignore[arg-type]


def test_packed_placement_that_does_not_fit_names_the_figures(
    higgs: tuple[wb.Dataset, ...],
) -> None:
    train, valid, _ = higgs
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, memory_limit="2MiB",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as small,
        pytest.raises(ValueError, match=r"placement='packed' does not fit: .* per worker") as e,
    ):  # fmt: skip
        wb.tune(train, valid, placement="packed", client=small, progress=False)
    assert "placement='gang'" in str(e.value)


def test_auto_placement_follows_the_workers_memory() -> None:
    workers = tuple(
        WorkerInfo(name=str(i), address=f"tcp://127.0.0.1:{i}", host="127.0.0.1", threads=1,
                   memory_limit=100 * 2**20, memory_used=20 * 2**20)
        for i in (1, 2)
    )  # fmt: skip
    cluster = ClusterSnapshot("tcp://127.0.0.1:0", workers)
    # 80 MiB free on each: half of it (40 MiB) for a copy of 2x the arrays
    fits = placement.decide("auto", array_bytes=19 * 2**20, cluster=cluster, packable=None)
    assert fits.mode == "packed" and fits.need == 38 * 2**20
    too_big = placement.decide("auto", array_bytes=21 * 2**20, cluster=cluster, packable=None)
    assert too_big.mode == "gang" and "too little" in too_big.reason
    assert "100.00 MiB limit" in too_big.reason and "42.00 MiB per worker" in too_big.reason
    other = placement.decide("auto", array_bytes=1, cluster=cluster, packable="not XGBoost")
    assert other.mode == "gang" and "not XGBoost" in other.reason


# --- Ctrl-C and a lost worker ----------------------------------------------------------------
SCRIPT = r"""
import json, sys
if __name__ == "__main__":
    import optuna
    from distributed import Client, LocalCluster
    import workbench as wb
    F = optuna.distributions.FloatDistribution
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        wb.generate("higgs", 20_000, sys.argv[1], partitions=4, seed=2, client=client)
        train, valid = wb.load(sys.argv[1], target="is_signal", client=client).split((0.8, 0.2))
        print("ready", flush=True)
        study = wb.tune(train, valid, trials=500, rounds=300, pruning=False,
                        space={"learning_rate": F(0.01, 0.3, log=True)}, client=client,
                        progress=True)
        print(json.dumps({"states": study.trials["state"].tolist(),
                          "interrupted": study.interrupted}), flush=True)
"""


def test_ctrl_c_returns_the_study_so_far(tmp_path: Path) -> None:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "higgs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().strip() == "ready"
        seen = ""
        deadline = time.monotonic() + 120
        while not re.search(r"\b[1-9]\d* done", seen):  # the bar: a trial has finished
            assert time.monotonic() < deadline, f"no trial finished: {seen[-500:]}"
            seen += proc.stderr.read(1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] is True
    assert 1 <= len(result["states"]) < 500
    assert "RUNNING" not in result["states"]
    assert "COMPLETE" in result["states"]
    assert "interrupted: no new trials" in err


def test_a_killed_worker_fails_only_its_own_trial(tmp_path: Path) -> None:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):  # fmt: skip
        wb.generate("higgs", 20_000, tmp_path / "higgs", partitions=4, seed=2, client=client)
        ds = wb.load(tmp_path / "higgs", target="is_signal", client=client)
        train, valid = ds.split((0.8, 0.2))
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["study"] = wb.tune(
                    train, valid, trials=6, rounds=400, pruning=False, early_stopping=None,
                    space={"learning_rate": F(0.01, 0.3, log=True)}, client=client,
                    progress=False,
                )  # fmt: skip
            except BaseException as e:
                result["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            for worker, keys in client.processing().items():
                if any(str(k).startswith("workbench-trial-") for k in keys):
                    victim = worker
                    break
            time.sleep(0.05)
        assert victim is not None, "no trial started"
        (pid,) = client.run(os.getpid, workers=[victim]).values()
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive()
        assert "error" not in result, result.get("error")
        trials = result["study"].trials
    assert len(trials) == 6
    failed = trials[trials["state"] == "FAIL"]
    assert len(failed) == 1 and failed["worker"].iloc[0] == victim
    assert "lost worker" in failed["error"].iloc[0]
    assert set(trials[trials["state"] != "FAIL"]["state"]) == {"COMPLETE"}


def test_every_trial_is_an_mlflow_run_under_the_study(
    client: Client,
    higgs: tuple[wb.Dataset, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dask
    import mlflow

    train, valid, _ = higgs
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with dask.config.set({"workbench.tracking.uri": uri}):
        study = wb.tune(
            train, valid, trials=5, rounds=40, space=SPACE, metric="logloss", seed=3,
            experiment="tuning-test", client=client, progress=False,
        )  # fmt: skip
        table = wb.runs("tuning-test")
    assert study.experiment == {"name": "tuning-test", "uri": uri}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for MLflow's own reader
    found = mlflow.search_runs(experiment_names=["tuning-test"])
    assert len(found) == 6  # the study and its 5 trials
    parent = found[found["tags.mlflow.runName"] == study.name]
    assert len(parent) == 1 and parent["status"].iloc[0] == "FINISHED"
    children = found[found["tags.mlflow.parentRunId"] == parent["run_id"].iloc[0]]
    assert len(children) == 5
    trials = study.trials.set_index("number")
    for _, run in children.iterrows():
        number = int(run["tags.workbench.trial"])
        assert run["tags.workbench.state"] == trials.loc[number, "state"]
        assert float(run["params.learning_rate"]) == pytest.approx(
            trials.loc[number, "params_learning_rate"]
        )
        if trials.loc[number, "state"] == "COMPLETE":
            assert run["metrics.valid-logloss"] == pytest.approx(trials.loc[number, "value"])
            # the trial's model file, with the trial's own parameters
            folder = mlflow.artifacts.download_artifacts(
                run_id=run["run_id"], artifact_path="model", dst_path=str(tmp_path / f"m{number}")
            )
            saved = wb.load_model(str(Path(folder) / "model.wbm"))
            assert saved.params["learning_rate"] == pytest.approx(
                trials.loc[number, "params_learning_rate"]
            )
    assert len(table) == 6


def test_the_command_line_runs_a_study_and_saves_the_best_model(
    client: Client, tmp_path: Path
) -> None:
    data = tmp_path / "higgs"
    wb.generate("higgs", 6_000, data, partitions=2, seed=4, client=client)
    out = tmp_path / "best.wbm"
    args = ["--data", str(data), "--target", "is_signal", "--trials", "3", "--rounds", "20"]
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "tune", *args, "--seed", "1", "--out", str(out),
         "--no-progress", "--metric", "logloss"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best valid-logloss:" in done.stdout and "learning_rate =" in done.stdout
    assert f"best model saved to {out}" in done.stdout
    model = wb.load_model(str(out))
    assert model.kind == "xgboost" and model.task == "binary"
    # a file that is not a model is refused before any cluster starts
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    refused = subprocess.run(
        [sys.executable, "-m", "workbench", "tune", *args, "--out", str(other), "--overwrite"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "notes.txt' exists and is not a workbench model" in (
        refused.stderr
    )
    assert "is up" not in refused.stderr  # no cluster was started
    assert other.read_text() == "mine"


def test_a_store_that_cannot_be_opened_is_refused_before_any_trial(
    client: Client, higgs: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    import dask

    train, valid, _ = higgs
    bad = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'mlflow.db'}"
    before = set(client.who_has())
    with (
        dask.config.set({"workbench.tracking.uri": bad}),
        pytest.raises(ValueError, match=r"no/such/folder/mlflow.db.*workbench.tracking.uri"),
    ):
        wb.tune(train, valid, experiment="e", client=client, progress=False)
    assert set(client.who_has()) <= before
    assert not (tmp_path / "no").exists()  # nothing made on the way


def test_a_linear_study_runs_gang_judged_on_the_final_metrics(
    client: Client, higgs: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = higgs
    study = wb.tune(
        train, valid, model="linear", trials=3, metric="auc", seed=0, client=client,
        progress=False,
    )  # fmt: skip
    assert study.placement == "gang" and "packed trials are XGBoost's" in study.placement_reason
    assert study.direction == "maximize"
    assert list(study.trials["state"]) == ["COMPLETE"] * 3
    assert study.best_model.metrics["auc"] == pytest.approx(study.best_value)
    assert 0.6 < study.best_value < 1
    with pytest.raises(ValueError, match=r"metric='aucpr_typo' is not a validation metric"):
        wb.tune(train, valid, model="linear", metric="aucpr_typo", client=client)
