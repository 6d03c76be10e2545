"""Recovery from a lost worker: time lost against the rounds redone, metric against no loss.

A 2-worker LocalCluster (processes, nannies restart killed workers). First an uninterrupted
training; then ``--runs`` trainings in which one worker process is killed with SIGKILL a few
seconds in. For each, prints the rounds redone (failure round - checkpoint round), the seconds
from failure to restart, the extra wall time against the uninterrupted run, the time those
redone rounds cost at the uninterrupted pace, and the validation AUC and log loss differences.

    python benchmarks/recovery.py --rows 400000 --rounds 200 --every 20 --runs 3
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def make_data(folder: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    for i, n in enumerate(np.full(8, rows // 8)):
        x = rng.normal(size=(n, 20)).astype(np.float32)
        logit = x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * np.abs(x[:, 4])
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(20)]).assign(y=y)
        frame.to_parquet(folder / f"part-{i}.parquet")


def _running(dask_scheduler: Any) -> int:
    return sum(
        1
        for ts in dask_scheduler.tasks.values()
        if str(ts.key).startswith("fn-") and ts.processing_on
    )


def kill_after(client: Any, seconds: float) -> threading.Thread:
    def run() -> None:
        while client.run_on_scheduler(_running) < 2:
            time.sleep(0.05)
        time.sleep(seconds)
        _, pid = sorted(client.run(os.getpid).items())[-1]
        os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def main() -> None:
    import dask
    from distributed import Client, LocalCluster

    import workbench as wb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, args.rows)
        with (
            dask.config.set({"workbench.train.checkpoint-every": args.every}),
            LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
            ) as cluster,
            Client(cluster) as client,
        ):
            ds = wb.load(folder, target="y", client=client)
            train, valid = ds.split((0.8, 0.2), seed=0)
            train, valid = train.persist(client=client), valid.persist(client=client)

            def run() -> tuple[wb.Model, float]:
                t = time.perf_counter()
                model = wb.train(
                    train,
                    valid,
                    rounds=args.rounds,
                    params={"max_depth": 6},
                    client=client,
                    progress=False,
                )
                return model, time.perf_counter() - t

            ref, ref_s = run()
            pace = ref_s / args.rounds
            print(
                f"{args.rows:,} rows, {args.rounds} rounds, checkpoint every {args.every}: "
                f"uninterrupted {ref_s:.1f} s ({pace * 1000:.0f} ms/round), "
                f"AUC {ref.metrics['auc']:.4f}"
            )
            print("run  killed@  redone  wait s  extra s  redone-rounds s  dAUC      dlogloss")
            for i in range(args.runs):
                killer = kill_after(client, 3.0 + 5 * i)
                model, s = run()
                killer.join(5)
                for r in model.info["recoveries"]:
                    redone = r["failed_at_round"] - r["resumed_from"]
                    print(
                        f"{i:>3}  {r['failed_at_round']:>7}  {redone:>6}  "
                        f"{r['waited_seconds']:>6.1f}  {s - ref_s:>7.1f}  {redone * pace:>15.1f}  "
                        f"{model.metrics['auc'] - ref.metrics['auc']:+.5f}  "
                        f"{model.metrics['logloss'] - ref.metrics['logloss']:+.5f}"
                    )
                client.wait_for_workers(2, timeout=60)


if __name__ == "__main__":
    main()
