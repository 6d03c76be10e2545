"""workbench.metrics against scikit-learn, on a real in-process cluster."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
from distributed import Client, get_task_stream
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from workbench.metrics import METRICS, check_metrics, default_metrics, evaluate

N = 400
CHUNKINGS = {
    "one-block": N,
    "even": 64,
    "uneven": (1, 7, 0, 250, 42, 100),  # with an empty block
}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def binary_data(
    seed: int, n: int = N, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0/1 and probabilities of class 1, with exact 0, 1 and 0.5 among them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < sigmoid(1.5 * x)).astype(np.int64)
    p = sigmoid(x + rng.normal(scale=0.7, size=n))
    if decimals is not None:
        p = np.round(p, decimals)
    p[:3] = [0.0, 1.0, 0.5]  # clipped by logloss (whatever the labels), and on the threshold
    return y, p


def multiclass_data(seed: int, k: int = 4, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (truth.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    noisy = logits + rng.normal(scale=0.8, size=(n, k))
    proba = np.exp(noisy) / np.exp(noisy).sum(axis=1, keepdims=True)
    return y, proba


def tied_multiclass_data(seed: int, k: int = 3, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Every row of probabilities is one of five, so each column has at most five scores."""
    rng = np.random.default_rng(seed)
    palette = rng.random((5, k))
    palette /= palette.sum(axis=1, keepdims=True)
    rows = rng.integers(0, 5, size=n)
    y = np.where(rng.random(n) < 0.6, palette[rows].argmax(axis=1), rng.integers(0, k, size=n))
    y[:k] = np.arange(k)
    return y, palette[rows]


def regression_data(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = 10.0 + 3.0 * rng.normal(size=n)
    return y, y + rng.normal(scale=1.5, size=n)


def darr(x: np.ndarray, chunks: int | tuple[int, ...]) -> da.Array:
    return da.from_array(x, chunks=(chunks, *x.shape[1:]))


def expected_binary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "auc": skm.roc_auc_score(y, p),
        "aucpr": skm.average_precision_score(y, p),
        "logloss": skm.log_loss(y, p, labels=[0, 1]),
        "accuracy": skm.accuracy_score(y, p > 0.5),
    }


def expected_multiclass(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    k = proba.shape[1]
    return {
        "logloss": skm.log_loss(y, proba, labels=list(range(k))),
        "accuracy": skm.accuracy_score(y, proba.argmax(axis=1)),
        "auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
    }


def expected_regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": skm.root_mean_squared_error(y, pred),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }


def assert_matches(got: dict[str, float], want: dict[str, float], logloss_rel: float = 1e-6):
    assert list(got) == list(want)
    for name, value in got.items():
        assert type(value) is float, name
        rel = logloss_rel if name == "logloss" else 1e-9
        assert value == pytest.approx(want[name], rel=rel, abs=1e-12), name


# --------------------------------------------------------------------------------------------
# Metric names
# --------------------------------------------------------------------------------------------


def test_names_and_defaults() -> None:
    assert set(METRICS) == {"auc", "aucpr", "logloss", "accuracy", "rmse", "mae", "r2"}
    assert all(isinstance(d, str) and d for d in METRICS.values())
    assert default_metrics("binary") == ["auc", "aucpr", "logloss", "accuracy"]
    assert default_metrics("multiclass") == ["logloss", "accuracy", "auc"]
    assert default_metrics("regression") == ["rmse", "mae", "r2"]
    default_metrics("binary").append("mae")  # a fresh list every time
    assert default_metrics("binary") == ["auc", "aucpr", "logloss", "accuracy"]


def test_check_metrics() -> None:
    assert check_metrics(None, "regression") == ["rmse", "mae", "r2"]
    assert check_metrics("auc", "binary") == ["auc"]
    assert check_metrics(("accuracy", "auc", "accuracy"), "multiclass") == ["accuracy", "auc"]
    with pytest.raises(ValueError, match=r"unknown metric 'acu' \(did you mean 'auc'\?\).*aucpr"):
        check_metrics(["logloss", "acu"], "binary")
    with pytest.raises(ValueError, match=r"unknown metric 'RMSE' \(did you mean 'rmse'\?\)"):
        check_metrics("RMSE", "regression")
    with pytest.raises(
        ValueError, match=r"'auc' does not apply to task 'regression'.*rmse, mae, r2"
    ):
        check_metrics("auc", "regression")
    with pytest.raises(ValueError, match=r"'rmse' does not apply to task 'binary'.*auc, aucpr"):
        check_metrics(["auc", "rmse"], "binary")
    with pytest.raises(ValueError, match=r"'aucpr' does not apply to task 'multiclass'"):
        check_metrics("aucpr", "multiclass")
    with pytest.raises(ValueError, match=r"unknown task 'binar' \(did you mean 'binary'\?\)"):
        check_metrics(None, "binar")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        default_metrics("ranking")
    with pytest.raises(ValueError, match="metrics is empty"):
        check_metrics([], "binary")
    with pytest.raises(TypeError, match="metric names must be strings"):
        check_metrics(["auc", 3], "binary")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="metrics must be"):
        check_metrics(3, "binary")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Values against scikit-learn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
