"""What ``model.evaluate`` returns: a dict of full-precision metrics with the set's name and rows,
a rounded HTML table, a pandas Series; and importances named after their measure."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client
from sklearn import metrics as skm

import workbench as wb
from workbench.metrics import Metrics

VALUES = {"auc": 0.8412345678901234, "logloss": 0.2512345678901234, "rmse": 1234567.891}


def test_metrics_is_a_dict_of_full_precision_floats() -> None:
    m = Metrics(VALUES, name="fraud[part 3/3]", rows=12_345)
    assert isinstance(m, dict) and m == VALUES and VALUES.__eq__(m) and dict(m) == VALUES
    assert m["auc"] == 0.8412345678901234 and list(m) == ["auc", "logloss", "rmse"]
    assert json.loads(json.dumps(m)) == VALUES and json.loads(json.dumps(dict(m))) == VALUES
    assert (m.name, m.rows) == ("fraud[part 3/3]", 12_345)
    again = pickle.loads(pickle.dumps(m))
    assert again == m and (again.name, again.rows) == (m.name, m.rows)
    # NumPy scalars and ints become plain floats
    plain = Metrics({"a": np.float32(0.5), "b": 1})
    assert plain == {"a": 0.5, "b": 1.0} and all(type(v) is float for v in plain.values())
    assert Metrics([("x", 2.0)]) == {"x": 2.0}


def test_metrics_converts_to_pandas() -> None:
    m = Metrics(VALUES, name="test", rows=10)
    s = m.to_series()
    assert s.name == "test" and s.index.name == "metric" and s.dtype == np.float64
    assert s.to_dict() == VALUES  # not rounded
    other = Metrics({"auc": 0.5, "logloss": 0.7, "rmse": 1.0}, name="other")
    table = pd.DataFrame({"one": m, "two": other})  # as notebooks put two models side by side
    assert table.loc["auc", "one"] == VALUES["auc"] and table.loc["auc", "two"] == 0.5


def test_metrics_repr_is_exact_and_html_is_rounded() -> None:
    m = Metrics(VALUES, name="fraud[part 3/3]", rows=12_345)
    text = repr(m)
    assert text == (
        "Metrics({'auc': 0.8412345678901234, 'logloss': 0.2512345678901234, "
        "'rmse': 1234567.891}, name='fraud[part 3/3]', rows=12345)"
    )
    assert eval(text, {"Metrics": Metrics}) == m  # every digit is there
    html = m._repr_html_()
    assert "fraud[part 3/3]" in html and "12,345 rows" in html
    assert ">0.8412<" in html and ">0.2512<" in html and ">1.235e+06<" in html
    assert 'title="0.8412345678901234"' in html  # the exact value on hover
    assert "0.84123456" not in html.replace('title="0.8412345678901234"', "")
    bare = Metrics({"r2": 0.0, "mae": 0.0000123456, "x": float("nan")})._repr_html_()
    assert ">0.0000<" in bare and ">1.235e-05<" in bare and ">nan<" in bare
    assert "rows" not in bare and " on " not in bare


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (({1: 0.5},), {}, TypeError, "metric names must be strings; got 1"),
        (({"auc": "high"},), {}, TypeError, "metric 'auc' must be a real number; got 'high'"),
        (({"auc": True},), {}, TypeError, "metric 'auc' must be a real number; got True"),
        (({"auc": 0.5},), {"name": 3}, TypeError, "name must be a str or None; got int"),
        (({"auc": 0.5},), {"rows": 2.5}, TypeError, "rows must be an int or None; got 2.5"),
        (({"auc": 0.5},), {"rows": -1}, ValueError, "rows must be 0 or more; got -1"),
    ],
)
def test_metrics_refuses_bad_values(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Metrics(*args, **kwargs)  # type: ignore[arg-type]


# --- on a real cluster, with real models -------------------------------------------------------
@pytest.fixture(scope="module")
def parts(client: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[wb.Dataset, ...]:
    rng = np.random.default_rng(0)
    n = 3_000
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["y"] = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype("int8")
    folder: Path = tmp_path_factory.mktemp("evaluate")
    frame.iloc[:1_500].to_parquet(folder / "a.parquet")
    frame.iloc[1_500:].to_parquet(folder / "b.parquet")
    ds = wb.load(folder, target="y", client=client)
    return ds.split((0.7, 0.3), seed=0)


@pytest.mark.parametrize("kind", ["xgboost", "linear"])
def test_evaluate_returns_metrics_named_after_the_set(
    client: Client, parts: tuple[wb.Dataset, ...], kind: str
) -> None:
    train, test = parts
    model = wb.train(train, model=kind, rounds=10, client=client, progress=False)
    m = model.evaluate(test, client=client)
    assert isinstance(m, Metrics) and list(m) == ["auc", "aucpr", "logloss", "accuracy"]
    rows = test.count_rows()
    assert m.name == test.source and m.name.endswith("[part 2/2]") and m.rows == rows
    y = client.compute(test.frame["y"]).result().to_numpy()
    p = client.compute(model.predict_proba(test, client=client)).result()[:, 1]
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p), rel=1e-12)
    assert m["logloss"] == pytest.approx(skm.log_loss(y, p), rel=1e-6)
    html = m._repr_html_()
    assert f"{rows:,} rows" in html and "[part 2/2]" in html and f">{m['auc']:.4f}<" in html
    one = model.evaluate(test, "auc", client=client)
    assert one == {"auc": m["auc"]} and one.rows == rows


def test_importance_names_its_measure(client: Client, parts: tuple[wb.Dataset, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, _ = parts
    model = wb.train(train, rounds=10, client=client, progress=False)
    gain = model.feature_importance()
    assert gain.name == "gain" and gain.index[0] == "a" and gain.is_monotonic_decreasing
    booster_gain = model.estimator.get_score(importance_type="gain")
    assert gain["a"] == pytest.approx(booster_gain["a"])
    weight = model.feature_importance("weight")
    assert weight.name == "weight" and weight.sum() == sum(
        model.estimator.get_score(importance_type="weight").values()
    )
    for measure in ("total_gain", "cover", "total_cover"):
        assert model.feature_importance(measure).name == measure
    with pytest.raises(ValueError, match=r"importance_type='split'.*'gain', 'total_gain'"):
        model.feature_importance("split")
    ax = model.plot_importance(top=2, importance_type="cover")
    assert ax.get_title() == "feature importance: cover" and len(ax.patches) == 2
    assert "cover" in ax.get_xlabel()
    assert model.plot_importance().get_title() == "feature importance: gain"
    assert "Top features by gain" in model._repr_html_()

    boosted = wb.train(train, model="lightgbm", rounds=5, client=client, progress=False)
    total = boosted.feature_importance("total_gain")
    splits = boosted.feature_importance("weight")
    average = boosted.feature_importance()  # XGBoost's "gain": per split
    assert average.name == "gain" and total.name == "total_gain" and splits.name == "weight"
    assert total["a"] == pytest.approx(boosted.estimator.feature_importance("gain")[0]) and average[
        "a"
    ] == pytest.approx(total["a"] / splits["a"])
    with pytest.raises(
        ValueError, match="lightgbm model; use one of 'gain', 'total_gain', 'weight'"
    ):
        boosted.feature_importance("cover")

    linear = wb.train(train, model="linear", client=client, progress=False)
    coef = linear.feature_importance()
    assert coef.name == "coefficient" and coef.index[0] == "a"
    with pytest.raises(ValueError, match=r"linear model; use one of 'coefficient'"):
        linear.feature_importance("gain")
    plt.close("all")
