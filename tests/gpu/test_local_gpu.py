"""local-gpu on a machine with NVIDIA GPUs: one worker per GPU, allocator, visible devices."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import workbench as wb
from workbench._client import snapshot
from workbench.data.placement import resolve_device


def test_hardware_lists_the_gpus() -> None:
    hw = wb.hardware()
    assert hw.gpu_count >= 1 and hw.gpu_note is None
    assert all(g.memory_total > 0 and g.name for g in hw.gpus)
    assert hw.gpus[0].name in repr(hw)


def test_default_profile_picks_the_gpus() -> None:
    hw = wb.hardware()
    with wb.start_cluster() as cluster:
        assert cluster.name == "local-gpu"
        workers = cluster.workers()
        assert len(workers) == hw.gpu_count
        # a worker process reports its GPU's memory through its metrics (the name only where
        # NVML started in its process before the worker did)
        assert all(w.has_gpu and w.gpu_memory for w in workers)
        assert f"gpus={hw.gpu_count}" in repr(cluster)
        assert "<td>none</td>" not in cluster._repr_html_()


def _allocators() -> tuple[float, str, str]:
    """A CuPy sum on the worker's GPU, CuPy's allocator and RMM's current resource."""
    import cupy

    x = cupy.arange(1_000_000, dtype=cupy.float64)
    allocator = cupy.cuda.get_allocator()
    name = getattr(allocator, "__qualname__", repr(allocator))
    resource = ""
    if importlib.util.find_spec("rmm") is not None:
        import rmm

        resource = type(rmm.mr.get_current_device_resource()).__name__
    return float(x.sum()), name, resource


def test_cupy_work_on_the_worker_gpu_with_the_rmm_pool_or_its_fallback() -> None:
    with wb.start_cluster("local-gpu", rmm_pool_size="1GB", CUDA_VISIBLE_DEVICES="0") as cluster:
        client = cluster.get_client()
        assert len(cluster.workers()) == 1
        total, allocator, resource = client.submit(_allocators, pure=False).result()
        assert total == float(sum(range(1_000_000)))
        if importlib.util.find_spec("rmm") is None:
            assert "MemoryAsyncPool" in allocator  # the fallback, said so in the log
        else:
            assert "Pool" in resource, resource  # dask-cuda's RMM pool on the worker's GPU


def test_local_gpu_with_tls() -> None:
    with wb.start_cluster("local-gpu", tls=True, CUDA_VISIBLE_DEVICES="0") as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert cluster.get_client().submit(sum, [1, 2]).result() == 3


def _device() -> tuple[str | None, str]:
    import cupy

    return os.environ.get("CUDA_VISIBLE_DEVICES"), str(cupy.cuda.Device().pci_bus_id)


def test_every_gpu_gets_a_worker_of_its_own_and_trains(tmp_path: Path) -> None:
    hw = wb.hardware()
    if hw.gpu_count < 2:
        pytest.skip(f"one GPU here ({hw.gpus[0].name}); this test needs two or more")
    with wb.start_cluster("local-gpu", rmm_pool_size="1GB") as cluster:
        client = cluster.get_client()
        snap = snapshot(client)
        assert snap.n_workers == hw.gpu_count == snap.gpus
        devices = client.run(_device)
        firsts = [visible.split(",")[0] for visible, _ in devices.values() if visible]
        assert len(set(firsts)) == hw.gpu_count  # dask-cuda: each worker's first device
        assert len({bus for _, bus in devices.values()}) == hw.gpu_count  # different GPUs
        assert resolve_device(client, "auto", snap) == "gpu"
        path = tmp_path / "fraud"
        wb.generate("fraud", 40_000, path, partitions=2 * hw.gpu_count, seed=1, client=client)
        ds = wb.load(path, target="is_fraud", client=client)
        train, valid = ds.split((0.8, 0.2), seed=0, stratify=True)
        model = wb.train(train, valid, rounds=10, client=client, progress=False)
        assert model.info["device"] == "gpu" and model.params["device"] == "cuda"
        assert model.info["workers"] == hw.gpu_count
        assert model.metrics["auc"] > 0.7
