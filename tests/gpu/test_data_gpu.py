"""Data onto the GPUs: CuPy chunks on the workers, and 'auto' choosing them."""

from __future__ import annotations

from pathlib import Path

import workbench as wb


def test_to_arrays_gives_cupy_chunks_on_the_workers(tmp_path: Path) -> None:
    with wb.start_cluster("local-gpu", CUDA_VISIBLE_DEVICES="0") as cluster:
        client = cluster.get_client()
        wb.generate("fraud", 20_000, tmp_path / "fraud", partitions=2, client=client)
        ds = wb.load(
            tmp_path / "fraud",
            target="is_fraud",
            categorical=["merchant_category", "device"],
            client=client,
        )
        for device in ("gpu", "auto"):
            X, y = ds.to_arrays(device=device, client=client)
            assert type(X._meta).__module__.startswith("cupy")
            total = client.compute(X.sum()).result()  # reduced on the workers' GPUs
            assert type(total).__module__.startswith("cupy")
            assert int(client.compute(y.sum()).result()) >= 0
            assert X.shape == (20_000, len(ds.features))
