"""Data onto the GPUs: CuPy chunks on the workers, and 'auto' choosing them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import workbench as wb


def test_to_arrays_gives_cupy_chunks_on_the_workers(tmp_path: Path) -> None:
    with wb.start_cluster("local-gpu", CUDA_VISIBLE_DEVICES="0") as cluster:
        client = cluster.get_client()
        wb.generate("fraud", 20_000, tmp_path / "fraud", partitions=2, client=client)
        kw = {"target": "is_fraud", "categorical": ["merchant_category", "device"]}
        ds = wb.load(tmp_path / "fraud", client=client, **kw)
        for device in ("gpu", "auto"):
            X, y = ds.to_arrays(device=device, client=client)
            assert type(X._meta).__module__.startswith("cupy")
            total = client.compute(X.sum()).result()  # reduced on the workers' GPUs
            assert type(total).__module__.startswith("cupy")
            assert int(client.compute(y.sum()).result()) >= 0
            assert X.shape == (20_000, len(ds.features))
        # every way to the arrays: straight from Arrow, through a persisted frame, levels found
        # while encoding, a split; the GPU blocks hold what the CPU blocks hold
        views = {
            "loaded": ds,
            "persisted": ds.persist(client=client),
            "unchecked": wb.load(tmp_path / "fraud", check=False, client=client, **kw),
            "split": ds.split((0.7, 0.3), seed=1, stratify=True)[1],
        }
        for name, view in views.items():
            X, y = view.to_arrays(device="gpu", client=client)
            Xc, yc = view.to_arrays(device="cpu", client=client)
            assert type(X._meta).__module__.startswith("cupy"), name
            got = client.compute(X).result()
            assert type(got).__module__.startswith("cupy"), name
            assert np.array_equal(got.get(), client.compute(Xc).result(), equal_nan=True), name
            assert np.array_equal(client.compute(y).result().get(), client.compute(yc).result())
