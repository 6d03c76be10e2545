"""Training throughput: wb.train against single-process XGBoost, plain xgboost.dask and LightGBM.

On the same in-memory data (HIGGS-shaped: 28 float features, binary target; 90% to train on,
10% to validate) and the same parameters, with the data already in memory:

(a)  ``wb.train(train, valid)`` with its defaults on the default local cluster
     (``wb.start_cluster()``), the datasets persisted: the validation set is evaluated each
     round, the training set is not;
(a=) the same with ``eval_train=True``: both sets evaluated each round, the work of (b)-(d);
(b)  single-process ``xgboost.train`` on ``QuantileDMatrix``es of the NumPy arrays;
(c)  plain ``xgboost.dask`` on a default ``LocalCluster()`` (``DaskDMatrix``es of persisted
     Dask arrays), the training set in ``evals`` as its documentation shows, and the
     validation set;
(d)  single-process ``lightgbm.train``, both sets in ``valid_sets``.

Each run includes building its matrices. Prints rows x rounds per second for each, the ratios
(a)/(c) (the defaults), (a=)/(c) and (a=)/(b) (the same work), and the peak memory of the
workers during (a) against the raw array size. Repeats interleave, the median is reported.

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


def run_workbench(path: Path, rounds: int, eval_train: bool) -> tuple[float, int, int]:
    import workbench as wb

    with wb.start_cluster() as cluster:
        client = cluster.get_client()
        train = wb.load(path / "train", target="y", client=client).persist(client=client)
        valid = wb.load(path / "valid", target="y", client=client).persist(client=client)
        rss = psutil.Process()
        base = sum(p.memory_info().rss for p in rss.children(recursive=True))
        with PeakRSS() as peak:
            t = time.perf_counter()
            wb.train(
                train,
                valid,
                rounds=rounds,
                params=PARAMS,
                client=client,
                progress=False,
                eval_train=eval_train or None,
            )
            seconds = time.perf_counter() - t
        return seconds, peak.peak, base


Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def run_single(data: Data, rounds: int) -> float:
    import xgboost

    X, y, Xv, yv = data
    t = time.perf_counter()
    d = xgboost.QuantileDMatrix(X, y, max_bin=PARAMS["max_bin"])
    dv = xgboost.QuantileDMatrix(Xv, yv, ref=d)
    xgboost.train(
        {**PARAMS, "objective": "binary:logistic", "eval_metric": ["logloss", "auc"]},
        d,
        rounds,
        evals=[(d, "train"), (dv, "valid")],
        verbose_eval=False,
    )
    return time.perf_counter() - t


def run_plain_dask(data: Data, rounds: int) -> float:
    import dask.array as da
    import xgboost.dask as dxgb
    from distributed import Client, LocalCluster

    X, y, Xv, yv = data
    with LocalCluster(dashboard_address=":0", host="127.0.0.1") as cluster, Client(cluster) as c:
        chunk = max(1, len(X) // 8)
        vchunk = max(1, len(Xv) // 2)
        dX, dy, dXv, dyv = c.persist(
            [
                da.from_array(X, chunks=(chunk, -1)),
                da.from_array(y, chunks=chunk),
                da.from_array(Xv, chunks=(vchunk, -1)),
                da.from_array(yv, chunks=vchunk),
            ]
        )
        t = time.perf_counter()
        d = dxgb.DaskDMatrix(c, dX, dy)
        dv = dxgb.DaskDMatrix(c, dXv, dyv)
        dxgb.train(
            c,
            {**PARAMS, "objective": "binary:logistic", "eval_metric": ["logloss", "auc"]},
            d,
            rounds,
            evals=[(d, "train"), (dv, "valid")],
            verbose_eval=False,
        )
        return time.perf_counter() - t


def run_lightgbm(data: Data, rounds: int) -> float:
    import lightgbm

    X, y, Xv, yv = data
    t = time.perf_counter()
    d = lightgbm.Dataset(X, y, params={"max_bin": 255, "verbose": -1})
    dv = lightgbm.Dataset(Xv, yv, reference=d, params={"max_bin": 255, "verbose": -1})
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
        valid_sets=[d, dv],
    )
    return time.perf_counter() - t


def write_parts(path: Path, X: np.ndarray, y: np.ndarray, parts: int) -> None:
    import pandas as pd

    path.mkdir(parents=True)
    for i, rows in enumerate(np.array_split(np.arange(len(X)), parts)):
        frame = pd.DataFrame(X[rows], columns=[f"f{j}" for j in range(X.shape[1])])
        frame["y"] = y[rows]
        frame.to_parquet(path / f"part-{i:03d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X, y = make_data(args.rows)
    cut = int(len(X) * 0.9)
    data = (X[:cut], y[:cut], X[cut:], y[cut:])
    names = {
        "a": "wb.train(train, valid), defaults",
        "a=": "wb.train(train, valid, eval_train=True)",
        "b": "xgboost.train, QuantileDMatrix, 1 process",
        "c": "xgboost.dask, default LocalCluster()",
        "d": "lightgbm.train, 1 process",
    }
    times: dict[str, list[float]] = {k: [] for k in names}
    peaks, bases = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        write_parts(path / "train", data[0], data[1], max(2, cut // 250_000))
        write_parts(path / "valid", data[2], data[3], 2)
        for _ in range(args.repeats):
            seconds, peak, base = run_workbench(path, args.rounds, eval_train=False)
            times["a"].append(seconds)
            peaks.append(peak)
            bases.append(base)
            times["a="].append(run_workbench(path, args.rounds, eval_train=True)[0])
            times["b"].append(run_single(data, args.rounds))
            times["c"].append(run_plain_dask(data, args.rounds))
            times["d"].append(run_lightgbm(data, args.rounds))
    work = cut * args.rounds
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{cut:,} training rows (+{len(X) - cut:,} validation) x 28 features, {args.rounds} "
        f"rounds, {args.repeats} repeats, {psutil.cpu_count()} cores"
    )
    for k, name in names.items():
        runs = ", ".join(f"{t:.2f}" for t in times[k])
        print(f"({k:<2}) {name:<42} {work / median[k]:>12,.0f} rows*rounds/s  [{runs}] s")
    print(f"(a)/(c)  throughput: {median['c'] / median['a']:.3f}  (defaults; goal >= 1.25)")
    print(f"(a=)/(c) throughput: {median['c'] / median['a=']:.3f}  (the same work)")
    print(f"(a=)/(b) throughput: {median['b'] / median['a=']:.3f}  (the same work; goal >= 0.95)")
    print(f"(a)/(d)  throughput: {median['d'] / median['a']:.3f}")
    raw = sum(a.nbytes for a in data)
    print(
        f"peak worker memory during (a): {max(peaks) / 2**20:,.0f} MiB "
        f"({max(peaks) / raw:.2f}x the raw arrays of {raw / 2**20:,.0f} MiB; "
        f"{min(bases) / 2**20:,.0f} MiB before training)"
    )


if __name__ == "__main__":
    main()
