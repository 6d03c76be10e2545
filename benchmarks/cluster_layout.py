"""Benchmark: LocalCluster layout for distributed XGBoost training on CPU.

Question: on a small CPU machine, is one worker process with two threads
(1x2) faster than two worker processes with one thread each (2x1) for
``xgboost.dask.train``?

What is measured
----------------
* A synthetic binary classification problem (float32 normal features, label
  from a noisy linear + nonlinear score) is generated once in the client
  process, split into ~8 row chunks and scattered evenly onto the workers of
  each fresh cluster (the scatter is waited on and is *not* timed).
* The timed region is only::

      xgboost.dask.train(client, params, DaskQuantileDMatrix(client, X, y),
                         num_boost_round=rounds)

  i.e. quantile sketching / DMatrix construction on the workers plus boosting,
  with ``tree_method="hist"``, ``max_depth=6`` and ``nthread`` equal to the
  threads per worker.
* Each repeat starts a fresh ``LocalCluster`` and the layouts are interleaved
  (A B A B ...) because the machine is noisy.  Medians are reported together
  with the ratio ``time(2x1) / time(1x2)``; a ratio > 1 means 1x2 is faster.
* XGBoost is imported on every worker before the clock starts.
* As a sanity check the script also reports the worker CPU seconds per wall
  second during training (should be close to 2 for both layouts if both
  cores are busy), the CPU used by *other* processes on the machine during
  the timed region (``other/wall``; anything well above ~0.1 means the run
  was contended and its timing is suspect), and holdout accuracy (should
  match across layouts).

Nothing is asserted; timings are printed only.

Run::

    python benchmarks/cluster_layout.py                  # 2M rows, 28 features
    python benchmarks/cluster_layout.py --rows 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass

import dask.array as da
import numpy as np
import psutil
import xgboost
import xgboost.dask  # explicit: `import xgboost` alone does not expose xgboost.dask
from dask import delayed
from distributed import Client, LocalCluster, wait

LAYOUTS: list[tuple[int, int]] = [(1, 2), (2, 1)]  # (n_workers, threads_per_worker)
N_CHUNKS = 8
HOLDOUT_ROWS = 100_000
SEED = 0


@dataclass
class Run:
    """One timed training run."""

    layout: tuple[int, int]
    seconds: float
    cpu_per_wall: float
    other_per_wall: float
    accuracy: float


def make_problem(rows: int, features: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic binary problem with real (linear + nonlinear) signal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    w = rng.standard_normal(features).astype(np.float32)
    score = x @ w / np.sqrt(features)
    score += 0.8 * np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    score += 0.5 * (x[:, 3] ** 2 - 1.0)
    score += rng.standard_normal(rows, dtype=np.float32)  # label noise
    y = (score > 0).astype(np.float32)
    return x, y


def scatter_dask_arrays(
    client: Client, x: np.ndarray, y: np.ndarray, n_chunks: int
) -> tuple[da.Array, da.Array]:
    """Scatter row chunks evenly onto the workers and wrap them as dask arrays."""
    bounds = np.linspace(0, len(x), n_chunks + 1, dtype=np.int64)
    x_parts = [x[a:b] for a, b in itertools.pairwise(bounds)]
    y_parts = [y[a:b] for a, b in itertools.pairwise(bounds)]
    workers = list(client.scheduler_info()["workers"])
    x_futs = []
    y_futs = []
    # Pin chunk i of X and y to the same worker, round-robin over workers.
    for i, (xp, yp) in enumerate(zip(x_parts, y_parts, strict=True)):
        target = [workers[i % len(workers)]]
        x_futs.append(client.scatter(xp, workers=target, hash=False))
        y_futs.append(client.scatter(yp, workers=target, hash=False))
    wait(x_futs + y_futs)
    x_da = da.concatenate(
        [
            da.from_delayed(delayed(f), shape=p.shape, dtype=p.dtype)
            for f, p in zip(x_futs, x_parts, strict=True)
        ]
    )
    y_da = da.concatenate(
        [
            da.from_delayed(delayed(f), shape=p.shape, dtype=p.dtype)
            for f, p in zip(y_futs, y_parts, strict=True)
        ]
    )
    return x_da, y_da


def _warm_worker() -> None:
    """Import XGBoost in the worker so import cost is not in the timed region."""
    import xgboost.dask  # noqa: F401


def _worker_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def system_busy_cpu() -> float:
    """Machine-wide non-idle CPU seconds so far (all processes, all cores)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def total_worker_cpu(client: Client) -> float:
    return sum(client.run(_worker_cpu_seconds).values())


