"""A fourth training backend is one module and one registry entry: a toy one, registered here.

scikit-learn's HistGradientBoosting trained on one worker (the rows gathered into one task),
through ``wb.train(ds, model="sklearn-hgb")`` on a real two-worker cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from distributed import Client
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import workbench as wb
from workbench import api
from workbench.training import backends
from workbench.training.backends import Capabilities, FitRequest, FitResult, Layout
from workbench.training.backends.xgboost import XGBoost


def _fit_hgb(X: np.ndarray, y: np.ndarray, task: str, params: dict[str, Any]) -> Any:
    kind = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return kind(**params).fit(X, y)


def _scores(block: np.ndarray, est: Any, task: str) -> np.ndarray:
    if task == "regression":
        return np.asarray(est.predict(block), dtype=np.float64)
    p = est.predict_proba(block)
    return np.asarray(p[:, 1] if task == "binary" else p, dtype=np.float64)


class SklearnHGB:
    """The toy backend: numeric features, CPU, no checkpoints, no early stopping, no files."""

    name = "sklearn-hgb"
    file_name = "model.skl"
    capabilities = Capabilities(categorical=False, files=False)

    def default_params(self, task: str, n_classes: int | None) -> dict[str, Any]:
        return {"max_iter": 20}

    def check_params(self, params: dict[str, Any], task: str, n: int, cat: list[int]) -> None:
        HistGradientBoostingClassifier(**{**self.default_params(task, None), **params})

    def effective_params(self, task: str, k: int | None, params: dict[str, Any], device: str):
        return {**self.default_params(task, k), **params}  # type: ignore[no-untyped-def]

    def prepare(self, client: Client) -> None:
        pass

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        params = self.effective_params(request.task, request.n_classes, request.params, "cpu")
        task = dask.delayed(_fit_hgb)(request.X, request.y, request.task, params)
        return FitResult(client.compute(task).result(), {})  # one worker, all rows

    def predict(self, client: Client, estimator: Any, X: da.Array, task: str) -> da.Array:
        k = len(estimator.classes_) if task == "multiclass" else None
        chunks = (X.chunks[0], (k,)) if k else (X.chunks[0],)
        meta = np.empty((0, k) if k else (0,))
        return X.map_blocks(
            _scores, estimator, task, chunks=chunks, drop_axis=None if k else 1, meta=meta
        )

    def to_bytes(self, estimator: Any) -> bytes:
        raise NotImplementedError  # files=False: never called

    def from_bytes(self, data: bytes) -> Any:
        raise NotImplementedError

    def importance(self, estimator: Any, names: list[str]) -> dict[str, float]:
        return dict.fromkeys(names, 0.0)

    def layout(self, estimator: Any) -> Layout:
        return Layout(count=int(estimator.n_features_in_))

    def rounds_done(self, estimator: Any) -> int:
        return 0


@pytest.fixture(scope="module")
def toy(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[wb.Dataset]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] + 0.5 * frame["b"] > 0).astype("int64")
    frame["colour"] = np.where(frame["c"] > 0, "red", "blue")
    path = tmp_path_factory.mktemp("toy") / "toy.parquet"
    frame.to_parquet(path)
    backends.register(SklearnHGB())
    try:
        yield wb.load(str(path), target="y", features=["a", "b", "c"], client=client)
    finally:
        backends.unregister("sklearn-hgb")


def test_a_registered_backend_trains_predicts_and_evaluates(
    client: Client, toy: wb.Dataset, tmp_path: Path
) -> None:
    train, valid = toy.split((0.8, 0.2), seed=1)
    model = wb.train(train, valid, model="sklearn-hgb", client=client, progress=False)
    assert model.kind == "sklearn-hgb"
    assert model.params == {"max_iter": 20}
    assert model.metrics["auc"] > 0.95  # validation metrics through the backend's predict
    assert model.evaluate(valid, client=client)["auc"] == pytest.approx(model.metrics["auc"])
    labels = client.compute(model.predict(valid, client=client)).result()
    assert set(np.unique(labels)) <= {0, 1}
    assert client.compute(model.predict_proba(valid, client=client)).result().shape[1] == 2
    with pytest.raises(TypeError, match="sklearn-hgb model cannot be saved to a file"):
        model.save(tmp_path / "hgb.wbm")
    assert not (tmp_path / "hgb.wbm").exists()


def test_a_registered_backend_refuses_what_it_cannot_do(client: Client, toy: wb.Dataset) -> None:
    with pytest.raises(ValueError, match="model='sklearn-hgb' does not support early_stopping"):
        wb.train(toy, toy, model="sklearn-hgb", early_stopping=3, client=client)
    with pytest.raises(ValueError, match="are for model='xgboost' only, not 'sklearn-hgb'"):
        wb.train(toy, model="sklearn-hgb", checkpoint_every=5, client=client)
    with pytest.raises(ValueError, match="does not support gpu"):
        wb.train(toy, model="sklearn-hgb", device="gpu", client=client)
    with_colour = wb.load(toy.source, target="y", categorical=["colour"], client=client)
    with pytest.raises(ValueError, match=r"numeric features only, and \['colour'\]"):
        wb.train(with_colour, model="sklearn-hgb", client=client)
    with pytest.raises(ValueError, match="one of xgboost, lightgbm, linear, sklearn-hgb"):
        wb.train(toy, model="sklearn", client=client)


def test_register_refuses_what_is_not_a_backend() -> None:
    with pytest.raises(TypeError, match=r"lacks .*fit"):
        backends.register(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no backend 'nothing' was registered"):
        backends.unregister("nothing")


class _FileAppearsWhileTraining(XGBoost):
    """XGBoost, but the user's file appears at ``out`` while it trains (a real race, made sure)."""

    name = "xgboost-race"

    def __init__(self, out: Path) -> None:
        self.out = out

    def fit(self, client: Client, request: FitRequest) -> FitResult:
        self.out.write_text("the user's own notes, written while the model trained")
        return super().fit(client, request)


def test_a_file_that_appears_at_out_while_training_keeps_the_model_too(tmp_path: Path) -> None:
    out = tmp_path / "m.wbm"
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    pd.DataFrame({"a": a, "y": (a > 0).astype("int64")}).to_parquet(data / "p.parquet")
    backends.register(_FileAppearsWhileTraining(out))
    try:
        with pytest.raises(FileExistsError, match=r"the model was saved to .*m\.[0-9-]+\.wbm"):
            api.train_to_file(
                str(data),
                str(out),
                target="y",
                model="xgboost-race",
                rounds=2,
                profile="local-cpu",
                progress=False,
            )
        assert out.read_text().startswith("the user's own notes")  # not replaced
        (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("m.") and p != out]
        saved = wb.load_model(str(aside))  # the training is not lost
        assert saved.kind == "xgboost-race" and len(saved.history) == 2
    finally:
        backends.unregister("xgboost-race")
