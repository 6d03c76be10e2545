"""Training throughput: wb.train against single-process XGBoost and plain xgboost.dask.

The rows of the table in issue 14 (and of ../shared/measure/training_side_by_side.py), on the
same data and parameters: a binary task, 28 dense float32 features, ``max_depth=8``,
``eta=0.1``, 10% of the rows held out as the validation set.

(1) ``xgboost.train`` on a ``QuantileDMatrix``, no evals: pure speed, the 1.00x reference;
(2) the same with ``evals=[(valid)]``, logloss and AUC: the work of (4);
(3) plain ``xgboost.dask`` on a default ``LocalCluster()``, ``DaskQuantileDMatrix``es of
    persisted Dask arrays, ``evals=[(valid)]``;
(4) ``wb.train(train, valid)`` with its defaults (the validation set evaluated each round);
(5) ``wb.train(train)`` with its defaults (nothing evaluated: the work of (1)).

Every run includes building its matrices; the data is in memory first (NumPy arrays for
(1)-(2); for (3)-(5) persisted on the workers, every ``persist`` waited on before a clock
starts). The single-process runs have no cluster beside them; each cluster gets one untimed
warm-up training after it starts. Repeats interleave (1)-(5) and the median is reported, with
the CPU seconds of every process of the run (this one and its workers) to show the same work,
and each repeat's own ratio against its peer (this machine's speed drifts by 10% over minutes).

    python benchmarks/training.py --rows 2000000 --rounds 100 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

PARAMS = {"max_depth": 8, "learning_rate": 0.1}
XGB = {**PARAMS, "tree_method": "hist", "objective": "binary:logistic"}
METRICS = ["logloss", "auc"]
FEATURES = 28

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def make_data(rows: int, seed: int = 0) -> Data:
    """``(X, y, X_valid, y_valid)``: a noisy linear boundary, the first 10% held out."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    w = rng.standard_normal(FEATURES).astype(np.float32)
    y = ((X @ w + rng.standard_normal(rows).astype(np.float32)) > 0).astype(np.int8)
    held = rows // 10
    return X[held:], y[held:], X[:held], y[:held]


