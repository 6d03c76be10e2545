"""Data onto the GPUs: CuPy chunks on GPU workers, and NumPy on a plain cluster of the same box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

import workbench as wb
from workbench._client import snapshot
from workbench.data.placement import resolve_device

KW: dict[str, Any] = {"target": "is_fraud", "categorical": ["merchant_category", "device"]}


def on_gpu(x: object) -> bool:
    """Whether ``x`` (an array, or a Dask array's meta) is a CuPy array."""
    return type(x).__module__.split(".")[0] == "cupy"


def test_to_arrays_gives_cupy_chunks_on_the_workers(gpu_client: Client, fraud_gpu: Path) -> None:
    client = gpu_client
    ds = wb.load(fraud_gpu, client=client, **KW)
    snap = snapshot(client)  # the worker process reports its GPU (through its metrics)
    assert snap.all_gpu and all(w.gpu_memory for w in snap.workers)
    assert resolve_device(client, "auto", snap) == "gpu"
    for device in ("gpu", "auto"):
        X, y = ds.to_arrays(device=device, client=client)
        assert on_gpu(X._meta) and on_gpu(y._meta)
        total = client.compute(X.sum()).result()  # reduced on the workers' GPUs
        assert on_gpu(total)
        assert int(client.compute(y.sum()).result()) >= 0
        assert X.shape == (60_000, len(ds.features))
    # every way to the arrays: straight from Arrow, through a persisted frame, levels found
    # while encoding, a split; the GPU blocks hold what the CPU blocks hold
    views = {
        "loaded": ds,
        "persisted": ds.persist(client=client, device="gpu"),
        "unchecked": wb.load(fraud_gpu, check=False, client=client, **KW),
        "split": ds.split((0.7, 0.3), seed=1, stratify=True)[1],
    }
    for name, view in views.items():
        X, y = view.to_arrays(device="gpu", client=client)
        Xc, yc = view.to_arrays(device="cpu", client=client)
        assert on_gpu(X._meta) and isinstance(Xc._meta, np.ndarray), name
        got = client.compute(X).result()
        assert on_gpu(got), name
        assert np.array_equal(got.get(), client.compute(Xc).result(), equal_nan=True), name
        assert np.array_equal(client.compute(y).result().get(), client.compute(yc).result())


def test_persist_on_the_gpu_checks_gpu_memory(gpu_client: Client, fraud_gpu: Path) -> None:
    ds = wb.load(fraud_gpu, client=gpu_client, **KW)
    free = snapshot(gpu_client).workers[0].gpu_memory
    assert free and free > 0
    done = ds.persist(client=gpu_client, device="gpu")
    assert done.persisted and done.rows == 60_000
    with (
        pytest.raises(wb.InsufficientMemoryError, match="GPU memory"),
        dask.config.set({"workbench.data.memory-fraction": 1e-9}),
    ):
        ds.persist(client=gpu_client, device="gpu")


def test_a_plain_local_cluster_on_a_gpu_machine_stays_on_numpy(fraud_gpu: Path) -> None:
    # its workers see the GPU (and report it) but none was given one of its own: both would
    # work on GPU 0, and XGBoost refuses two ranks on one device
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        snap = snapshot(client)
        assert snap.gpus == 2
        ds = wb.load(fraud_gpu, client=client, **KW)
        X, _ = ds.to_arrays(device="auto", client=client)
        assert isinstance(X._meta, np.ndarray)
        assert isinstance(client.compute(X[:10]).result(), np.ndarray)
        with pytest.raises(wb.GPUUnavailableError, match=r"of (their|its) own.*local-gpu"):
            ds.to_arrays(device="gpu", client=client)
        with pytest.raises(wb.GPUUnavailableError, match="device='gpu' but"):
            ds.persist(client=client, device="gpu")
        model = wb.train(ds, rounds=3, client=client, progress=False)
        assert model.info["device"] == "cpu" and model.params["device"] == "cpu"