@pytest.mark.parametrize("decimals", [None, 2], ids=["distinct", "tied"])
def test_binary(client: Client, chunks: int | tuple[int, ...], decimals: int | None) -> None:
    y, p = binary_data(1, decimals=decimals)
    got = evaluate(darr(y, chunks), darr(p, chunks), "binary", client=client)
    assert_matches(got, expected_binary(y, p))


def test_binary_float32_and_float_labels(client: Client) -> None:
    y, p = binary_data(2, decimals=3)
    p32 = p.astype(np.float32)
    with client.as_current():  # the current client, without passing it
        got = evaluate(darr(y.astype(np.float32), 50), darr(p32, 50), "binary")
    # scikit-learn takes float32 logarithms, these float64 ones after the same clipping: ~3e-8 apart
    assert_matches(got, expected_binary(y, p32))
    assert skm.log_loss(y, p32, labels=[0, 1]) != skm.log_loss(y, p, labels=[0, 1])


def test_binary_one_row_chunks_and_order(client: Client) -> None:
    y, p = binary_data(3, n=24, decimals=1)
    order = ["accuracy", "aucpr", "logloss", "auc"]
    got = evaluate(darr(y.astype(bool), 1), darr(p, 1), "binary", order, client=client)
    want = expected_binary(y, p)
    assert_matches(got, {m: want[m] for m in order})


def test_binary_hard_labels_as_pred(client: Client) -> None:
    y, p = binary_data(4)
    hard = (p > 0.5).astype(np.int8)  # integer "probabilities": clipped with float64's eps
    got = evaluate(darr(y, 64), darr(hard, 64), "binary", client=client)
    assert_matches(got, expected_binary(y, hard))


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
def test_multiclass(client: Client, chunks: int | tuple[int, ...]) -> None:
    y, proba = multiclass_data(5)
    got = evaluate(darr(y, chunks), darr(proba, chunks), "multiclass", client=client)
    assert_matches(got, expected_multiclass(y, proba))


def test_multiclass_tied_float32_column_chunks(client: Client) -> None:
    y, proba = tied_multiclass_data(6)
    p32 = proba.astype(np.float32)
    pred = da.from_array(p32, chunks=((1, 7, 250, 42, 100), (2, 1)))  # columns split too
    got = evaluate(
        darr(y.astype(np.float64), (1, 7, 250, 42, 100)), pred, "multiclass", client=client
    )
    assert_matches(got, expected_multiclass(y, p32))


def test_multiclass_one_row_chunks(client: Client) -> None:
    y, proba = multiclass_data(7, k=3, n=20)
    y[:3] = [0, 1, 2]
    got = evaluate(darr(y, 1), darr(proba, 1), "multiclass", client=client)
    assert_matches(got, expected_multiclass(y, proba))


