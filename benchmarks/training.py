"""Training throughput: wb.train against single-process XGBoost, plain xgboost.dask and LightGBM.

On the same in-memory data (HIGGS-shaped: 28 float features, binary target) and the same
parameters, with the data already in memory:

(a) ``wb.train`` on the default local cluster (``wb.start_cluster()``), the dataset persisted;
(b) single-process ``xgboost.train`` on a ``QuantileDMatrix`` of the NumPy arrays;
(c) plain ``xgboost.dask`` on a default ``LocalCluster()`` (a ``DaskDMatrix`` of persisted
    Dask arrays), as its documentation shows;
(d) single-process ``lightgbm.train``.

Every run evaluates the training data each round (as ``wb.train`` does) and includes building
its matrix. Prints rows x rounds per second for each, the ratios (a)/(b) and (a)/(c), and the
peak memory of the workers during (a) against the raw array size. Repeats interleave, the
median is reported.

    python benchmarks/training.py --rows 2000000 --rounds 100 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

PARAMS = {"max_depth": 6, "eta": 0.1, "max_bin": 256, "tree_method": "hist"}


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 28)).astype(np.float32)
    logit = X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + 0.3 * np.abs(X[:, 4])
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return X, y


class PeakRSS:
    """The peak summed RSS of this process's children (the workers), sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def run_workbench(path: Path, rounds: int) -> tuple[float, int, int]:
    import workbench as wb

    with wb.start_cluster() as cluster:
        client = cluster.get_client()
        ds = wb.load(path, target="y", client=client).persist(client=client)
        rss = psutil.Process()
        base = sum(p.memory_info().rss for p in rss.children(recursive=True))
        with PeakRSS() as peak:
            t = time.perf_counter()
            wb.train(ds, rounds=rounds, params=PARAMS, client=client, progress=False)
            seconds = time.perf_counter() - t
        return seconds, peak.peak, base


def run_single(X: np.ndarray, y: np.ndarray, rounds: int) -> float:
    import xgboost

    t = time.perf_counter()
    d = xgboost.QuantileDMatrix(X, y, max_bin=PARAMS["max_bin"])
    xgboost.train(
        {**PARAMS, "objective": "binary:logistic", "eval_metric": ["logloss", "auc"]},
        d,
        rounds,
        evals=[(d, "train")],
        verbose_eval=False,
    )
    return time.perf_counter() - t


def run_plain_dask(X: np.ndarray, y: np.ndarray, rounds: int) -> float:
    import dask.array as da
    import xgboost.dask as dxgb
    from distributed import Client, LocalCluster

    with LocalCluster(dashboard_address=":0", host="127.0.0.1") as cluster, Client(cluster) as c:
        chunk = max(1, len(X) // 8)
        dX, dy = c.persist([da.from_array(X, chunks=(chunk, -1)), da.from_array(y, chunks=chunk)])
        t = time.perf_counter()
        d = dxgb.DaskDMatrix(c, dX, dy)
        dxgb.train(
            c,
            {**PARAMS, "objective": "binary:logistic", "eval_metric": ["logloss", "auc"]},
            d,
            rounds,
            evals=[(d, "train")],
            verbose_eval=False,
        )
        return time.perf_counter() - t


def run_lightgbm(X: np.ndarray, y: np.ndarray, rounds: int) -> float:
    import lightgbm

    t = time.perf_counter()
    d = lightgbm.Dataset(X, y, params={"max_bin": 255, "verbose": -1})
    lightgbm.train(
        {
            "objective": "binary",
            "metric": ["binary_logloss", "auc"],
            "max_depth": PARAMS["max_depth"],
            "num_leaves": 63,
            "learning_rate": PARAMS["eta"],
            "verbose": -1,
        },
        d,
        rounds,
        valid_sets=[d],
    )
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    X, y = make_data(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "higgs"
        path.mkdir()
        parts = max(2, args.rows // 250_000)
        for i, rows in enumerate(np.array_split(np.arange(args.rows), parts)):
            frame = pd.DataFrame(X[rows], columns=[f"f{j}" for j in range(X.shape[1])])
            frame["y"] = y[rows]
            frame.to_parquet(path / f"part-{i:03d}.parquet")
        times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
        peaks, bases = [], []
        for _ in range(args.repeats):
            seconds, peak, base = run_workbench(path, args.rounds)
            times["a"].append(seconds)
            peaks.append(peak)
            bases.append(base)
            times["b"].append(run_single(X, y, args.rounds))
            times["c"].append(run_plain_dask(X, y, args.rounds))
            times["d"].append(run_lightgbm(X, y, args.rounds))
    work = args.rows * args.rounds
    names = {
        "a": "wb.train, default local cluster",
        "b": "xgboost.train, QuantileDMatrix, 1 process",
        "c": "xgboost.dask, default LocalCluster()",
        "d": "lightgbm.train, 1 process",
    }
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.rows:,} rows x 28 features, {args.rounds} rounds, {args.repeats} repeats, "
        f"{psutil.cpu_count()} cores"
    )
    for k, name in names.items():
        runs = ", ".join(f"{t:.2f}" for t in times[k])
        print(f"({k}) {name:<45} {work / median[k]:>12,.0f} rows*rounds/s  [{runs}] s")
    print(f"(a)/(b) throughput: {median['b'] / median['a']:.3f}  (goal >= 0.95)")
    print(f"(a)/(c) throughput: {median['c'] / median['a']:.3f}  (goal >= 1.25)")
    print(f"(a)/(d) throughput: {median['d'] / median['a']:.3f}")
    raw = X.nbytes + y.nbytes
    print(
        f"peak worker memory during (a): {max(peaks) / 2**20:,.0f} MiB "
        f"({max(peaks) / raw:.2f}x the raw arrays of {raw / 2**20:,.0f} MiB; "
        f"{min(bases) / 2**20:,.0f} MiB before training)"
    )


if __name__ == "__main__":
    main()
