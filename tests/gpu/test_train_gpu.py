"""Training on GPUs: XGBoost with device="cuda" on CuPy chunks, and the linear model on CuPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import workbench as wb


def test_xgboost_and_linear_train_on_the_gpus(tmp_path: Path) -> None:
    with wb.start_cluster("local-gpu", CUDA_VISIBLE_DEVICES="0") as cluster:
        client = cluster.get_client()
        wb.generate("fraud", 60_000, tmp_path / "fraud", partitions=4, client=client)
        ds = wb.load(
            tmp_path / "fraud",
            target="is_fraud",
            categorical=["merchant_category", "device"],
            features=["amount", "merchant_category", "device", "hour", "distance_from_home_km"],
            client=client,
        )
        train, valid = ds.split((0.8, 0.2), seed=0, stratify=True)
        gpu = wb.train(train, valid, rounds=30, early_stopping=10, client=client)
        assert gpu.info["device"] == "gpu" and gpu.params["device"] == "cuda"
        cpu = wb.train(train, valid, rounds=30, early_stopping=10, device="cpu", client=client)
        assert cpu.params["device"] == "cpu"
        # the same data and parameters: the GPU's model is about as good as the CPU's
        assert gpu.metrics["auc"] == pytest.approx(cpu.metrics["auc"], abs=0.03)
        p = client.compute(gpu.predict_proba(valid, client=client)).result()
        assert type(p).__module__.startswith("cupy") or isinstance(p, np.ndarray)

        lin_gpu = wb.train(train, valid, model="linear", client=client, progress=False)
        lin_cpu = wb.train(
            train, valid, model="linear", device="cpu", client=client, progress=False
        )
        np.testing.assert_allclose(
            lin_gpu.estimator.coef, lin_cpu.estimator.coef, rtol=1e-5, atol=1e-7
        )
