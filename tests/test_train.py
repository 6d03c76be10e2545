"""Training on real clusters with real XGBoost: metrics, early stopping, progress, save/load."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
import xgboost
from distributed import Client
from sklearn import metrics as skm

import workbench as wb
from tests.conftest import span_prefixes
from workbench.training import archive
from workbench.training.backends.xgboost import train as xgb
from workbench.training.progress import Progress


@pytest.fixture(scope="module")
def fraud(client: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Dataset, ...]:
    path = tmp_path_factory.mktemp("data") / "fraud"
    wb.generate("fraud", 60_000, path, partitions=4, seed=3, client=client)
    ds = wb.load(
        path,
        target="is_fraud",
        categorical=["merchant_category", "device"],
        features=[
            "amount",
            "merchant_category",
            "device",
            "hour",
            "distance_from_home_km",
            "is_foreign",
            "card_age_days",
            "tx_count_24h",
            "avg_amount_30d",
        ],
        client=client,
    )
    return ds.split((0.7, 0.15, 0.15), seed=0, stratify=True)


def _get(client: Client, a: Any) -> Any:
    """Compute on ``client`` (not the default one): predictions refer to its futures."""
    return client.compute(a).result()


def _labels_and_scores(model: wb.Model, ds: wb.Dataset, client: Client) -> tuple[np.ndarray, ...]:
    y = _get(client, ds.frame[ds.target]).to_numpy()
    p = _get(client, model.predict_proba(ds, client=client))
    return y, p


@pytest.fixture(scope="module")
def trained(client: Client, fraud: tuple[wb.Dataset, ...]) -> wb.Model:
    train, valid, _ = fraud
    return wb.train(
        train,
        valid,
        rounds=60,
        early_stopping=10,
        params={"max_depth": 4, "eta": 0.2},
        client=client,
        progress=False,
        eval_train=True,  # the training curve too
    )


def test_binary_xgboost_beats_baseline_and_metrics_match_sklearn(
    client: Client, fraud: tuple[wb.Dataset, ...], trained: wb.Model
) -> None:
    _, _, test = fraud
    assert trained.task == "binary" and trained.kind == "xgboost"
    assert trained.classes == [0, 1]
    assert set(trained.metrics) == {"auc", "aucpr", "logloss", "accuracy"}
    got = trained.evaluate(test, client=client)
    y, p = _labels_and_scores(trained, test, client)
    assert p.shape == (len(y), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-9)
    assert got["aucpr"] == pytest.approx(skm.average_precision_score(y, p[:, 1]), abs=1e-9)
    assert got["logloss"] == pytest.approx(skm.log_loss(y, p[:, 1]), rel=1e-5)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p[:, 1] > 0.5))
    assert got["auc"] > 0.85  # fraud has signal: far above the 0.5 of a constant
    labels = _get(client, trained.predict(test, client=client))
    np.testing.assert_array_equal(labels, (p[:, 1] > 0.5).astype(labels.dtype))


def test_early_stopping_keeps_the_best_round(trained: wb.Model) -> None:
    history = trained.history
    assert list(history.columns) == [
        "train-logloss",
        "train-auc",
        "valid-logloss",
        "valid-auc",
    ]
    best = trained.best_iteration
    assert best is not None
    assert history["valid-auc"].idxmax() == best
    assert len(history) == best + 11 or len(history) == 60  # stopped 10 rounds after the best
    assert trained.estimator.num_boosted_rounds() == best + 1


def test_only_the_sets_asked_for_are_evaluated(
    client: Client, fraud: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    train, valid, _ = fraud
    model = wb.train(train, valid, rounds=3, params={"max_depth": 2}, client=client, progress=False)
    assert list(model.history.columns) == ["valid-logloss", "valid-auc"]
    assert len(model.history) == 3 and not model.history.isna().any().any()
    # without a validation set nothing is evaluated unless asked, as in XGBoost: a row per
    # round, no columns, and the model file keeps that
    alone = wb.train(train, rounds=4, params={"max_depth": 2}, client=client, progress=False)
    assert list(alone.history.columns) == [] and list(alone.history.index) == [0, 1, 2, 3]
    assert alone.estimator.num_boosted_rounds() == 4 and alone.info["live_rounds"] == 4
    assert alone.metrics == {} and "4 rounds" in repr(alone)
    path = tmp_path / "alone.wbm"
    alone.save(path)
    again = wb.Model.load(path)
    assert list(again.history.columns) == [] and len(again.history) == 4
    with pytest.raises(ValueError, match="no history to plot"):
        again.plot_history()
    asked = wb.train(train, rounds=2, eval_train=True, client=client, progress=False)
    assert list(asked.history.columns) == ["train-logloss", "train-auc"]
    with pytest.raises(TypeError, match="eval_train must be True or False, not 'yes'"):
        wb.train(train, valid, eval_train="yes", client=client)  # type: ignore[arg-type]


def test_progress_events_arrive_for_every_round(
    client: Client, fraud: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = fraud
    X, y = train.to_arrays(device="cpu", client=client)
    Xv, yv = valid.to_arrays(device="cpu", client=client)
    kinds = list(train.features.values())
    bar = Progress(client, total=12, show=False)
    fit = bar.run(
        lambda: xgb.fit(
            client,
            X,
            y,
            task="binary",
            n_classes=2,
            feature_names=list(train.features),
            categorical=[j for j, k in enumerate(kinds) if k == "categorical"],
            params={"max_depth": 3},
            rounds=12,
            valid=(Xv, yv),
            topic=bar.topic,
            eval_train=True,
        ),
        rounds_of=lambda fit: 12,
    )
    assert sorted(bar.rounds) == list(range(12))
    for r in range(12):
        for data in ("train", "valid"):
            for metric, values in fit.history[data].items():
                assert bar.rounds[r][data][metric] == pytest.approx(values[r])
    live = bar.history()
    assert list(live.index) == list(range(12))


def test_save_and_load_round_trip(
    client: Client, fraud: tuple[wb.Dataset, ...], trained: wb.Model, tmp_path: Path
) -> None:
    _, _, test = fraud
    path = trained.save(str(tmp_path / "models" / "fraud.wbm"))
    assert os.listdir(tmp_path / "models") == ["fraud.wbm"]  # no temporary file left
    loaded = wb.load_model(path)
    assert loaded.features == trained.features
    assert loaded.categories == trained.categories
    assert loaded.best_iteration == trained.best_iteration
    assert loaded.metrics == trained.metrics
    pd.testing.assert_frame_equal(loaded.history, trained.history, check_dtype=False)
    np.testing.assert_array_equal(
        _get(client, loaded.predict_proba(test, client=client)),
        _get(client, trained.predict_proba(test, client=client)),
    )
    manifest, files = archive.unpack(Path(path).read_bytes(), path)
    assert set(files) == {"model.ubj"}
    assert manifest["versions"]["xgboost"] == xgboost.__version__
    assert manifest["target"] == "is_fraud"
    # the booster is XGBoost's own format: plain xgboost reads it
    booster = xgboost.Booster()
    booster.load_model(bytearray(files["model.ubj"]))
    assert booster.num_boosted_rounds() == trained.estimator.num_boosted_rounds()


def test_killed_writer_leaves_the_previous_model(trained: wb.Model, tmp_path: Path) -> None:
    """SIGKILL a process in the middle of writing a large model: the old file stays whole."""
    path = tmp_path / "model.wbm"
    trained.save(str(path))
    before = path.read_bytes()
    script = (
        "import sys; from workbench.training import store\n"
        "store.write_atomic(sys.argv[1], b'x' * (1 << 31))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if temps and temps[0].stat().st_size > 1 << 20:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the writer never started writing")
        proc.kill()
    finally:
        proc.wait()
    assert path.read_bytes() == before
    assert wb.load_model(str(path)).metrics == trained.metrics


def test_feature_importance_and_repr(trained: wb.Model) -> None:
    imp = trained.feature_importance()
    assert set(imp.index) == set(trained.features)
    assert imp.iloc[0] > 0 and imp.is_monotonic_decreasing
    assert "xgboost binary target='is_fraud'" in repr(trained)
    html = trained._repr_html_()
    assert "Validation metric" in html and "auc" in html


def test_plots(trained: wb.Model) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = trained.plot_history()
    assert len(axes) == 2  # logloss and auc panels
    assert {t.get_text() for t in axes[1].get_legend().get_texts()} >= {"train", "valid"}
    ax = trained.plot_importance(top=5)
    assert len(ax.patches) == 5
    plt.close("all")


def _table(n: int, seed: int, labels: tuple[int, ...] = (2, 5, 7)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    color = rng.choice(["red", "green", "blue"], size=n)
    score = x[:, 0] + 2 * (color == "red") - x[:, 1]
    cls = np.digitize(score, [-0.5, 1.0])
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "d": x[:, 3],
            "color": color,
            "label": np.asarray(labels)[cls],
            "value": 3 * x[:, 0] - 2 * x[:, 1] + (color == "red") + 0.1 * rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    for i in range(4):
        _table(3000, i).to_parquet(folder / f"part-{i}.parquet")
    return folder


def test_multiclass_with_arbitrary_labels(client: Client, table_path: Path) -> None:
    ds = wb.load(
        table_path,
        target="label",
        features=["a", "b", "c", "d", "color"],
        categorical=["color"],
        task="multiclass",
        client=client,
    )
    train, test = ds.split((0.8, 0.2), seed=1)
    model = wb.train(train, test, rounds=30, client=client, progress=False)
    assert model.classes == [2, 5, 7]
    assert model.params["objective"] == "multi:softprob" and model.params["num_class"] == 3
    p = _get(client, model.predict_proba(test, client=client))
    y = _get(client, test.frame["label"]).to_numpy()
    assert p.shape == (len(y), 3)
    labels = _get(client, model.predict(test, client=client))
    assert set(np.unique(labels)) <= {2, 5, 7}
    got = model.evaluate(test, client=client)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["logloss"] == pytest.approx(skm.log_loss(y, p, labels=[2, 5, 7]), rel=1e-5)
    assert got["accuracy"] > 0.8


def test_regression_xgboost_and_linear(client: Client, table_path: Path) -> None:
    ds = wb.load(
        table_path,
        target="value",
        features=["a", "b", "c", "d", "color"],
        categorical=["color"],
        task="regression",
        client=client,
    )
    train, test = ds.split((0.8, 0.2), seed=1)
    y = _get(client, test.frame["value"]).to_numpy()
    for kind in ("xgboost", "linear"):
        model = wb.train(train, test, model=kind, rounds=50, client=client, progress=False)
        pred = _get(client, model.predict(test, client=client))
        got = model.evaluate(test, client=client)
        assert got["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-6)
        assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-6)
        assert got["r2"] > 0.9, kind


def test_linear_logistic_matches_its_own_model(
    client: Client, fraud: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    train, valid, test = fraud
    model = wb.train(train, valid, model="linear", client=client, progress=False)
    assert model.kind == "linear" and model.history.columns.tolist() == ["train-loss"]
    assert model.metrics["auc"] > 0.7
    loaded = wb.load_model(model.save(str(tmp_path / "linear.wbm")))
    np.testing.assert_allclose(
        _get(client, loaded.predict_proba(test, client=client)),
        _get(client, model.predict_proba(test, client=client)),
    )


def test_workers_stay_quiet(client: Client, fraud: tuple[wb.Dataset, ...], capfd) -> None:
    train, _, _ = fraud
    capfd.readouterr()
    wb.train(train, rounds=2, client=client, progress=False)
    out, err = capfd.readouterr()
    assert "got rank" not in out + err


# --- bad input ----------------------------------------------------------------------------


def test_bad_arguments_are_refused_before_anything_runs(
    client: Client, fraud: tuple[wb.Dataset, ...]
) -> None:
    train, _, _ = fraud
    with pytest.raises(ValueError, match=r"unknown model 'xgbost'.*did you mean 'xgboost'"):
        wb.train(train, model="xgbost", client=client)
    with pytest.raises(ValueError, match="max_dept"):
        wb.train(train, params={"max_dept": 3}, client=client)
    with pytest.raises(ValueError, match=r"XGBoost rejects.*max_depth"):
        wb.train(train, params={"max_depth": -2}, client=client)
    with pytest.raises(ValueError, match="rounds=0"):
        wb.train(train, rounds=0, client=client)
    with pytest.raises(ValueError, match="early_stopping needs a validation set"):
        wb.train(train, early_stopping=5, client=client)
    with pytest.raises(TypeError, match="workbench Dataset"):
        wb.train(train.frame, client=client)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model='linear' has no parameter"):
        wb.train(train, model="linear", params={"C": 1.0}, client=client)


def test_validation_columns_must_match(client: Client, fraud: tuple[wb.Dataset, ...]) -> None:
    train, valid, _ = fraud
    fewer = wb.Dataset(
        frame=valid.frame.drop(columns=["hour"]),
        target=valid.target,
        features={k: v for k, v in valid.features.items() if k != "hour"},
        task=valid.task,
        categories=valid.categories,
        source="fewer",
    )
    with pytest.raises(ValueError, match=r"missing from valid: \['hour'\]"):
        wb.train(train, fewer, client=client)


def test_one_class_target_is_refused(client: Client, table_path: Path) -> None:
    # load() refuses it at once; without the check, training does
    ds = wb.load(
        table_path,
        target="label",
        features=["a", "b"],
        task="multiclass",
        filters=[("label", "==", 2)],
        check=False,
        client=client,
    )
    with pytest.raises(ValueError, match="one class only"):
        wb.train(ds, client=client, progress=False)


def test_predicting_needs_the_features(
    client: Client, fraud: tuple[wb.Dataset, ...], trained: wb.Model
) -> None:
    _, _, test = fraud
    lacking = test.with_frame(test.frame.drop(columns=["amount"]))
    with pytest.raises(ValueError, match=r"lacks the feature\(s\) \['amount'\]"):
        trained.predict(lacking, client=client)
    with (
        pytest.raises(TypeError, match="regression model has no predict_proba")
        if False
        else (pytest.raises(ValueError, match="no target column"))
    ):
        trained.evaluate(test.with_frame(test.frame.drop(columns=["is_fraud"])), client=client)


def test_model_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model at"):
        wb.load_model(str(tmp_path / "nothing.wbm"))
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="not a workbench model"):
        wb.load_model(str(other))


def test_lightgbm_end_to_end(client: Client, fraud: tuple[wb.Dataset, ...], tmp_path: Path) -> None:
    train, valid, test = fraud
    with pytest.raises(ValueError, match="early_stopping is not available for model='lightgbm'"):
        wb.train(train, valid, model="lightgbm", early_stopping=5, client=client)
    with pytest.raises(ValueError, match="num_leavs"):
        wb.train(train, model="lightgbm", params={"num_leavs": 8}, client=client)
    model = wb.train(
        train,
        valid,
        model="lightgbm",
        rounds=40,
        params={"num_leaves": 15},
        client=client,
        progress=False,
    )
    assert model.kind == "lightgbm" and len(model.history) == 40
    assert model.metrics["auc"] > 0.75  # about 45 positives in valid: a constant scores 0.5
    y, p = _labels_and_scores(model, test, client)
    assert model.evaluate(test, client=client)["auc"] == pytest.approx(
        skm.roc_auc_score(y, p[:, 1]), abs=1e-9
    )
    loaded = wb.load_model(model.save(str(tmp_path / "lgbm.wbm")))
    np.testing.assert_allclose(_get(client, loaded.predict_proba(test, client=client)), p)
    assert loaded.feature_importance().index[0] in model.features


def test_train_without_a_client_starts_the_default_cluster(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import numpy as np, pandas as pd, workbench as wb\n"
        "if __name__ == '__main__':\n"
        "    rng = np.random.default_rng(0)\n"
        "    x = rng.normal(size=(2000, 3))\n"
        "    df = pd.DataFrame(x, columns=['a', 'b', 'c']).assign(y=(x[:, 0] > 0).astype(int))\n"
        f"    df.to_parquet({str(tmp_path / 'd.parquet')!r})\n"
        f"    ds = wb.load({str(tmp_path / 'd.parquet')!r}, target='y')\n"
        "    m = wb.train(ds, rounds=5, progress=False)\n"
        "    print('rounds', len(m.history))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "rounds 5" in out.stdout
    assert "starting the default local cluster" in out.stderr
    assert "got rank" not in out.stdout + out.stderr


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "demo", "--rows", "50000", "--out", "demo"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "test metrics:" in out.stdout and "auc" in out.stdout
    assert "dashboard: http://127.0.0.1:" in out.stdout
    model = wb.load_model(str(tmp_path / "demo" / "model.wbm"))
    assert model.kind == "xgboost" and model.metrics["auc"] > 0.8
    assert model.info["train_rows"] + model.info["valid_rows"] < 50000
    assert "got rank" not in out.stdout + out.stderr


def test_cli_train_and_predict(table_path: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    model_path = tmp_path / "m.wbm"
    result = runner.invoke(
        main,
        [
            "train",
            "--data",
            str(table_path),
            "--target",
            "value",
            "--categorical",
            "color",
            "--drop",
            "label",
            "--rounds",
            "20",
            "--param",
            "max_depth=3",
            "--out",
            str(model_path),
            "--no-progress",
            "--eval-train",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "valid rmse:" in result.output and "model saved to" in result.output
    model = wb.load_model(str(model_path))
    assert model.params["max_depth"] == 3 and model.task == "regression"
    assert list(model.history.columns) == ["train-mae", "train-rmse", "valid-mae", "valid-rmse"]

    out = tmp_path / "pred"
    result = runner.invoke(
        main, ["predict", "--model", str(model_path), "--data", str(table_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 12,000 predictions" in result.output
    pred = pd.read_parquet(out)
    assert list(pred.columns) == ["prediction"] and len(pred) == 12_000
    truth = pd.concat(pd.read_parquet(p) for p in sorted(table_path.iterdir()))["value"]
    assert np.corrcoef(pred["prediction"], truth)[0, 1] > 0.9  # rows in input order

    result = runner.invoke(
        main, ["predict", "--model", str(model_path), "--data", str(table_path), "--out", str(out)]
    )
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(main, ["train", "--data", str(table_path), "--out", "x.wbm"])
    assert result.exit_code == 2 and "--target is needed" in result.output
    result = runner.invoke(main, ["train", "--data", "fraud", "--drop", "amount", "--out", "x"])
    assert result.exit_code == 2 and "--drop apply with --target" in result.output


def test_a_worker_failure_names_the_worker_and_the_cause(client: Client) -> None:
    """Labels XGBoost rejects on the workers (bypassing wb.train's checks) -> one clear error."""
    import dask.array as da

    from workbench.training import failures

    X = da.random.random((2000, 4), chunks=500).astype("float32")
    y = (X[:, 0] * 3).astype("int32").astype("float32")  # classes 0, 1, 2 ...
    X, y = client.persist([X, y])
    with pytest.raises(xgboost.core.XGBoostError) as info, client.as_current():
        xgb.fit(  # ... but num_class=2
            client,
            X,
            y,
            task="multiclass",
            n_classes=2,
            feature_names=list("abcd"),
            categorical=[],
            params={},
            rounds=3,
        )
    error = failures.explain(client, "xgboost", info.value)
    assert isinstance(error, wb.TrainingError)
    text = str(error)
    assert text.startswith("xgboost training failed on worker")
    assert "label must be discrete values in the range of [0, num_class)" in text
    assert "Stack trace" not in text and "/__w/" not in text
    assert any(w in text for w in client.scheduler_info()["workers"])


def test_checkpoint_file_and_resume(
    client: Client, fraud: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    train, valid, _ = fraud
    path = tmp_path / "ckpt.wbm"
    first = wb.train(
        train,
        valid,
        rounds=12,
        params={"max_depth": 3},
        checkpoint_every=5,
        checkpoint_path=str(path),
        client=client,
        progress=False,
        eval_train=True,
    )
    saved = wb.load_model(str(path))  # the checkpoint of round 10
    assert saved.estimator.num_boosted_rounds() == 10
    assert len(saved.history) == 10
    pd.testing.assert_frame_equal(saved.history, first.history.iloc[:10], check_dtype=False)
    resumed = wb.train(
        train,
        valid,
        rounds=20,
        params={"max_depth": 3},
        resume=str(path),
        client=client,
        progress=False,
    )
    assert resumed.estimator.num_boosted_rounds() == 20
    assert len(resumed.history) == 20
    pd.testing.assert_frame_equal(
        resumed.history.iloc[:10], saved.history, check_dtype=False
    )  # the rounds before are kept, the rest trained on top
    # resumed without eval_train: the training curve stops at the checkpoint, the rest is NaN
    assert resumed.history["train-logloss"].iloc[10:].isna().all()
    assert not resumed.history["valid-logloss"].isna().any()
    assert resumed.metrics["logloss"] <= first.metrics["logloss"] + 1e-3


def test_early_stopping_state_carries_over_a_resume(
    client: Client, fraud: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    """A resumed training stops counting from the best round before, not from the restart."""
    from workbench.training.backends.xgboost import recovery

    train, valid, _ = fraud
    params = {"max_depth": 8, "eta": 1.0}  # overfits within a few rounds
    path = tmp_path / "es.wbm"
    first = wb.train(
        train,
        valid,
        rounds=12,
        params=params,
        checkpoint_every=12,
        checkpoint_path=str(path),
        client=client,
        progress=False,
    )
    history = {"valid": {"auc": first.history["valid-auc"].tolist()}}
    state = recovery.stopping_state(history, 12)
    assert state is not None and state.best_iteration == int(first.history["valid-auc"].idxmax())
    assert state.since_best == 11 - state.best_iteration
    patience = state.since_best + 3  # three more rounds without improvement end it
    resumed = wb.train(
        train,
        valid,
        rounds=200,
        params=params,
        early_stopping=patience,
        resume=str(path),
        client=client,
        progress=False,
    )
    new = resumed.history["valid-auc"].iloc[12:]
    if new.max() <= first.history["valid-auc"].max():  # no better round after the restart
        assert resumed.best_iteration == state.best_iteration
        assert len(resumed.history) == 12 + 3
    else:
        assert resumed.best_iteration >= 12


def test_the_dashboard_shows_the_training_under_its_name(client: Client, trained: wb.Model) -> None:
    spans = client.run_on_scheduler(span_prefixes)
    assert "fn" in spans["workbench-train-xgboost"]  # xgboost.dask's training tasks


def test_validation_columns_in_another_order_are_aligned(
    client: Client, fraud: tuple[wb.Dataset, ...], trained: wb.Model
) -> None:
    """The same features in another order: encoded in the training set's order."""
    train, valid, _ = fraud
    order = list(reversed(list(valid.features)))
    shuffled = wb.Dataset(
        frame=valid.frame[[*order, "is_fraud"]],
        target="is_fraud",
        features={c: valid.features[c] for c in order},
        task="binary",
        categories=valid.categories,
        source="reordered",
    )
    a = wb.train(train, valid, rounds=5, params={"max_depth": 3}, client=client, progress=False)
    b = wb.train(train, shuffled, rounds=5, params={"max_depth": 3}, client=client, progress=False)
    assert a.metrics == pytest.approx(b.metrics)


def test_the_tracker_listens_where_the_scheduler_does() -> None:
    """XGBoost's tracker is bound to the scheduler's IP, not the machine's outward interface."""
    assert xgb.tracker_host_ip("inproc://192.0.2.2/17/1") == "127.0.0.1"  # one process: loopback
    assert xgb.tracker_host_ip("tcp://127.0.0.1:8786") == "127.0.0.1"
    assert xgb.tracker_host_ip("tls://10.1.2.3:8786") == "10.1.2.3"
    assert xgb.tracker_host_ip("tls://[::1]:8786") == "::1"
    assert xgb.tracker_host_ip("tls://scheduler:8786") is None  # a host name: XGBoost's choice
    with dask.config.set({"xgboost.scheduler_address": "10.0.0.9"}):
        assert xgb.tracker_host_ip("tcp://127.0.0.1:8786") is None  # the user's own setting wins


def test_on_round_sees_each_round_and_can_stop_the_training(
    client: Client, fraud: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = fraud
    seen: list[tuple[int, float]] = []

    def hook(r: int, metrics: dict[str, dict[str, float]]) -> bool:
        seen.append((r, metrics["valid"]["auc"]))
        return r >= 4  # stop after round 4 (a few more may run before the stop arrives)

    model = wb.train(
        train, valid, rounds=200, params={"max_depth": 3}, client=client, progress=False,
        on_round=hook,
    )  # fmt: skip
    assert model.info["stopped_by"] == "on_round"
    assert [r for r, _ in seen][:5] == [0, 1, 2, 3, 4]
    assert 5 <= len(model.history) < 200
    # the hook saw the metrics that the history keeps
    for r, auc in seen:
        assert model.history["valid-auc"].iloc[r] == pytest.approx(auc)


def test_an_error_in_on_round_stops_the_training_and_is_raised(
    client: Client, fraud: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = fraud

    def hook(r: int, metrics: dict[str, dict[str, float]]) -> bool:
        raise RuntimeError(f"hook failed at round {r}")

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="hook failed at round 0"):
        wb.train(train, valid, rounds=5000, client=client, progress=False, on_round=hook)
    assert time.perf_counter() - start < 120  # stopped, not 5000 rounds


def test_on_round_is_refused_where_the_model_cannot_stop(
    client: Client, fraud: tuple[wb.Dataset, ...]
) -> None:
    train, valid, _ = fraud
    with pytest.raises(ValueError, match="on_round is for models that stop on request"):
        wb.train(train, valid, model="linear", client=client, on_round=lambda r, m: False)
    with pytest.raises(TypeError, match="on_round must be a function"):
        wb.train(train, valid, client=client, on_round=3)  # type: ignore[arg-type]
