"""local-gpu on a machine with NVIDIA GPUs: one worker per GPU, allocator, visible devices."""

from __future__ import annotations

import importlib.util

import workbench as wb


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
        assert all(w.gpu_name and w.gpu_memory for w in workers)
        assert f"gpus={hw.gpu_count}" in repr(cluster)
        assert hw.gpus[0].name in cluster._repr_html_()


def test_cupy_work_on_the_worker_gpu_with_the_allocator_fallback() -> None:
    with wb.start_cluster("local-gpu", rmm_pool_size="1GB", CUDA_VISIBLE_DEVICES="0") as cluster:
        client = cluster.get_client()
        assert len(cluster.workers()) == 1

        def work() -> tuple[float, str]:
            import cupy

            x = cupy.arange(1_000_000, dtype=cupy.float64)
            allocator = cupy.cuda.get_allocator()
            return float(x.sum()), getattr(allocator, "__qualname__", repr(allocator))

        total, allocator = client.submit(work, pure=False).result()
        assert total == float(sum(range(1_000_000)))
        if importlib.util.find_spec("rmm") is None:
            assert "MemoryAsyncPool" in allocator


def test_local_gpu_with_tls() -> None:
    with wb.start_cluster("local-gpu", tls=True, CUDA_VISIBLE_DEVICES="0") as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert cluster.get_client().submit(sum, [1, 2]).result() == 3
