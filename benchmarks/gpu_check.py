"""GPU check: run on a machine with an NVIDIA GPU, in one command of a few minutes.

Prints the hardware, runs ``tests/gpu`` with pytest, times ``start_cluster()`` (local-gpu)
against a bare ``dask_cuda.LocalCUDACluster`` with the same options, as a ratio, and compares
training throughput on the GPU (``benchmarks/training.py``'s comparison with CuPy data):
``wb.train`` on ``local-gpu`` against single-process ``xgboost.train`` on a ``QuantileDMatrix``
of CuPy arrays and plain ``xgboost.dask`` on a bare ``LocalCUDACluster``. Writes
everything it prints to ``$OUT/gpu_check.txt`` when ``OUT`` is set.

    PYTHONPATH=$PWD python benchmarks/gpu_check.py
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np


def _time_clusters() -> None:
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    import workbench as wb

    t = time.perf_counter()
    with wb.start_cluster("local-gpu", rmm_pool_size=None) as cluster:
        cluster.get_client().submit(sum, [1]).result()
        print(repr(cluster))
    ours = time.perf_counter() - t
    t = time.perf_counter()
    with (
        LocalCUDACluster(
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            device_memory_limit=0.8,
            threads_per_worker=1,
        ) as bare,
        Client(bare) as c,
    ):
        c.submit(sum, [1]).result()
    peer = time.perf_counter() - t
    print(
        f"start+first task+close: workbench {ours:.2f}s, bare LocalCUDACluster {peer:.2f}s, "
        f"ratio {ours / peer:.2f}"
    )


def _time_training(rows: int = 2_000_000, rounds: int = 100) -> None:
    import tempfile

    import cupy
    import dask.array as da
    import pandas as pd
    import xgboost
    import xgboost.dask as dxgb
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    import workbench as wb

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from training import PARAMS, make_data

    X, y = make_data(rows)
    params = {**PARAMS, "objective": "binary:logistic", "eval_metric": ["logloss", "auc"]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "higgs"
        path.mkdir()
        for i, idx in enumerate(np.array_split(np.arange(rows), 8)):
            frame = pd.DataFrame(X[idx], columns=[f"f{j}" for j in range(X.shape[1])])
            frame.assign(y=y[idx]).to_parquet(path / f"part-{i}.parquet")
        with wb.start_cluster("local-gpu") as cluster:
            client = cluster.get_client()
            ds = wb.load(path, target="y", client=client).persist(client=client)
            t = time.perf_counter()
            wb.train(ds, rounds=rounds, params=PARAMS, client=client, progress=False)
            a = time.perf_counter() - t
    t = time.perf_counter()
    d = xgboost.QuantileDMatrix(cupy.asarray(X), cupy.asarray(y), max_bin=PARAMS["max_bin"])
    xgboost.train({**params, "device": "cuda"}, d, rounds, evals=[(d, "train")], verbose_eval=False)
    b = time.perf_counter() - t
    with (
        LocalCUDACluster(host="127.0.0.1", dashboard_address="127.0.0.1:0") as bare,
        Client(bare) as c,
    ):
        chunk = rows // 8
        dX = da.from_array(X, chunks=(chunk, -1)).map_blocks(cupy.asarray)
        dy = da.from_array(y, chunks=chunk).map_blocks(cupy.asarray)
        dX, dy = c.persist([dX, dy])
        t = time.perf_counter()
        dd = dxgb.DaskDMatrix(c, dX, dy)
        dxgb.train(c, {**params, "device": "cuda"}, dd, rounds, evals=[(dd, "train")])
        cc = time.perf_counter() - t
    work = rows * rounds
    print(f"GPU training, {rows:,} rows x 28 features, {rounds} rounds:")
    print(f"  (a) wb.train local-gpu           {a:7.2f} s  {work / a:14,.0f} rows*rounds/s")
    print(f"  (b) xgboost.train, CuPy, 1 proc  {b:7.2f} s  {work / b:14,.0f} rows*rounds/s")
    print(f"  (c) xgboost.dask LocalCUDACluster {cc:6.2f} s  {work / cc:14,.0f} rows*rounds/s")
    print(f"  (a)/(b) throughput {b / a:.3f}, (a)/(c) throughput {cc / a:.3f}")


def main() -> int:
    buf = io.StringIO()
    root = Path(__file__).resolve().parents[1]

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            sys.__stdout__.write(s)
            buf.write(s)
            return len(s)

    with redirect_stdout(Tee()):
        import workbench as wb

        print(repr(wb.hardware()))
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/gpu"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        print(tests.stdout[-6000:], tests.stderr[-2000:])
        _time_clusters()
        _time_training()
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.txt").write_text(buf.getvalue())
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