@pytest.mark.parametrize("chunks", [*CHUNKINGS.values(), 1], ids=[*CHUNKINGS.keys(), "one-row"])
def test_regression(client: Client, chunks: int | tuple[int, ...]) -> None:
    y, pred = regression_data(8)
    if chunks == 1:
        y, pred = y[:20], pred[:20]
    got = evaluate(darr(y, chunks), darr(pred, chunks), "regression", client=client)
    assert_matches(got, expected_regression(y, pred))


def test_regression_float32_and_int_targets(client: Client) -> None:
    y, pred = regression_data(9)
    y_int, p32 = np.round(y).astype(np.int32), pred.astype(np.float32)
    got = evaluate(darr(y_int, 64), darr(p32, 64), "regression", ["r2", "mae"], client=client)
    # accumulated in float64: scikit-learn on the same values, widened, gives the same numbers
    want = expected_regression(y_int.astype(np.float64), p32.astype(np.float64))
    assert_matches(got, {"r2": want["r2"], "mae": want["mae"]})


def test_regression_constant_target(client: Client) -> None:
    y = np.full(20, 3.0)
    for pred in (y.copy(), y + 1.0):
        got = evaluate(darr(y, 6), darr(pred, 6), "regression", "r2", client=client)
        assert got == {"r2": skm.r2_score(y, pred)}


def test_unknown_row_chunks(client: Client) -> None:
    y, p = binary_data(10)
    keep = da.from_array(np.ones(N, dtype=bool), chunks=64)
    y_unknown = darr(y, 64)[keep]
    assert math.isnan(y_unknown.shape[0])
    got = evaluate(y_unknown, darr(p, 64), "binary", client=client)
    assert_matches(got, expected_binary(y, p))

    keep_fewer = np.ones(N, dtype=bool)
    keep_fewer[70] = False
    y_short = darr(y, 64)[da.from_array(keep_fewer, chunks=64)]
    with pytest.raises(ValueError, match="row block 1 has 63 rows in y_true but 64 in pred"):
        evaluate(y_short, darr(p, 64), "binary", client=client)


def test_one_pass_on_the_given_client(client: Client) -> None:
    y, proba = multiclass_data(11)
    with get_task_stream(client=client) as ts:
        evaluate(darr(y, 64), darr(proba, 64), "multiclass", client=client)
    keys = [str(t["key"]) for t in ts.data]
    assert sum("_summarize_block" in key for key in keys) == 7  # one task per row block
    assert sum("_finish" in key for key in keys) == 1


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def test_length_and_chunk_mismatch(client: Client) -> None:
    y, p = binary_data(12)
    with pytest.raises(ValueError, match=r"shape \(400,\) and pred has shape \(399,\)"):
        evaluate(darr(y, 64), darr(p[:-1], 64), "binary", client=client)
    with pytest.raises(ValueError, match=r"same row chunks.*rechunk"):
        evaluate(darr(y, 64), darr(p, 100), "binary", client=client)


def test_nan_and_inf(client: Client) -> None:
    y, p = regression_data(13)
    y[[5, 300]] = np.nan
    with pytest.raises(ValueError, match=r"y_true holds 2 NaN or infinite values \(of 400 rows\)"):
        evaluate(darr(y, 64), darr(p, 64), "regression", client=client)
    yb, pb = binary_data(13)
    with pytest.raises(ValueError, match="y_true holds 1 NaN"):
        evaluate(
            darr(np.where(np.arange(N) == 9, np.nan, yb), 64), darr(pb, 64), "binary", client=client
        )
    pb[17] = np.inf
    with pytest.raises(ValueError, match="pred holds 1 NaN or infinite"):
        evaluate(darr(yb, 64), darr(pb, 64), "binary", "auc", client=client)


def test_wrong_pred_shape(client: Client) -> None:
    y, proba = multiclass_data(14, k=2)
    with pytest.raises(ValueError, match=r"binary pred must be 1-D.*\(400, 2\); pass pred\[:, 1\]"):
        evaluate(darr(y, 64), darr(proba, 64), "binary", client=client)
    with pytest.raises(
        ValueError, match=r"multiclass pred .* \(n, n_classes\); got shape \(400,\)"
    ):
        evaluate(darr(y, 64), darr(proba[:, 1], 64), "multiclass", client=client)
    with pytest.raises(ValueError, match=r"at least 2 columns"):
        evaluate(darr(y, 64), darr(proba[:, :1], 64), "multiclass", client=client)
    with pytest.raises(ValueError, match=r"regression pred must be 1-D.*pass pred\[:, 0\]"):
        evaluate(darr(y, 64), darr(proba[:, :1], 64), "regression", client=client)
    with pytest.raises(ValueError, match=r"y_true must be 1-D"):
        evaluate(darr(proba, 64), darr(y, 64), "regression", client=client)


