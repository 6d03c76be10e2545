"""Training on GPUs: XGBoost on CuPy chunks (binary, multiclass, regression), predictions on the
device, checkpoint and resume, and the linear model on CuPy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from distributed import Client

import workbench as wb

FEATURES = ["amount", "merchant_category", "device", "hour", "distance_from_home_km"]


def on_gpu(x: object) -> bool:
    """Whether ``x`` (an array, or a Dask array's meta) is a CuPy array."""
    return type(x).__module__.split(".")[0] == "cupy"


def host(x: Any) -> np.ndarray:
    """``x`` as a NumPy array (copied from the device when it is a CuPy array)."""
    return np.asarray(x.get() if on_gpu(x) else x)


@pytest.fixture(scope="module")
def fraud_split(gpu_client: Client, fraud_gpu: Path) -> tuple[wb.Dataset, ...]:
    ds = wb.load(
        fraud_gpu,
        target="is_fraud",
        categorical=["merchant_category", "device"],
        features=FEATURES,
        client=gpu_client,
    )
    return ds.split((0.8, 0.2), seed=0, stratify=True)


def test_xgboost_binary_trains_predicts_and_evaluates_on_the_gpu(
    gpu_client: Client, fraud_split: tuple[wb.Dataset, ...]
) -> None:
    client = gpu_client
    train, valid = fraud_split
    gpu = wb.train(train, valid, rounds=30, early_stopping=10, client=client, progress=False)
    assert gpu.info["device"] == "gpu" and gpu.params["device"] == "cuda"
    cpu = wb.train(
        train, valid, rounds=30, early_stopping=10, device="cpu", client=client, progress=False
    )
    assert cpu.info["device"] == "cpu" and cpu.params["device"] == "cpu"
    # the same data and parameters: the GPU's model is about as good as the CPU's
    assert gpu.metrics["auc"] == pytest.approx(cpu.metrics["auc"], abs=0.03)
    # predictions run on the device: CuPy chunks in, CuPy chunks out
    proba = gpu.predict_proba(valid, client=client)
    assert on_gpu(proba._meta)
    p = client.compute(proba).result()
    assert on_gpu(p) and p.shape[1] == 2
    labels = client.compute(gpu.predict(valid, client=client)).result()
    y = client.compute(valid.frame["is_fraud"]).result().to_numpy()
    assert host(labels).shape == y.shape and set(np.unique(host(labels))) <= {0, 1}
    got = gpu.evaluate(valid, client=client)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, host(p)[:, 1]), abs=1e-4)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, host(labels)), abs=1e-6)


def test_multiclass_and_regression_on_the_gpu(gpu_client: Client, table_gpu: Path) -> None:
    client = gpu_client
    common: dict[str, Any] = {
        "features": ["a", "b", "c", "color"],
        "categorical": ["color"],
        "client": client,
    }
    ds = wb.load(table_gpu, target="label", task="multiclass", **common)
    train, test = ds.split((0.8, 0.2), seed=1)
    model = wb.train(train, test, rounds=30, client=client, progress=False)
    assert model.info["device"] == "gpu" and model.params["device"] == "cuda"
    assert model.classes == [2, 5, 7] and model.params["objective"] == "multi:softprob"
    p = client.compute(model.predict_proba(test, client=client)).result()
    assert on_gpu(p) and p.shape[1] == 3
    y = client.compute(test.frame["label"]).result().to_numpy()
    labels = host(client.compute(model.predict(test, client=client)).result())
    assert set(np.unique(labels)) <= {2, 5, 7}
    got = model.evaluate(test, client=client)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, labels), abs=1e-6)
    assert got["accuracy"] > 0.8

    ds = wb.load(table_gpu, target="value", task="regression", **common)
    train, test = ds.split((0.8, 0.2), seed=1)
    reg = wb.train(train, test, rounds=60, client=client, progress=False)
    assert reg.info["device"] == "gpu" and reg.params["device"] == "cuda"
    pred = client.compute(reg.predict(test, client=client)).result()
    assert on_gpu(pred)
    v = client.compute(test.frame["value"]).result().to_numpy()
    got = reg.evaluate(test, client=client)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((host(pred) - v) ** 2)), rel=1e-4)
    assert got["r2"] > 0.7


def test_checkpoint_and_resume_on_the_gpu(
    gpu_client: Client, fraud_split: tuple[wb.Dataset, ...], tmp_path: Path
) -> None:
    client = gpu_client
    train, valid = fraud_split
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
    )
    assert first.params["device"] == "cuda"
    saved = wb.load_model(str(path))  # the checkpoint of round 10
    assert saved.estimator.num_boosted_rounds() == 10
    resumed = wb.train(
        train,
        valid,
        rounds=20,
        params={"max_depth": 3},
        resume=str(path),
        client=client,
        progress=False,
    )
    assert resumed.info["device"] == "gpu" and resumed.params["device"] == "cuda"
    assert resumed.estimator.num_boosted_rounds() == 20
    assert resumed.metrics["logloss"] <= first.metrics["logloss"] + 1e-3
    p = client.compute(resumed.predict_proba(valid, client=client)).result()
    assert on_gpu(p) and p.shape[1] == 2


def test_linear_model_trains_on_the_gpu(
    gpu_client: Client, fraud_split: tuple[wb.Dataset, ...]
) -> None:
    client = gpu_client
    train, valid = fraud_split
    lin_gpu = wb.train(train, valid, model="linear", client=client, progress=False)
    assert lin_gpu.info["device"] == "gpu"
    lin_cpu = wb.train(train, valid, model="linear", device="cpu", client=client, progress=False)
    assert lin_cpu.info["device"] == "cpu"
    np.testing.assert_allclose(lin_gpu.estimator.coef, lin_cpu.estimator.coef, rtol=1e-5, atol=1e-7)
    p = client.compute(lin_gpu.predict_proba(valid, client=client)).result()
    assert on_gpu(p)
    assert lin_gpu.metrics["auc"] == pytest.approx(lin_cpu.metrics["auc"], abs=1e-4)
