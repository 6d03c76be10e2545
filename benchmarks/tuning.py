"""Tuning: wb.tune's packed search with pruning against a plain loop of xgboost.dask trials.

On one cluster of 2 workers x 1 thread, a small binary table (HIGGS-like, ``--rows`` rows,
persisted and waited on before any clock starts), 16 trials x 200 rounds, early stopping after
20 rounds without improvement on the validation logloss, the same search space and the same
Optuna TPE sampler seed in every row:

(1) the peer: an Optuna study whose objective trains each trial with ``xgboost.dask.train``
    on ``DaskQuantileDMatrix``es of the persisted arrays (what a user writes today), one trial
    after another, no pruning;
(2) ``wb.tune(..., placement="packed", pruning=True)``: the workbench's default on such data;
(3) ``wb.tune(..., placement="packed", pruning=False)``: what packing alone gives;
(4) ``wb.tune(..., placement="gang", pruning=True)``: one distributed trial at a time, as for a
    table too big to copy to each worker;
(5) (2) recorded in MLflow (a SQLite store in a temporary folder, made before the clocks start:
    a new store's tables take a moment once): tracking's cost per trial, against a 200-round
    training's seconds.

Rows are interleaved, ``--repeats`` times; the table gives the median seconds, the ratio to the
peer, and the best validation logloss found against the peer's.

    python benchmarks/tuning.py --rows 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TRIALS = 16
ROUNDS = 200
EARLY = 20


def space() -> dict[str, Any]:
    import optuna

    F = optuna.distributions.FloatDistribution
    return {
        "learning_rate": F(0.01, 0.3, log=True),
        "max_depth": optuna.distributions.IntDistribution(3, 8),
        "subsample": F(0.5, 1.0),
        "colsample_bytree": F(0.5, 1.0),
        "min_child_weight": F(0.5, 20.0, log=True),
    }


def peer(client: Any, arrays: tuple[Any, ...], seed: int) -> tuple[float, float]:
    """(1): seconds and best validation logloss of a plain Optuna loop of xgboost.dask."""
    import optuna
    import xgboost.dask as dxgb

    X, y, Xv, yv = arrays

    def objective(params: dict[str, Any]) -> float:
        d = dxgb.DaskQuantileDMatrix(client, X, y)
        dv = dxgb.DaskQuantileDMatrix(client, Xv, yv, ref=d)
        out = dxgb.train(
            client,
            {"objective": "binary:logistic", "tree_method": "hist", "seed": seed,
             "eval_metric": ["auc", "logloss"], **params},
            d, ROUNDS, evals=[(dv, "valid")], early_stopping_rounds=EARLY, verbose_eval=False,
        )  # fmt: skip
        curve = out["history"]["valid"]["logloss"]
        best = out["booster"].attr("best_iteration")
        return float(curve[int(best)] if best is not None else curve[-1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    )
    start = time.perf_counter()
    for _ in range(TRIALS):  # Optuna's ask and tell, as wb.tune draws its trials
        trial = study.ask(space())
        study.tell(trial, objective(trial.params))
    return time.perf_counter() - start, float(study.best_value)


def workbench_row(
    client: Any, train: Any, valid: Any, seed: int, **kwargs: Any
) -> tuple[float, float, Any]:
    import workbench as wb

    start = time.perf_counter()
    study = wb.tune(
        train, valid, trials=TRIALS, rounds=ROUNDS, early_stopping=EARLY, space=space(),
        metric="logloss", seed=seed, client=client, progress=False, **kwargs,
    )  # fmt: skip
    return time.perf_counter() - start, study.best_value, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import dask
    from distributed import Client, LocalCluster, wait

    import workbench as wb

    names = {
        "peer": "plain `xgboost.dask.train` loop (Optuna TPE, no pruning)",
        "packed": "`wb.tune`, packed, pruning (default here)",
        "packed, no pruning": "`wb.tune`, packed, no pruning",
        "gang": "`wb.tune`, gang, pruning",
        "packed, tracked": "`wb.tune`, packed, pruning, MLflow tracking",
    }
    seconds: dict[str, list[float]] = {k: [] for k in names}
    best: dict[str, list[float]] = {k: [] for k in names}
    per_trial: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        path = Path(tmp)
        wb.generate("higgs", args.rows, path / "higgs", partitions=4, seed=0, client=client)
        ds = wb.load(path / "higgs", target="is_signal", client=client)
        train, valid = (s.persist(client=client) for s in ds.split((0.8, 0.2), seed=0))
        X, y = train.to_arrays(client=client)
        Xv, yv = valid.to_arrays(client=client)
        arrays = tuple(client.persist([X, y, Xv, yv]))
        wait(list(arrays))
        peer(client, arrays, 99)  # warm-up of both paths: imports, first trackers
        workbench_row(client, train, valid, 99)
        _tracked(client, train, valid, 99, path)  # the store's tables, MLflow's imports
        for r in range(args.repeats):
            rows = {
                "peer": lambda seed: (*peer(client, arrays, seed), None),
                "packed": lambda seed: workbench_row(client, train, valid, seed),
                "packed, no pruning": lambda seed: workbench_row(
                    client, train, valid, seed, pruning=False
                ),
                "gang": lambda seed: workbench_row(client, train, valid, seed, placement="gang"),
                "packed, tracked": lambda seed: _tracked(client, train, valid, seed, path),
            }
            order = list(rows)[r % len(rows) :] + list(rows)[: r % len(rows)]
            for name in order:
                s, value, _ = rows[name](r)
                seconds[name].append(s)
                best[name].append(value)
                if name == "packed, tracked":
                    per_trial.append(s)
            print(
                f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items()),
                flush=True,
            )
        one = _one_training(client, train, valid)
    peer_s = statistics.median(seconds["peer"])
    print()
    print(
        f"{args.rows:,} rows (80% train, 20% valid), {TRIALS} trials x {ROUNDS} rounds, early "
        f"stopping {EARLY}, 2 workers x 1 thread, median of {args.repeats} interleaved repeats "
        f"(seeds 0..{args.repeats - 1}, the same in every row)"
    )
    print("| run | seconds | vs peer | best valid logloss | vs peer's best (median) |")
    print("|---|---|---|---|---|")
    for k, label in names.items():
        ratios = [b / p for b, p in zip(best[k], best["peer"], strict=True)]
        print(
            f"| {label} | {statistics.median(seconds[k]):.1f} | "
            f"{statistics.median(seconds[k]) / peer_s:.2f}x | {statistics.median(best[k]):.5f} | "
            f"{statistics.median(ratios):.4f} ({min(ratios):.4f}-{max(ratios):.4f}) |"
        )
    cost = [(t - p) / TRIALS for t, p in zip(per_trial, seconds["packed"], strict=True)]
    print(
        f"\ntracking: {statistics.median(cost) * 1000:+.0f} ms per trial (median; "
        f"{min(cost) * 1000:+.0f} to {max(cost) * 1000:+.0f}), against one 200-round wb.train "
        f"of {one:.2f} s: {statistics.median(cost) / one:+.1%}"
    )
    dask.config.refresh()


def _tracked(client: Any, train: Any, valid: Any, seed: int, folder: Path) -> Any:
    import dask

    with dask.config.set({"workbench.tracking.uri": f"sqlite:///{folder / 'mlflow.db'}"}):
        return workbench_row(client, train, valid, seed, experiment="benchmark")


def _one_training(client: Any, train: Any, valid: Any) -> float:
    import workbench as wb

    start = time.perf_counter()
    wb.train(train, valid, rounds=ROUNDS, client=client, progress=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