def write_parts(path: Path, X: np.ndarray, y: np.ndarray, parts: int) -> None:
    import pandas as pd

    path.mkdir(parents=True)
    for i, rows in enumerate(np.array_split(np.arange(len(X)), parts)):
        frame = pd.DataFrame(X[rows], columns=[f"f{j}" for j in range(X.shape[1])])
        frame["y"] = y[rows]
        frame.to_parquet(path / f"part-{i:04d}.parquet", index=False)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and all its children (the workers)."""
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()`` (CPU of this process and its live children)."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, cpu_seconds() - cpu


def peak_rss() -> int:
    """The peak resident memory of the calling process in bytes since it started (on workers).

    The kernel keeps the figure, so nothing samples during the timed runs.
    """
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def single(data: Data, rounds: int, evals: bool) -> None:
    import xgboost

    X, y, Xv, yv = data
    train = xgboost.QuantileDMatrix(X, y)
    if not evals:
        xgboost.train({**XGB, "nthread": os.cpu_count()}, train, rounds)
        return
    valid = xgboost.QuantileDMatrix(Xv, yv, ref=train)
    xgboost.train(
        {**XGB, "nthread": os.cpu_count(), "eval_metric": METRICS},
        train,
        rounds,
        evals=[(valid, "valid")],
        verbose_eval=False,
    )


def plain_dask(data: Data, rounds: int, results: dict[str, list[tuple[float, float]]]) -> None:
    """(3): a default ``LocalCluster()``, the arrays persisted, one warm-up, then timed."""
    import dask.array as da
    import xgboost.dask as dxgb
    from distributed import Client, LocalCluster, wait

    X, y, Xv, yv = data
    parts = max(4, len(X) // 250_000)
    with LocalCluster(dashboard_address=":0", host="127.0.0.1") as cluster, Client(cluster) as c:
        chunk = -(-len(X) // parts)
        vchunk = -(-len(Xv) // 2)
        arrays = c.persist(
            [
                da.from_array(X, chunks=(chunk, -1)),
                da.from_array(y, chunks=chunk),
                da.from_array(Xv, chunks=(vchunk, -1)),
                da.from_array(yv, chunks=vchunk),
            ]
        )
        wait(arrays)
        dX, dy, dXv, dyv = arrays

        def run(n: int) -> None:
            d = dxgb.DaskQuantileDMatrix(c, dX, dy)
            dv = dxgb.DaskQuantileDMatrix(c, dXv, dyv, ref=d)
            dxgb.train(
                c, {**XGB, "eval_metric": METRICS}, d, n, evals=[(dv, "valid")], verbose_eval=False
            )

        run(2)  # warm-up: imports and the first tracker on the workers
        results["dask"].append(timed(lambda: run(rounds)))


def workbench_runs(
    path: Path, rounds: int, results: dict[str, list[tuple[float, float]]], peaks: list[int]
) -> str:
    """(4) and (5) on the default local cluster, the datasets persisted; returns its layout."""
    import workbench as wb

    with wb.start_cluster() as cluster:
        client = cluster.get_client()
        train = wb.load(path / "train", target="y", client=client).persist(client=client)
        valid = wb.load(path / "valid", target="y", client=client).persist(client=client)
        layout = ", ".join(f"{n} threads" for n in client.nthreads().values())
        wb.train(train, valid, rounds=2, params=PARAMS, client=client, progress=False)  # warm-up

        def with_valid() -> None:
            wb.train(train, valid, rounds=rounds, params=PARAMS, client=client, progress=False)

        def alone() -> None:
            wb.train(train, rounds=rounds, params=PARAMS, client=client, progress=False)

        results["wb valid"].append(timed(with_valid))
        # the workers are new with this cluster: their peak so far is loading, the warm-up
        # and this training
        peaks.append(sum(client.run(peak_rss).values()))
        results["wb"].append(timed(alone))
    return f"{len(layout.split(','))} worker(s): {layout}"


NAMES = {
    "single": "`xgboost.train` on a `QuantileDMatrix`, no evals",
    "single valid": "the same with `evals=[(valid)]`, logloss + auc",
    "dask": "plain `xgboost.dask` on a default `LocalCluster()`, evals=[valid]",
    "wb valid": "`wb.train(train, valid)` (defaults)",
    "wb": "`wb.train(train)` (defaults, no validation set)",
}
# the run doing the same work as each row
EQUAL = {
    "single": "single",
    "single valid": "single valid",
    "dask": "single valid",
    "wb valid": "single valid",
    "wb": "single",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    data = make_data(args.rows)
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in NAMES}
    peaks: list[int] = []
    layouts: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        write_parts(path / "train", data[0], data[1], max(4, len(data[0]) // 250_000))
        write_parts(path / "valid", data[2], data[3], 2)
        single(data, 2, evals=True)  # warm-up: imports, first allocations
        for r in range(args.repeats):
            steps: list[Callable[[], None]] = [
                lambda: results["single"].append(
                    timed(lambda: single(data, args.rounds, evals=False))
                ),
                lambda: results["single valid"].append(
                    timed(lambda: single(data, args.rounds, evals=True))
                ),
                lambda: plain_dask(data, args.rounds, results),
                lambda: layouts.append(workbench_runs(path, args.rounds, results, peaks)),
            ]
            for step in steps[r % 4 :] + steps[: r % 4]:  # a different run first each repeat
                step()
            done = {k: f"{v[-1][0]:.1f}" for k, v in results.items()}
            print(f"repeat {r + 1}: {done}", flush=True)

    n = len(data[0]) * args.rounds
    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    print()
    print(
        f"{len(data[0]):,} training rows (+{len(data[2]):,} validation) x {FEATURES} float32 "
        f"features, depth {PARAMS['max_depth']}, eta {PARAMS['learning_rate']}, "
        f"{args.rounds} rounds; median of {args.repeats} interleaved repeats; "
        f"{psutil.cpu_count()} cores; wb.start_cluster(): {layouts[-1]}"
    )
    print()
    print(
        "| run | seconds | CPU seconds | rows x rounds / s | vs single-process "
        "| vs equal work | equal work, per repeat |"
    )
    print("|---|---|---|---|---|---|---|")
    for k, name in NAMES.items():
        peer = EQUAL[k]
        # each repeat's ratio against its own peer run (the same minutes of this machine)
        paired = [p[0] / w[0] for w, p in zip(results[k], results[peer], strict=True)]
        print(
            f"| {name} | {wall[k]:.1f} | {cpu[k]:.1f} | {n / wall[k] / 1e6:.2f}M "
            f"| {wall['single'] / wall[k]:.2f}x | {wall[peer] / wall[k]:.2f}x ({peer}) "
            f"| median {statistics.median(paired):.2f}x, "
            f"{min(paired):.2f}-{max(paired):.2f}x |"
        )
    raw = sum(a.nbytes for a in data)
    print()
    print(
        f"peak worker memory (loading and wb.train(train, valid)): {max(peaks) / 2**20:,.0f} MiB "
        f"({max(peaks) / raw:.2f}x the raw arrays of {raw / 2**20:,.0f} MiB)"
    )
    for k, v in results.items():
        print(f"  {k}: " + ", ".join(f"{w:.2f} s ({c:.1f} CPU s)" for w, c in v))


if __name__ == "__main__":
    main()
