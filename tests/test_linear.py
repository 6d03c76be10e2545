"""The distributed linear models against scikit-learn, on a real in-process cluster."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client
from sklearn.linear_model import LogisticRegression, Ridge

from workbench.training.backends.linear.solver import LinearModel, _newton, fit

N = 600
CAT = {2: 4}  # column 2 holds codes 0..3 (plus NaN and an unknown code 7)
CHUNKINGS = [(600,), (100, 37, 263, 200), (1, 299, 300)]
UNEVEN = CHUNKINGS[1:]


def make_data(n: int = N, seed: int = 0, k: int = 3) -> dict[str, np.ndarray]:
    """Numeric columns on different scales with NaNs; column 2 categorical."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * [1, 3, 1, 0.5, 10] + [0, 5, 0, -2, 100]
    X[:, 2] = rng.integers(0, 4, n)
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.05, 4] = np.nan
    X[rng.random(n) < 0.05, 2] = np.nan
    X[rng.random(n) < 0.05, 2] = 7  # an unknown level
    centred = np.nan_to_num(X[:, [0, 1, 3, 4]] - [0, 5, -2, 100])
    eta = centred @ [1.0, -0.5, 2.0, 0.05] + 1.5 * (X[:, 2] == 1) - 0.8 * (X[:, 2] == 3)
    cuts = np.quantile(eta, np.linspace(0, 1, k + 1)[1:-1])
    return {
        "X": X,
        "regression": eta + rng.normal(size=n),
        "binary": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.float64),
        "multiclass": np.digitize(eta + rng.logistic(size=n), cuts).astype(np.float64),
    }


DATA = make_data()


def arrays(chunks: tuple[int, ...], y: np.ndarray, X: np.ndarray | None = None) -> tuple[Any, Any]:
    X = DATA["X"] if X is None else X
    return da.from_array(X, chunks=(chunks, X.shape[1])), da.from_array(y, chunks=(chunks,))


def run(client: Client, x: Any) -> np.ndarray:
    return np.asarray(client.compute(x, sync=True))


