"""XGBoost with and without Dask's MALLOC_TRIM_THRESHOLD_=65536: seconds and page faults.

The measurement behind ``workbench.cluster.malloc-trim-threshold`` (null by default): the same
single-process training (the data and parameters of ``benchmarks/training.py``, 40 rounds,
the validation set evaluated with logloss, then with logloss and AUC) in fresh Python processes
started with and without the variable (glibc reads it when a process starts), interleaved.

    python benchmarks/malloc_trim.py --rows 2000000 --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

ROUNDS = 40


def child(rows: int) -> None:
    """One run in this process: wall seconds, CPU seconds and minor page faults per metric set."""
    import xgboost
    from training import PARAMS, XGB, make_data  # type: ignore[import-not-found]

    X, y, Xv, yv = make_data(rows)
    out: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def measured(name: str) -> Iterator[None]:
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        yield
        after = resource.getrusage(resource.RUSAGE_SELF)
        out[name] = {
            "seconds": time.perf_counter() - start,
            "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "faults": after.ru_minflt - before.ru_minflt,
        }

    with xgboost.config_context(nthread=2):
        with measured("building the matrices"):
            train = xgboost.QuantileDMatrix(X, y, nthread=2)
            valid = xgboost.QuantileDMatrix(Xv, yv, ref=train, nthread=2)
        for metrics in (["logloss"], ["logloss", "auc"]):
            with measured(f"{ROUNDS} rounds, " + "+".join(metrics)):
                xgboost.train(
                    {**XGB, **PARAMS, "nthread": 2, "eval_metric": metrics},
                    train,
                    ROUNDS,
                    evals=[(valid, "valid")],
                    verbose_eval=False,
                )
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows)
        return
    here = os.path.dirname(os.path.abspath(__file__))
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    settings = {
        "unset (workbench's default)": base,
        "65536 (Dask's)": {**base, "MALLOC_TRIM_THRESHOLD_": "65536"},
    }
    print(f"{args.rows:,} rows, {ROUNDS} rounds, depth 8; each figure the median of {args.repeats}")
    results: dict[str, list[dict[str, dict[str, float]]]] = {k: [] for k in settings}
    for _ in range(args.repeats):
        for name, env in settings.items():
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--rows", str(args.rows)]
            text = subprocess.run(
                cmd, env=env, cwd=here, capture_output=True, text=True, check=True
            )
            results[name].append(json.loads(text.stdout.strip().splitlines()[-1]))
    print("| MALLOC_TRIM_THRESHOLD_ | step | seconds | vs unset | CPU seconds | page faults |")
    print("|---|---|---|---|---|---|")
    first = next(iter(results.values()))
    for name, runs in results.items():
        for step in runs[0]:
            vals = sorted(runs, key=lambda r: r[step]["seconds"])[len(runs) // 2][step]
            ref = sorted(r[step]["seconds"] for r in first)[len(first) // 2]
            print(
                f"| {name} | {step} | {vals['seconds']:.2f} | {vals['seconds'] / ref:.3f} "
                f"| {vals['cpu']:.2f} | {vals['faults']:,.0f} |"
            )


if __name__ == "__main__":
    main()
