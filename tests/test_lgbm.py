"""workbench.training.lgbm on a real two-worker cluster bound to 127.0.0.1."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import dask.array as da
import lightgbm
import numpy as np
import pytest
from distributed import Client, wait
from sklearn.metrics import log_loss, r2_score, roc_auc_score

from workbench.training import progress
from workbench.training.backends.lightgbm import train as lgbm

ROUNDS = 12
BLOCKS = 4
NAMES = ["x0", "x1", "x2", "x3", "x4", "shop"]
CATEGORICAL = [5]


@pytest.fixture(scope="module")
def client(tcp_client: Client) -> Client:
    """Workers on tcp://127.0.0.1, so that LightGBM's machines list is 127.0.0.1."""
    return tcp_client


def make(task: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Five numeric columns and a categorical one (codes 0..5 as floats, some NaN)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    codes = rng.integers(0, 6, n).astype(np.float64)
    effect = np.array([-1.5, 0.0, 1.0, 2.0, -2.0, 0.5])[codes.astype(int)]
    codes[rng.random(n) < 0.05] = np.nan
    X[:, 5] = codes
    if task == "binary":
        logit = 2 * X[:, 0] - 1.5 * X[:, 1] + effect
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    elif task == "multiclass":
        scores = np.stack([2 * X[:, 0], 2 * X[:, 1] + effect, -X[:, 0] - X[:, 1]], axis=1)
        y = np.argmax(scores + rng.gumbel(size=scores.shape) * 0.5, axis=1).astype(np.float64)
    else:
        y = 3 * X[:, 0] + X[:, 1] ** 2 + effect + rng.normal(scale=0.5, size=n)
    return X, y


def spread(client: Client, arr: np.ndarray, blocks: int = BLOCKS) -> da.Array:
    """``arr`` persisted in ``blocks`` row blocks, placed on the workers in turn."""
    workers = sorted(client.nthreads())
    x = da.from_array(arr, chunks=(math.ceil(len(arr) / blocks), *arr.shape[1:]))
    pieces = [
        client.persist(x.blocks[i], workers=[workers[i % len(workers)]], allow_other_workers=False)
        for i in range(x.numblocks[0])
    ]
    out = client.persist(da.concatenate(pieces))
    with client.as_current():
        wait(out)
    return out


def holders(client: Client, x: da.Array) -> list[str]:
    """The worker of each block of ``x``, in block order."""
    who = client.who_has(x)
    return [next(iter(who[k])) for k in da.core.flatten(x.__dask_keys__())]


def compute(client: Client, x: da.Array) -> np.ndarray:
    return np.asarray(client.compute(x).result())


def events(client: Client, topic: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The messages of ``topic`` once ``n`` have arrived (and a moment for any extra)."""
    deadline = time.monotonic() + timeout
    while len(client.get_events(topic)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return [msg for _, msg in client.get_events(topic)]


@pytest.fixture(scope="module")
def binary(client: Client) -> dict[str, Any]:
    X, y = make("binary", 3000, seed=1)
    Xv, yv = make("binary", 800, seed=2)
    Xt, yt = make("binary", 2000, seed=3)
    dX, dy, dXv, dyv = (spread(client, a) for a in (X, y, Xv, yv))
    workers = sorted(client.nthreads())
    assert holders(client, dX) == [workers[i % 2] for i in range(BLOCKS)]
    assert holders(client, dXv) == holders(client, dX)
    topic = progress.new_topic()
    result = lgbm.fit(
        client,
        dX,
        dy,
        task="binary",
        n_classes=2,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        params={"eta": 0.2, "num_leaves": 15},
        rounds=ROUNDS,
        valid=(dXv, dyv),
        topic=topic,
        eval_train=True,  # the training curve too
    )
    return {
        "result": result,
        "topic": topic,
        "train": (X, y),
        "valid": (Xv, yv),
        "test": (Xt, yt),
        "dask_valid": dXv,
    }


# --- parameters -----------------------------------------------------------------------
def test_default_params() -> None:
    assert lgbm.default_params("binary", None) == {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "verbose": -1,
    }
    multi = lgbm.default_params("multiclass", 4)
    assert multi["objective"] == "multiclass"
    assert multi["num_class"] == 4
    assert multi["metric"] == ["multi_logloss", "multi_error"]
    assert lgbm.default_params("regression", None)["metric"] == ["l2", "l1"]
    with pytest.raises(ValueError, match="'ranking'"):
        lgbm.default_params("ranking", None)
    with pytest.raises(ValueError, match="n_classes=None"):
        lgbm.default_params("multiclass", None)


def test_check_params_uses_lightgbm_names() -> None:
    checked = lgbm.check_params({"eta": 0.2, "num_leaves": 7, "subsample": 0.8, "verbose": 1})
    assert checked == {
        "learning_rate": 0.2,
        "num_leaves": 7,
        "bagging_fraction": 0.8,
        "verbosity": 1,
    }
    assert lgbm.check_params(None) == {}
    # parameters with no alias are known too (the list comes from LightGBM itself)
    assert lgbm.check_params({"linear_lambda": 0.1}) == {"linear_lambda": 0.1}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"num_leafs": 7}, r"no parameter 'num_leafs' \(did you mean 'num_leaves'\?\)"),
        ({"class_weight": "balanced"}, "no parameter 'class_weight'"),
        ({"eta": 0.1, "learning_rate": 0.2}, "'learning_rate' twice, as 'eta' and"),
        ({"n_estimators": 10}, "rounds="),
        ({"early_stopping_rounds": 5}, "early stopping"),
        ({"nthread": 4}, "threads_per_worker"),
        ({"categorical_column": [1]}, "categorical columns"),
        ({"device": "gpu"}, "model='xgboost'"),
        ({"tree_learner": "serial"}, "'serial'"),
    ],
)
def test_check_params_rejects(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lgbm.check_params(params)


def test_check_params_types() -> None:
    with pytest.raises(TypeError, match="dict"):
        lgbm.check_params([("eta", 0.1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="custom objective"):
        lgbm.check_params({"objective": lambda y, p: (y, p)})


# --- training -------------------------------------------------------------------------
def test_binary_beats_baseline_and_predicts_like_the_booster(
    client: Client, binary: dict[str, Any]
) -> None:
    result = binary["result"]
    assert isinstance(result.booster, lightgbm.Booster)
    assert result.best_iteration is None
    assert result.booster.current_iteration() == ROUNDS
    Xt, yt = binary["test"]
    lazy = lgbm.predict(client, result.booster, spread(client, Xt), "binary")
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (len(Xt),)
    got = compute(client, lazy)
    assert got.shape == (len(Xt),)
    np.testing.assert_allclose(got, result.booster.predict(Xt), rtol=0, atol=1e-6)
    assert roc_auc_score(yt, got) > 0.8  # a constant scores 0.5


def test_binary_history_and_progress(client: Client, binary: dict[str, Any]) -> None:
    history = binary["result"].history
    assert set(history) == {"train", "valid"}
    for data in ("train", "valid"):
        assert set(history[data]) == {"binary_logloss", "auc"}
        assert all(len(v) == ROUNDS for v in history[data].values())
    assert history["train"]["binary_logloss"][-1] < history["train"]["binary_logloss"][0]
    # one report per round, from one worker, carrying the same metrics as the history
    msgs = events(client, binary["topic"], ROUNDS)
    assert sorted(m["round"] for m in msgs) == list(range(ROUNDS))
    for m in msgs:
        r = m["round"]
        assert m["metrics"]["valid"]["auc"] == history["valid"]["auc"][r]
        assert m["metrics"]["train"]["binary_logloss"] == history["train"]["binary_logloss"][r]


def test_lightgbm_linked_the_workers_on_127_0_0_1(binary: dict[str, Any]) -> None:
    text = binary["result"].booster.model_to_string()
    params = dict(
        line.strip("[]").split(": ", 1)
        for line in text.splitlines()
        if line.startswith("[") and ": " in line
    )
    assert params["num_machines"] == "2"
    machines = params["machines"].split(",")
    assert len(machines) == 2
    assert all(m.split(":")[0] == "127.0.0.1" for m in machines)
    assert len({m.split(":")[1] for m in machines}) == 2  # a port of its own for each worker


def test_valid_metrics_are_one_workers_share(client: Client, binary: dict[str, Any]) -> None:
    """LightGBM evaluates on each worker's own rows: the history is rank 0's share of valid.

    Validation block j travels with training block j, so each worker holds blocks j, j + 2.
    Should LightGBM come to reduce metrics across workers (upstream pull request #7290), this
    fails: then early stopping can be offered for model="lightgbm".
    """
    booster = binary["result"].booster
    Xv, yv = binary["valid"]
    reported = binary["result"].history["valid"]["binary_logloss"][-1]
    p = booster.predict(Xv)
    whole = log_loss(yv, p)
    size = math.ceil(len(Xv) / BLOCKS)
    block = np.arange(len(Xv)) // size
    shares = [log_loss(yv[block % 2 == w], p[block % 2 == w]) for w in (0, 1)]
    assert min(abs(reported - s) for s in shares) < 1e-6 * reported
    assert abs(reported - whole) > 1e-4


def test_bytes_round_trip(binary: dict[str, Any]) -> None:
    booster = binary["result"].booster
    data = lgbm.to_bytes(booster)
    assert isinstance(data, bytes)
    again = lgbm.from_bytes(data)
    Xt, _ = binary["test"]
    assert np.array_equal(again.predict(Xt), booster.predict(Xt))
    with pytest.raises(TypeError, match="bytes"):
        lgbm.from_bytes(data.decode())  # type: ignore[arg-type]


def test_importance(binary: dict[str, Any]) -> None:
    gains = lgbm.importance(binary["result"].booster, NAMES)
    assert list(gains) == NAMES
    assert all(v >= 0 for v in gains.values())
    assert max(gains, key=gains.__getitem__) == "x0"
    assert gains["shop"] > gains["x4"]  # the categorical column carries signal
    with pytest.raises(ValueError, match="5 names"):
        lgbm.importance(binary["result"].booster, NAMES[:5])


def test_multiclass(client: Client) -> None:
    X, y = make("multiclass", 3000, seed=4)
    Xt, yt = make("multiclass", 1500, seed=5)
    result = lgbm.fit(
        client,
        spread(client, X),
        spread(client, y),
        task="multiclass",
        n_classes=3,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        params=None,
        rounds=ROUNDS,
        eval_train=True,
    )
    assert set(result.history) == {"train"}
    assert set(result.history["train"]) == {"multi_logloss", "multi_error"}
    assert all(len(v) == ROUNDS for v in result.history["train"].values())
    got = compute(client, lgbm.predict(client, result.booster, spread(client, Xt), "multiclass"))
    assert got.shape == (len(Xt), 3)
    np.testing.assert_allclose(got, result.booster.predict(Xt), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)
    baseline = np.bincount(yt.astype(int)).max() / len(yt)
    assert (got.argmax(axis=1) == yt).mean() > baseline + 0.2


def test_a_worker_without_some_class(client: Client) -> None:
    """Labels are used as given: a worker whose rows lack a class trains the same model."""
    X, y = make("multiclass", 2000, seed=11)
    block = np.arange(len(y)) // (len(y) // BLOCKS)
    y[(block % 2 == 0) & (y == 2)] = 0  # the first worker's blocks hold classes 0 and 1 only
    dy = spread(client, y)
    assert not (compute(client, dy.blocks[0]) == 2).any()
    result = lgbm.fit(
        client,
        spread(client, X),
        dy,
        task="multiclass",
        n_classes=3,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        params=None,
        rounds=3,
    )
    assert result.booster.num_model_per_iteration() == 3


def test_regression_quietly(
    client: Client, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    X, y = make("regression", 3000, seed=6)
    Xt, yt = make("regression", 1500, seed=7)
    dX, dy = spread(client, X), spread(client, y)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG, logger="workbench.lightgbm")
    result = lgbm.fit(
        client,
        dX,
        dy,
        task="regression",
        n_classes=None,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        params={"min_data_in_leaf": 10},
        rounds=ROUNDS,
    )
    assert result.history == {} and result.rounds == ROUNDS  # nothing asked, nothing evaluated
    out, err = capfd.readouterr()
    chatter = [line for line in (out + err).splitlines() if "LightGBM" in line or "ports" in line]
    # LightGBM's listener thread logs at its own level; nothing else gets through
    assert set(chatter) <= {"[LightGBM] [Info] Listening..."}, chatter
    assert any("Finding random open ports" in r.getMessage() for r in caplog.records)
    got = compute(client, lgbm.predict(client, result.booster, spread(client, Xt), "regression"))
    assert got.shape == (len(Xt),)
    np.testing.assert_allclose(got, result.booster.predict(Xt), rtol=0, atol=1e-6)
    assert r2_score(yt, got) > 0.5


def test_a_small_valid_set_is_shared_out(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    """Validation rows in fewer blocks than X: every worker still gets some to evaluate."""
    X, y = make("regression", 2000, seed=9)
    Xv, yv = make("regression", 40, seed=10)
    caplog.set_level(logging.DEBUG, logger="workbench.lightgbm")
    args: dict[str, Any] = {
        "task": "regression",
        "n_classes": None,
        "feature_names": NAMES,
        "categorical": CATEGORICAL,
        "params": None,
        "rounds": 3,
    }
    dX, dy = spread(client, X), spread(client, y)
    valid = (da.from_array(Xv, chunks=(40, 6)), da.from_array(yv, chunks=40))
    result = lgbm.fit(client, dX, dy, valid=valid, **args)
    assert all(len(v) == 3 for v in result.history["valid"].values())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    tiny = (da.from_array(Xv[:3], chunks=(3, 6)), da.from_array(yv[:3], chunks=3))
    with pytest.raises(ValueError, match="3 rows, fewer than the 4 row blocks"):
        lgbm.fit(client, dX, dy, valid=tiny, **args)


# --- mistakes and failures ------------------------------------------------------------
def test_early_stopping_is_refused(client: Client, binary: dict[str, Any]) -> None:
    X, y = binary["train"]
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"early_stopping=5 .*model='xgboost'"):
        lgbm.fit(
            client,
            spread(client, X),
            spread(client, y),
            task="binary",
            n_classes=2,
            feature_names=NAMES,
            categorical=CATEGORICAL,
            params=None,
            rounds=ROUNDS,
            valid=(binary["dask_valid"], spread(client, binary["valid"][1])),
            early_stopping=5,
        )
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"params": {"num_leavs": 3}}, ValueError, "did you mean 'num_leaves'"),
        ({"params": {"num_leaves": 1}}, ValueError, "LightGBM rejects"),
        ({"rounds": 0}, ValueError, "rounds=0"),
        ({"task": "ranking"}, ValueError, "'ranking'"),
        ({"feature_names": NAMES[:5]}, ValueError, "one string per column"),
        ({"feature_names": [*NAMES[:5], "a:b"]}, ValueError, r"rename \['a:b'\]"),
        ({"categorical": [6]}, ValueError, "6 is not a column index"),
    ],
)
def test_bad_arguments(
    client: Client, binary: dict[str, Any], change: dict[str, Any], error: type, match: str
) -> None:
    X, y = binary["train"]
    args: dict[str, Any] = {
        "task": "binary",
        "n_classes": 2,
        "feature_names": NAMES,
        "categorical": CATEGORICAL,
        "params": None,
        "rounds": 3,
        **change,
    }
    with pytest.raises(error, match=match):
        lgbm.fit(client, da.from_array(X, chunks=1000), da.from_array(y, chunks=1000), **args)


def test_numpy_is_refused(client: Client, binary: dict[str, Any]) -> None:
    X, y = binary["train"]
    with pytest.raises(TypeError, match="X must be a Dask array, not ndarray"):
        lgbm.fit(
            client,
            X,
            da.from_array(y),
            task="binary",
            n_classes=2,
            feature_names=NAMES,
            categorical=CATEGORICAL,
            params=None,
            rounds=3,
        )


def test_a_worker_error_reaches_the_caller_readably(client: Client) -> None:
    """Labels out of range on every worker: each fails alike, the caller sees LightGBM's word."""
    X, y = make("multiclass", 2000, seed=8)
    y[::500] = 3  # not a class index for 3 classes, in every block
    with pytest.raises(lightgbm.basic.LightGBMError, match=r"Label must be in \[0, 3\)"):
        lgbm.fit(
            client,
            spread(client, X),
            spread(client, y),
            task="multiclass",
            n_classes=3,
            feature_names=NAMES,
            categorical=CATEGORICAL,
            params=None,
            rounds=3,
        )
    assert not lgbm._runs  # nothing left behind on the workers
    deadline = time.monotonic() + 10
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(client.processing().values())  # no worker is left waiting for another


def test_predict_checks(client: Client, binary: dict[str, Any]) -> None:
    booster = binary["result"].booster
    X, _ = binary["test"]
    with pytest.raises(ValueError, match="5 feature columns"):
        lgbm.predict(client, booster, da.from_array(X[:, :5], chunks=500), "binary")
    with pytest.raises(ValueError, match="'ranking'"):
        lgbm.predict(client, booster, da.from_array(X, chunks=500), "ranking")
    empty = compute(client, lgbm.predict(client, booster, da.from_array(X[:0], chunks=1), "binary"))
    assert empty.shape == (0,)