# --- agreement with scikit-learn ---------------------------------------------------------------
@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_ridge_matches_sklearn(client: Client, chunks: tuple[int, ...]) -> None:
    y = DATA["regression"]
    X, yd = arrays(chunks, y)
    calls: list[tuple[int, dict[str, float]]] = []
    model = fit(
        X,
        yd,
        task="regression",
        categorical=CAT,
        l2=3.0,
        client=client,
        on_iteration=lambda i, d: calls.append((i, d)),
    )
    # the standardisation comes from the training data, NaN-aware, population std
    numeric = DATA["X"][:, [0, 1, 3, 4]]
    np.testing.assert_allclose(model.mean, np.nanmean(numeric, axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.scale, np.nanstd(numeric, axis=0), rtol=1e-12)

    D = model.design(DATA["X"])
    sk = Ridge(alpha=3.0).fit(D, y)
    np.testing.assert_allclose(model.coef, sk.coef_, rtol=1e-6, atol=1e-8)
    assert model.intercept == pytest.approx(float(sk.intercept_), rel=1e-8)
    np.testing.assert_allclose(run(client, model.predict(X)), sk.predict(D), atol=1e-8)

    assert model.iterations == 1
    [(i, info)] = calls
    sse = float(((y - sk.predict(D)) ** 2).sum())
    assert i == 1
    assert info["loss"] == pytest.approx((sse + 3.0 * float(sk.coef_ @ sk.coef_)) / N, rel=1e-8)


@pytest.mark.parametrize("chunks", UNEVEN)
def test_binary_matches_sklearn(client: Client, chunks: tuple[int, ...]) -> None:
    y = DATA["binary"]
    X, yd = arrays(chunks, y)
    losses: list[float] = []
    model = fit(
        X,
        yd,
        task="binary",
        categorical=CAT,
        l2=2.0,
        client=client,
        on_iteration=lambda i, d: losses.append(d["loss"]),
    )
    D = model.design(DATA["X"])
    sk = LogisticRegression(C=1 / 2.0, tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    sk.fit(D, y)
    np.testing.assert_allclose(model.coef, sk.coef_[0], rtol=1e-6, atol=1e-7)
    assert model.intercept == pytest.approx(float(sk.intercept_[0]), abs=1e-7)
    proba = run(client, model.predict(X))
    assert proba.shape == (N,)
    np.testing.assert_allclose(proba, sk.predict_proba(D)[:, 1], atol=1e-7)

    if chunks == UNEVEN[0]:
        # lbfgs, scikit-learn's default solver, reaches the same optimum less exactly
        lbfgs = LogisticRegression(C=1 / 2.0, tol=1e-10, max_iter=10_000).fit(D, y)
        np.testing.assert_allclose(model.coef, lbfgs.coef_[0], rtol=1e-4, atol=1e-5)

    assert len(losses) == model.iterations <= 10
    assert all(b <= a for a, b in itertools.pairwise(losses))


@pytest.mark.parametrize("chunks", UNEVEN)
def test_multiclass_matches_sklearn(client: Client, chunks: tuple[int, ...]) -> None:
    y = DATA["multiclass"]
    X, yd = arrays(chunks, y)
    model = fit(X, yd, task="multiclass", categorical=CAT, l2=1.5, client=client)
    assert model.n_classes == 3
    assert model.coef.shape == (3, model.n_design)
    D = model.design(DATA["X"])
    sk = LogisticRegression(C=1 / 1.5, tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    sk.fit(D, y)
    proba = run(client, model.predict(X))
    assert proba.shape == (N, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba, sk.predict_proba(D), atol=1e-7)
    # the symmetric parametrisation: every weight penalised, so the class weights sum to 0,
    # and the (unpenalised) intercepts are centred
    np.testing.assert_allclose(model.coef, sk.coef_, atol=1e-6)
    np.testing.assert_allclose(model.coef.sum(axis=0), 0.0, atol=1e-9)
    intercept = np.asarray(model.intercept)
    np.testing.assert_allclose(intercept, sk.intercept_ - sk.intercept_.mean(), atol=1e-6)
    assert abs(intercept.sum()) < 1e-9

    if chunks == UNEVEN[0]:
        lbfgs = LogisticRegression(C=1 / 1.5, tol=1e-10, max_iter=10_000).fit(D, y)
        np.testing.assert_allclose(proba, lbfgs.predict_proba(D), atol=1e-4)


def test_multiclass_infers_n_classes_and_takes_int_labels(client: Client) -> None:
    y = DATA["multiclass"].astype(np.int64)
    X, yd = arrays((300, 300), y)
    model = fit(X, yd, task="multiclass", categorical=CAT, client=client)
    assert model.n_classes == 3
    sk = LogisticRegression(tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    sk.fit(model.design(DATA["X"]), y)
    np.testing.assert_allclose(model.coef, sk.coef_, atol=1e-6)


# --- the design --------------------------------------------------------------------------------
def test_design_layout() -> None:
    model = LinearModel(
        task="regression",
        n_features=4,
        categorical={1: 3},
        mean=np.array([1.0, 10.0, 0.0]),
        scale=np.array([2.0, 5.0, 1.0]),
        coef=np.arange(6, dtype=np.float64),
        intercept=0.5,
        l2=1.0,
        iterations=1,
    )
    X = np.array(
        [
            [3.0, 0.0, 20.0, 1.0],
            [np.nan, 2.0, np.nan, -1.0],
            [1.0, np.nan, 10.0, 0.0],
            [1.0, 3.0, 10.0, 0.0],  # code 3 is outside 0..2
            [1.0, 1.5, 10.0, 0.0],  # not an integer code
        ]
    )
    expected = np.array(
        [
            [1.0, 1, 0, 0, 2.0, 1.0],
            [0.0, 0, 0, 1, 0.0, -1.0],
            [0.0, 0, 0, 0, 0.0, 0.0],
            [0.0, 0, 0, 0, 0.0, 0.0],
            [0.0, 0, 0, 0, 0.0, 0.0],
        ]
    )
    D = model.design(X)
    np.testing.assert_array_equal(D, expected)
    assert D.dtype == np.float64
    assert model.design(X.astype(np.float32)).dtype == np.float32
    assert model.n_design == 6
    importance = model.feature_importance(["a", "b", "c", "d"])
    assert importance == {"a": 0.0, "b": 1 + 2 + 3, "c": 4.0, "d": 5.0}
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        model.design(X[:, :3])
    with pytest.raises(ValueError, match="needs 4 names"):
        model.feature_importance(["a"])


def test_constant_and_empty_columns_get_scale_one(client: Client) -> None:
    X = DATA["X"].copy()
    X[:, 1] = 4.2
    X[:, 3] = np.nan
    Xd, yd = arrays((250, 350), DATA["regression"], X=X)
    model = fit(Xd, yd, task="regression", categorical=CAT, client=client)
    assert model.scale[1] == 1.0 and model.scale[2] == 1.0
    assert model.mean[1] == pytest.approx(4.2) and model.mean[2] == 0.0
    D = model.design(X)
    np.testing.assert_allclose(D[:, [1, 6]], 0.0, atol=1e-12)
    assert np.isfinite(run(client, model.predict(Xd))).all()


# --- serialisation, inputs, the default scheduler ----------------------------------------------
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_round_trip_predicts_identically(client: Client, task: str) -> None:
    X, y = arrays((200, 400), DATA[task])
    model = fit(X, y, task=task, categorical=CAT, l2=0.7, client=client)
    again = LinearModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.to_dict() == model.to_dict()
    assert repr(again) == repr(model)
    np.testing.assert_array_equal(run(client, again.predict(X)), run(client, model.predict(X)))
    names = ["a", "b", "c", "d", "e"]
    assert again.feature_importance(names) == model.feature_importance(names)


def test_float32_column_chunks_and_mismatched_y_chunks(client: Client) -> None:
    y = DATA["binary"]
    X32 = da.from_array(DATA["X"].astype(np.float32), chunks=((150, 450), (2, 3)))
    model = fit(X32, da.from_array(y, chunks=100), task="binary", categorical=CAT, client=client)
    D = model.design(DATA["X"])  # float64, with the float32 data's statistics
    sk = LogisticRegression(tol=1e-10, max_iter=10_000, solver="newton-cholesky").fit(D, y)
    np.testing.assert_allclose(model.coef, sk.coef_[0], atol=1e-5)
    proba = model.predict(X32)
    assert proba.dtype == np.float32
    assert proba.chunks == ((150, 450),)
    np.testing.assert_allclose(run(client, proba), sk.predict_proba(D)[:, 1], atol=1e-5)


def test_default_scheduler_without_a_client() -> None:
    X, y = arrays((300, 300), DATA["regression"])
    with dask.config.set(scheduler="sync"):
        model = fit(X, y, task="regression", categorical=CAT)
        pred = model.predict(X).compute()
    sk = Ridge(alpha=1.0).fit(model.design(DATA["X"]), DATA["regression"])
    np.testing.assert_allclose(pred, sk.predict(model.design(DATA["X"])), atol=1e-8)


def test_no_convergence_logs_a_warning(client: Client) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.WARNING)
    logger = logging.getLogger("workbench")
    logger.addHandler(handler)
    try:
        X, y = arrays((300, 300), DATA["multiclass"])
        model = fit(X, y, task="multiclass", categorical=CAT, max_iter=2, client=client)
    finally:
        logger.removeHandler(handler)
    assert model.iterations == 2
    [record] = [r for r in records if r.levelno == logging.WARNING]
    assert "did not converge in 2 iterations" in record.getMessage()
    assert "max_iter" in record.getMessage()


# --- bad inputs --------------------------------------------------------------------------------
def _bad(kind: str) -> tuple[Any, Any, dict[str, Any]]:
    X, y = arrays((300, 300), DATA["binary"])
    ymc = DATA["multiclass"].copy()
    if kind == "X 1-D":
        return X[:, 0], y, {}
    if kind == "y length":
        return X, y[:500], {}
    if kind == "y NaN":
        yy = DATA["regression"].copy()
        yy[[3, 400]] = np.nan
        return X, da.from_array(yy, chunks=300), {"task": "regression"}
    if kind == "y inf":
        yy = DATA["binary"].copy()
        yy[10] = np.inf
        return X, da.from_array(yy, chunks=300), {}
    if kind == "class too big":
        ymc[5] = 3
        return X, da.from_array(ymc, chunks=300), {"task": "multiclass", "n_classes": 3}
    if kind == "class not integer":
        yy = DATA["binary"].copy()
        yy[7] = 0.5
        return X, da.from_array(yy, chunks=300), {}
    if kind == "one class":
        return X, da.zeros(N, chunks=300), {}
    if kind == "class missing":
        return X, da.from_array(ymc * 2, chunks=300), {"task": "multiclass"}
    if kind == "n_classes 1":
        return X, da.from_array(ymc, chunks=300), {"task": "multiclass", "n_classes": 1}
    if kind == "l2 0 logistic":
        return X, y, {"l2": 0.0}
    if kind == "l2 negative ridge":
        return X, y, {"task": "regression", "l2": -1.0}
    if kind == "unknown task":
        return X, y, {"task": "poisson"}
    if kind == "zero rows":
        return X[:0], y[:0], {}
    if kind == "categorical column":
        return X, y, {"categorical": {5: 3}}
    if kind == "X inf":
        XX = DATA["X"].copy()
        XX[4, 1] = -np.inf
        return da.from_array(XX, chunks=(300, 5)), y, {}
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("X 1-D", r"X must be 2-D .*shape \(600,\)"),
        ("y length", r"X has shape \(600, 5\) but y has shape \(500,\)"),
        ("y NaN", "y holds 2 NaN or infinite values"),
        ("y inf", "y holds 1 NaN or infinite values"),
        ("class too big", r"class indices 0..2; 1 values do not \(for example 3.0\)"),
        ("class not integer", r"class indices 0..1; 1 values do not \(for example 0.5\)"),
        ("one class", r"fewer than 2 classes \(found: 0\)"),
        ("class missing", r"classes \[1, 3\] of 0..4 have no rows"),
        ("n_classes 1", "n_classes=1: a classifier needs at least 2 classes"),
        ("l2 0 logistic", "l2=0.0 must be > 0 for logistic"),
        ("l2 negative ridge", "l2=-1.0 must be >= 0 for ridge"),
        ("unknown task", "task='poisson' is not one of"),
        ("zero rows", "no rows"),
        ("categorical column", "categorical column 5 is outside X's 5 columns"),
        ("X inf", "X holds 1 infinite values"),
    ],
)
def test_bad_inputs(client: Client, kind: str, message: str) -> None:
    X, y, options = _bad(kind)
    options = {"task": "binary", "categorical": CAT, **options}
    with pytest.raises(ValueError, match=message):
        fit(X, y, client=client, **options)


def test_bad_types(client: Client) -> None:
    X, y = arrays((600,), DATA["binary"])
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        fit(DATA["X"], y, task="binary", client=client)
    model = fit(X, y, task="binary", client=client)
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        model.predict(DATA["X"])
    with pytest.raises(ValueError, match="needs 2-D X with 5 columns"):
        model.predict(X[:, :4])
    with pytest.raises(ValueError, match="lacks 'coef'"):
        LinearModel.from_dict({k: v for k, v in model.to_dict().items() if k != "coef"})


def test_unknown_chunk_sizes(client: Client) -> None:
    X, y = arrays((250, 350), DATA["binary"])
    keep = da.from_array(np.arange(N) % 7 != 0, chunks=((250, 350),))
    Xu, yu = X[keep], y[keep]
    assert np.isnan(Xu.shape[0])
    model = fit(Xu, yu, task="binary", categorical=CAT, client=client)
    mask = np.arange(N) % 7 != 0
    D = model.design(DATA["X"][mask])
    sk = LogisticRegression(tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    sk.fit(D, DATA["binary"][mask])
    np.testing.assert_allclose(model.coef, sk.coef_[0], atol=1e-6)
    np.testing.assert_allclose(run(client, model.predict(Xu)), sk.predict_proba(D)[:, 1], atol=1e-6)


def test_step_halving_when_a_full_newton_step_overshoots() -> None:
    # sum(sqrt(1 + t**2)): a full Newton step from |t| > 1 lands further out than it started
    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        r = np.sqrt(1 + theta**2)
        return float(r.sum()), theta / r, np.diag(r**-3)

    steps: list[float] = []
    theta, iterations = _newton(
        evaluate,
        np.array([3.0, -2.0]),
        task="binary",
        k=2,
        m=2,
        l2=0.1,
        n=1,
        max_iter=50,
        tol=1e-12,
        on_iteration=lambda i, d: steps.append(d["step"]),
    )
    np.testing.assert_allclose(theta, 0.0, atol=1e-8)
    assert min(steps[1:]) < 1.0
    assert len(steps) == iterations < 50
