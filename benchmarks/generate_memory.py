"""Peak worker memory while generating synthetic data, against the size of one partition.

The issue asks that 10 million rows of any domain generate on a 2-core machine without more
memory than one partition per worker at a time. This script generates ``--rows`` rows of each
domain on a LocalCluster (1 worker x 2 threads by default, as the default profile here) and
samples every worker's RSS while it runs; it prints the peak growth over the idle worker next
to the in-memory size of one partition (and of all of them).

    python benchmarks/generate_memory.py --rows 10000000
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

import psutil
from dask.utils import format_bytes
from distributed import Client, LocalCluster

import workbench as wb
from workbench.data.generators import make_partition


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument("--domains", default="fraud,maintenance,demand,higgs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    partitions = -(-args.rows // args.partition_rows)
    print(
        f"{args.rows:,} rows in {partitions} partitions; {args.workers} worker(s) x "
        f"{args.threads} thread(s)"
    )
    print(
        f"{'domain':<12} {'one partition':>14} {'all data':>10} {'peak growth':>12} "
        f"{'growth / partition':>19} {'seconds':>8}"
    )
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        for name in args.domains.split(","):
            part = make_partition(name, args.partition_rows, 0, 0, 0)
            one = int(part.memory_usage(deep=True).sum())
            client.run(lambda: __import__("gc").collect())
            base = client.run(_rss)
            peak = dict(base)
            stop = threading.Event()

            def sample(peak: dict[str, int] = peak, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    for w, rss in client.run(_rss).items():
                        peak[w] = max(peak[w], rss)
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                wb.generate(name, args.rows, f"{tmp}/{name}", partitions=partitions, client=client)
                seconds = time.perf_counter() - t
            stop.set()
            sampler.join()
            growth = max(peak[w] - base[w] for w in base)
            print(
                f"{name:<12} {format_bytes(one):>14} {format_bytes(one * partitions):>10} "
                f"{format_bytes(growth):>12} {growth / one:>19.2f} {seconds:>8.1f}"
            )


if __name__ == "__main__":
    main()