def test_no_rows(client: Client) -> None:
    empty = da.zeros((0,), chunks=10)
    with pytest.raises(ValueError, match="no rows"):
        evaluate(empty, empty, "regression", client=client)
    with pytest.raises(ValueError, match="no rows"):
        evaluate(empty, da.zeros((0, 3), chunks=10), "multiclass", client=client)
    nothing = darr(np.ones(10), 5)[da.from_array(np.zeros(10, dtype=bool), chunks=5)]
    with pytest.raises(ValueError, match="no rows"):
        evaluate(nothing, nothing, "regression", client=client)


def test_single_class(client: Client) -> None:
    _, p = binary_data(15)
    ones = np.ones(N)
    for metric in ("auc", "aucpr"):
        with pytest.raises(
            ValueError, match=f"{metric} needs both classes.*all 400 rows are class 1"
        ):
            evaluate(darr(ones, 64), darr(p, 64), "binary", metric, client=client)
    with pytest.warns(UndefinedMetricWarning):  # scikit-learn 1.9 warns and returns NaN
        assert math.isnan(skm.roc_auc_score(ones, p))
    # the other metrics are defined with one class
    got = evaluate(
        darr(0 * ones, 64), darr(p, 64), "binary", ["logloss", "accuracy"], client=client
    )
    assert_matches(
        got,
        {
            "logloss": skm.log_loss(0 * ones, p, labels=[0, 1]),
            "accuracy": skm.accuracy_score(0 * ones, p > 0.5),
        },
    )
    ym, proba = multiclass_data(15)
    ym[ym == 2] = 0
    with pytest.raises(
        ValueError, match=r"auc needs both classes in every split.*class 2 \(of 4\)"
    ):
        evaluate(darr(ym, 64), darr(proba, 64), "multiclass", client=client)


def test_bad_labels_and_probabilities(client: Client) -> None:
    y, p = binary_data(16)
    with pytest.raises(ValueError, match=r"not class indices 0..1.*e\.g\. 2\.0"):
        evaluate(darr(y * 2.0, 64), darr(p, 64), "binary", client=client)
    with pytest.raises(ValueError, match=r"not class indices 0..1.*e\.g\. 0\.5"):
        evaluate(darr(np.where(y == 1, 0.5, 0.0), 64), darr(p, 64), "binary", client=client)
    ym, proba = multiclass_data(16, k=3)
    with pytest.raises(ValueError, match=r"not class indices 0..2.*e\.g\. -1"):
        evaluate(darr(ym - 1, 64), darr(proba, 64), "multiclass", client=client)
    margins = np.log(p[3:] / (1 - p[3:]))
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*logloss needs probabilities"):
        evaluate(darr(y[3:], 64), darr(margins, 64), "binary", "logloss", client=client)
    # AUC ranks any scores, as scikit-learn's does
    got = evaluate(darr(y[3:], 64), darr(margins, 64), "binary", "auc", client=client)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y[3:], margins), rel=1e-9)


def test_bad_types(client: Client) -> None:
    y, p = binary_data(17)
    with pytest.raises(
        TypeError, match=r"pred must be a dask.array.Array; got ndarray.*from_array"
    ):
        evaluate(darr(y, 64), p, "binary", client=client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="y_true must hold numbers"):
        evaluate(darr(y.astype(str), 64), darr(p, 64), "binary", client=client)
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client"):
        evaluate(darr(y, 64), darr(p, 64), "binary", client="tcp://x:8786")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown task"):
        evaluate(darr(y, 64), darr(p, 64), "classification", client=client)
