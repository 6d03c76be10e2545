"""Everything under tests/gpu needs an NVIDIA GPU and the gpu extra; skipped otherwise.

The fixtures start one ``local-gpu`` cluster per module (one worker on GPU 0, a small RMM pool
where RMM is installed) and the data the modules share.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

import workbench as wb
from workbench.clusters.local import gpu_readiness


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ready, why = gpu_readiness()
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            if not ready:
                item.add_marker(pytest.mark.skip(reason=f"needs a GPU: {why}"))


@pytest.fixture(scope="module")
def gpu_client() -> Iterator[Client]:
    """A client of ``local-gpu`` with one worker, pinned to GPU 0, for one test module."""
    with wb.start_cluster("local-gpu", CUDA_VISIBLE_DEVICES="0", rmm_pool_size="2GB") as c:
        yield c.get_client()


@pytest.fixture(scope="module")
def fraud_gpu(gpu_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 rows of the fraud generator in 4 Parquet files."""
    path = tmp_path_factory.mktemp("gpu-data") / "fraud"
    wb.generate("fraud", 60_000, path, partitions=4, seed=3, client=gpu_client)
    return path


@pytest.fixture(scope="module")
def table_gpu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small table with a 3-class label (2, 5, 7) and a continuous value, in 4 files."""
    rng = np.random.default_rng(0)
    n = 20_000
    a, b, c = rng.normal(size=(3, n))
    color = rng.choice(["red", "green", "blue"], size=n)
    shift = pd.Series(color).map({"red": 0.0, "green": 1.0, "blue": -1.0}).to_numpy()
    score = 2 * a - b + shift + rng.normal(scale=0.3, size=n)
    label = np.select([score < -1, score < 1], [2, 5], default=7)
    value = 3 * a + b * c + shift + rng.normal(scale=0.1, size=n)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "color": color, "label": label, "value": value})
    path = tmp_path_factory.mktemp("gpu-table") / "table"
    path.mkdir()
    for i, part in enumerate(np.array_split(np.arange(n), 4)):
        frame.iloc[part].to_parquet(path / f"part-{i}.parquet")
    return path
