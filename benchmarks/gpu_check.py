"""GPU check: run on a machine with an NVIDIA GPU, in one command of a few minutes.

Prints the hardware, then three things, each with a first untimed run (CUDA contexts, kernel
compilation, NCCL) and repeats interleaved (one of each in turn, the median reported):

1. start + first task + close of ``start_cluster("local-gpu")`` against a bare
   ``dask_cuda.LocalCUDACluster`` with the same options, as a ratio;
2. training throughput on the GPU at the same work (``benchmarks/training.py``'s data: 28
   float features, binary target, 90% to train on, 10% to validate; the validation set
   evaluated each round with logloss and AUC, the training set not; the data already in
   memory, each run building its own matrices): ``wb.train(train, valid)`` on ``local-gpu``,
   single-process ``xgboost.train`` on ``QuantileDMatrix``es of CuPy arrays, and plain
   ``xgboost.dask`` on a bare ``LocalCUDACluster`` (CuPy chunks, persisted and waited on
   before the clock starts). Both clusters have one worker per GPU and the same RMM pool;
3. ``tests/gpu`` with pytest (with a time limit, so that the script always ends).

Writes everything it prints to ``$OUT/gpu_check.txt`` when ``OUT`` is set.

    PYTHONPATH=$PWD python benchmarks/gpu_check.py --rows 2000000 --rounds 100 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POOL = "4GB"  # the same RMM pool for both clusters, small enough to leave the GPU shared


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each run once untimed (a warm-up), then ``repeats`` rounds of one of each in turn."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(run())
    return times


def _time_clusters(repeats: int) -> None:
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    import workbench as wb

    def ours() -> float:
        t = time.perf_counter()
        with wb.start_cluster("local-gpu", rmm_pool_size=POOL) as cluster:
            cluster.get_client().submit(sum, [1]).result()
        return time.perf_counter() - t

    def bare() -> float:
        t = time.perf_counter()
        with (
            LocalCUDACluster(
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                rmm_pool_size=POOL,
                device_memory_limit=0.8,
                threads_per_worker=1,
            ) as cluster,
            Client(cluster) as c,
        ):
            c.submit(sum, [1]).result()
        return time.perf_counter() - t

    times = interleaved({"workbench": ours, "bare": bare}, repeats)
    a, b = (statistics.median(times[k]) for k in ("workbench", "bare"))
    print(
        f"start+first task+close, median of {repeats} after a warm-up: workbench {a:.2f}s, "
        f"bare LocalCUDACluster {b:.2f}s, ratio {a / b:.2f} (all: {times})"
    )


def _time_training(rows: int, rounds: int, repeats: int) -> None:
    import cupy
    import dask.array as da
    import pandas as pd
    import xgboost
    import xgboost.dask as dxgb
    from dask_cuda import LocalCUDACluster
    from distributed import Client, wait

    import workbench as wb

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from training import PARAMS, make_data

    X, y = make_data(rows)
    cut = rows * 9 // 10
    Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
    params = {
        **PARAMS,
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "device": "cuda",
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        for name, (A, b, parts) in {"train": (Xt, yt, 8), "valid": (Xv, yv, 2)}.items():
            (Path(tmp) / name).mkdir()
            for i, idx in enumerate(np.array_split(np.arange(len(A)), parts)):
                frame = pd.DataFrame(A[idx], columns=[f"f{j}" for j in range(A.shape[1])])
                frame.assign(y=b[idx]).to_parquet(Path(tmp) / name / f"part-{i}.parquet")
        cluster = stack.enter_context(wb.start_cluster("local-gpu", rmm_pool_size=POOL))
        client = cluster.get_client()
        train = wb.load(Path(tmp) / "train", target="y", client=client).persist(client=client)
        valid = wb.load(Path(tmp) / "valid", target="y", client=client).persist(client=client)
        bare = stack.enter_context(
            LocalCUDACluster(
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                rmm_pool_size=POOL,
                threads_per_worker=1,
            )
        )
        c = stack.enter_context(Client(bare, set_as_default=False))
        n = len(bare.workers)
        arrays = [
            da.from_array(Xt, chunks=(-(-len(Xt) // (4 * n)), -1)),
            da.from_array(yt, chunks=-(-len(yt) // (4 * n))),
            da.from_array(Xv, chunks=(-(-len(Xv) // n), -1)),
            da.from_array(yv, chunks=-(-len(yv) // n)),
        ]
        dX, dy, dXv, dyv = c.persist([a.map_blocks(cupy.asarray) for a in arrays])
        wait([dX, dy, dXv, dyv])
        info: dict[str, Any] = {}

        def run_wb() -> float:
            t = time.perf_counter()
            model = wb.train(
                train, valid, rounds=rounds, params=PARAMS, client=client, progress=False
            )
            info.update(device=model.params["device"], workers=model.info["workers"])
            return time.perf_counter() - t

        def run_single() -> float:
            t = time.perf_counter()
            d = xgboost.QuantileDMatrix(cupy.asarray(Xt), cupy.asarray(yt), max_bin=256)
            dv = xgboost.QuantileDMatrix(cupy.asarray(Xv), cupy.asarray(yv), ref=d)
            xgboost.train(params, d, rounds, evals=[(dv, "valid")], verbose_eval=False)
            return time.perf_counter() - t

        def run_dask() -> float:
            t = time.perf_counter()
            d = dxgb.DaskQuantileDMatrix(c, dX, dy, max_bin=256)
            dv = dxgb.DaskQuantileDMatrix(c, dXv, dyv, ref=d)
            dxgb.train(c, params, d, rounds, evals=[(dv, "valid")], verbose_eval=False)
            return time.perf_counter() - t

        runs = {"a": run_wb, "b": run_single, "c": run_dask}
        times = interleaved(runs, repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    work = cut * rounds
    print(
        f"GPU training at the same work, {cut:,} training rows x 28 features (+{rows - cut:,} "
        f"validation rows evaluated each round), {rounds} rounds, median of {repeats} "
        f"interleaved repeats after a warm-up (wb.train: device {info.get('device')}, "
        f"{info.get('workers')} worker(s)):"
    )
    names = {
        "a": "(a) wb.train(train, valid) local-gpu",
        "b": "(b) xgboost.train, CuPy, 1 process",
        "c": "(c) xgboost.dask LocalCUDACluster",
    }
    for key, label in names.items():
        print(f"  {label:38s} {med[key]:7.2f} s  {work / med[key]:14,.0f} rows*rounds/s")
    print(f"  throughput (a)/(b) {med['b'] / med['a']:.3f}, (a)/(c) {med['c'] / med['a']:.3f}")
    print(f"  all runs: { {k: [round(s, 2) for s in v] for k, v in times.items()} }")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tests-timeout", type=int, default=360, help="seconds for tests/gpu")
    args = parser.parse_args()
    buf = io.StringIO()

    terminal = sys.stdout

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            terminal.write(s)
            terminal.flush()
            buf.write(s)
            return len(s)

    code = 1
    try:
        with redirect_stdout(Tee()):
            import workbench as wb

            print(repr(wb.hardware()))
            _time_clusters(max(1, args.repeats - 1))
            _time_training(args.rows, args.rounds, args.repeats)
            t = time.perf_counter()
            try:
                tests = subprocess.run(
                    [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/gpu"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=args.tests_timeout,
                )
                print(tests.stdout[-8000:], tests.stderr[-2000:])
                code = tests.returncode
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                print(out[-8000:], f"\ntests/gpu did not finish within {args.tests_timeout}s")
            print(f"tests/gpu: {time.perf_counter() - t:.0f}s, exit code {code}")
    finally:
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_check.txt").write_text(buf.getvalue())
    return code


if __name__ == "__main__":
    sys.exit(main())
