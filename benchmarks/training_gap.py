"""Where wb.train's time goes against xgboost.train: setup, seconds per round, the rest.

The same training (the data and parameters of ``benchmarks/training.py``, validation set
evaluated with logloss and AUC) run four ways, interleaved, on one ``wb.start_cluster()``:

- ``xgboost.train`` in this process (the cluster idle beside it);
- ``xgboost.train`` inside one task on the worker, on the worker's blocks concatenated: the cost
  of training inside a worker process, without ``xgboost.dask``;
- plain ``xgboost.dask`` on the same persisted blocks;
- ``wb.train(train, valid)`` on the persisted datasets;

and the worker task and ``wb.train`` again with Dask's sampling timers left as Dask sets them
(``workbench.train.ease-monitoring: false``; ``workbench/training/monitoring.py`` says what
``wb.train`` eases and why): what those timers cost.

A callback stamps the start and every round, so each run splits into setup (before the first
round: matrices, tracker, the workbench's preparation), the rounds (with their median), and
what follows the last round.

    python benchmarks/training_gap.py --rows 2000000 --rounds 100 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from training import METRICS, PARAMS, XGB, make_data, write_parts  # type: ignore[import-not-found]
from xgboost.callback import TrainingCallback

STAMPS: list[float] = []


class Stamp(TrainingCallback):
    """Record the wall clock before training and after each round (in this process)."""

    def before_training(self, model: Any) -> Any:
        """Start the record."""
        STAMPS.clear()
        STAMPS.append(time.time())
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        """Stamp the round."""
        STAMPS.append(time.time())
        return False


def stamps() -> list[float]:
    return list(STAMPS)


def in_task(parts: list[list[np.ndarray]], rounds: int) -> list[float]:
    """``xgboost.train`` on this worker's blocks, with the worker's threads."""
    import xgboost
    from distributed import get_worker

    n = get_worker().state.nthreads
    X, y, Xv, yv = (np.concatenate(p) for p in parts)
    with xgboost.config_context(nthread=n):
        train = xgboost.QuantileDMatrix(X, y, nthread=n)
        valid = xgboost.QuantileDMatrix(Xv, yv, ref=train, nthread=n)
        xgboost.train(
            {**XGB, "nthread": n, "eval_metric": METRICS},
            train,
            rounds,
            evals=[(valid, "valid")],
            verbose_eval=False,
            callbacks=[Stamp()],
        )
    return stamps()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import dask
    import dask.array as da
    import training_gap as tg  # by name, so that the workers use the same module's stamps
    import xgboost
    import xgboost.dask as dxgb
    from distributed import wait

    import workbench as wb
    from workbench.training import monitoring
    from workbench.training.backends.xgboost import train as wbx

    data = make_data(args.rows)
    X, y, Xv, yv = data
    here = str(Path(__file__).parent)
    rounds = args.rounds

    def single() -> list[float]:
        train = xgboost.QuantileDMatrix(X, y)
        valid = xgboost.QuantileDMatrix(Xv, yv, ref=train)
        xgboost.train(
            {**XGB, "nthread": 2, "eval_metric": METRICS},
            train,
            rounds,
            evals=[(valid, "valid")],
            verbose_eval=False,
            callbacks=[tg.Stamp()],
        )
        return tg.stamps()

    single()  # warm-up, before any cluster sets this process's environment
    make_callbacks = wbx._make_callbacks
    wbx._make_callbacks = lambda *a: [*make_callbacks(*a), tg.Stamp()]  # stamps wb's rounds too
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, wb.start_cluster() as cluster:
        path = Path(tmp)
        write_parts(path / "train", X, y, max(4, len(X) // 250_000))
        write_parts(path / "valid", Xv, yv, 2)
        c = cluster.get_client()
        c.run(sys.path.insert, 0, here)
        train = wb.load(path / "train", target="y", client=c).persist(client=c)
        valid = wb.load(path / "valid", target="y", client=c).persist(client=c)
        k = max(4, len(X) // 250_000)
        arrays = c.persist(
            [
                da.from_array(X, chunks=(-(-len(X) // k), -1)),
                da.from_array(y, chunks=-(-len(X) // k)),
                da.from_array(Xv, chunks=(-(-len(Xv) // 2), -1)),
                da.from_array(yv, chunks=-(-len(Xv) // 2)),
            ]
        )
        wait(arrays)
        dX, dy, dXv, dyv = arrays
        blocks = [c.compute(list(a.to_delayed().ravel())) for a in arrays]

        def task_as_is() -> list[float]:
            return c.submit(tg.in_task, blocks, rounds, pure=False).result()

        def task() -> list[float]:  # with the timers eased as wb.train eases them
            with monitoring.paused(c, list(c.scheduler_info()["workers"]), "benchmark"):
                return task_as_is()

        def plain() -> list[float]:
            d = dxgb.DaskQuantileDMatrix(c, dX, dy)
            dv = dxgb.DaskQuantileDMatrix(c, dXv, dyv, ref=d)
            dxgb.train(
                c,
                {**XGB, "eval_metric": METRICS},
                d,
                rounds,
                evals=[(dv, "valid")],
                verbose_eval=False,
                callbacks=[tg.Stamp()],
            )
            return next(iter(c.run(tg.stamps).values()))

        def workbench() -> list[float]:
            wb.train(train, valid, rounds=rounds, params=PARAMS, client=c, progress=False)
            return next(iter(c.run(tg.stamps).values()))

        def workbench_as_is() -> list[float]:
            with dask.config.set({"workbench.train.ease-monitoring": False}):
                return workbench()

        runs = {
            "xgboost.train, this process": single,
            "xgboost.train in a worker task, timers eased": task,
            "xgboost.dask": plain,
            "wb.train(train, valid)": workbench,
            "xgboost.train in a worker task, Dask's timers as they are": task_as_is,
            "wb.train(train, valid), ease-monitoring: false": workbench_as_is,
        }
        for run in runs.values():  # warm-up of each path on the cluster
            if run is not single:
                run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.time()
                s = run()
                end = time.time()
                per = float(np.median(np.diff(s)))
                results.setdefault(name, []).append((end - start, s[0] - start, per, end - s[-1]))
    print(
        f"{len(X):,} training rows (+{len(Xv):,} validation), {rounds} rounds, "
        f"median of {args.repeats}"
    )
    print("| run | seconds | setup | s per round (median) | after the last round |")
    print("|---|---|---|---|---|")
    for name, v in results.items():
        cols = [statistics.median(x[i] for x in v) for i in range(4)]
        print(f"| {name} | {cols[0]:.2f} | {cols[1]:.2f} | {cols[2]:.3f} | {cols[3]:.2f} |")


if __name__ == "__main__":
    main()