def run_once(
    layout: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    rounds: int,
) -> Run:
    n_workers, threads = layout
    budget = int(psutil.virtual_memory().total * 0.7)
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            memory_limit=budget // n_workers,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_warm_worker)
        x_da, y_da = scatter_dask_arrays(client, x, y, N_CHUNKS)
        params = {
            "tree_method": "hist",
            "objective": "binary:logistic",
            "max_depth": 6,
            "nthread": threads,
        }
        cpu0 = total_worker_cpu(client)
        sys0 = system_busy_cpu()
        t0 = time.perf_counter()
        out = xgboost.dask.train(
            client,
            params,
            xgboost.dask.DaskQuantileDMatrix(client, x_da, y_da),
            num_boost_round=rounds,
        )
        seconds = time.perf_counter() - t0
        busy = system_busy_cpu() - sys0
        cpu = total_worker_cpu(client) - cpu0
    booster: xgboost.Booster = out["booster"]
    pred = booster.inplace_predict(x_test)
    accuracy = float(np.mean((pred > 0.5) == (y_test > 0.5)))
    return Run(layout, seconds, cpu / seconds, max(busy - cpu, 0.0) / seconds, accuracy)


def name(layout: tuple[int, int]) -> str:
    return f"{layout[0]}w x {layout[1]}t"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=28)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    x_all, y_all = make_problem(args.rows + HOLDOUT_ROWS, args.features)
    x, y = x_all[: args.rows], y_all[: args.rows]
    x_test, y_test = x_all[args.rows :], y_all[args.rows :]
    print(
        f"rows={args.rows:,} features={args.features} rounds={args.rounds} "
        f"repeats={args.repeats} chunks={N_CHUNKS} cores={psutil.cpu_count()} "
        f"xgboost={xgboost.__version__} pos_rate={y.mean():.3f}",
        flush=True,
    )

    runs: list[Run] = []
    wall0 = time.perf_counter()
    for rep in range(args.repeats):
        for layout in LAYOUTS:  # interleaved: A B A B ...
            r = run_once(layout, x, y, x_test, y_test, args.rounds)
            runs.append(r)
            print(
                f"  repeat {rep + 1} {name(layout)}: {r.seconds:7.2f} s  "
                f"cpu/wall={r.cpu_per_wall:4.2f}  other/wall={r.other_per_wall:4.2f}  "
                f"acc={r.accuracy:.4f}",
                flush=True,
            )

    medians: dict[tuple[int, int], float] = {}
    print()
    print(
        f"{'layout':<10} {'median s':>9} {'runs s':<24} {'cpu/wall':>8} "
        f"{'other/wall':>10} {'acc':>7}"
    )
    for layout in LAYOUTS:
        mine = [r for r in runs if r.layout == layout]
        medians[layout] = statistics.median(r.seconds for r in mine)
        each = ", ".join(f"{r.seconds:.2f}" for r in mine)
        cpu = statistics.median(r.cpu_per_wall for r in mine)
        other = statistics.median(r.other_per_wall for r in mine)
        acc = statistics.median(r.accuracy for r in mine)
        print(
            f"{name(layout):<10} {medians[layout]:>9.2f} {each:<24} {cpu:>8.2f} "
            f"{other:>10.2f} {acc:>7.4f}"
        )
    ratio = medians[(2, 1)] / medians[(1, 2)]
    print(f"ratio time(2w x 1t) / time(1w x 2t) = {ratio:.2f}  (>1: 1x2 faster)")
    print(f"total benchmark wall time: {time.perf_counter() - wall0:.1f} s")


if __name__ == "__main__":
    main()
