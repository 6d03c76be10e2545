"""Benchmark: partitioned Parquet to persisted float32 arrays, workbench against pyarrow.

Question (issue 3, "Performance"): on a 2-core machine, does ``wb.load(...).to_arrays(...)``
reach at least 0.8x the throughput of a plain single-process ``pyarrow.parquet.read_table`` plus
conversion to one NumPy matrix, and is its cost per row near flat from 1 to 20 million rows?

What is measured
----------------
* Data: synthetic ``fraud`` transactions written by ``wb.generate`` as partitioned Parquet
  (about 500,000 rows per file) into a temporary folder, once per size. Generation is *not*
  timed, and it runs on its own cluster that is closed before any timing.
* (a) workbench, timed from the call of ``wb.load`` until ``to_arrays`` returns (it waits until
  ``X`` and ``y`` are persisted in the workers' memory)::

      ds = wb.load(path, target="is_fraud", categorical=["merchant_category", "device"],
                   check=check, client=client)
      X, y = ds.to_arrays(device="cpu", dtype="float32", client=client)

  once with ``check=False`` (the pure load path) and once with ``check=True`` (the default:
  one extra pass over the data for target, category and constant-column checks), on a fresh
  ``LocalCluster(processes=True)`` of the default layout for 2 cores (1 worker x 2 threads) and
  also 2 workers x 1 thread. Each fresh cluster imports pandas, pyarrow and the workbench on its
  workers and runs the whole path once on one file before the clock starts.
* (b) peer, in this process: ``pyarrow.parquet.read_table(path)`` of the same files (every
  column that (a) uses: all of them), then one C-ordered float32 matrix of the same features in
  the same order (categoricals as codes into their sorted levels, missing values as NaN) and the
  target vector. The conversion fills the matrix file chunk by file chunk on 2 threads (NumPy
  releases the GIL), which was the fastest honest path found; it gets the same one-file warm-up.
* Repeats are interleaved (peer, then each layout with ``check`` False and True in alternating
  order, then the next repeat) and medians are reported: throughput in rows/s, the ratio
  throughput(a) / throughput(b) (the goal is >= 0.8), and seconds per million rows, which should
  be near flat across sizes. Arrays are dropped and clusters closed between runs and sizes.
* The machine may be shared: the load average before and after each size and the CPU used by
  *other* processes during each timed run (``other``, in cores; anything well above 0.1 means
  that run was contended) are printed. In the first repeat of each size, every (a) result is
  compared with the peer's outside the timing: numeric columns, category codes, target.
* ``--breakdown`` adds one run of (a) per size, split into its two calls (``wb.load``,
  ``ds.to_arrays``), with the worker compute seconds of each grouped by task name and the time
  during which no task ran on any worker.
* What (a) runs: ``wb.load`` reads the Parquet footers (schema, rows, statistics, row groups);
  with ``check=True`` one task per file reads the target and the categorical columns into Arrow
  and reports classes, levels and missing values. ``to_arrays`` then runs one task per file that
  reads it into Arrow and writes the float32 block of ``X`` (categories as codes into the common
  levels) and ``y`` straight from Arrow, on the workers in turn; no pandas frame is made.

Nothing is asserted; figures are printed only.

Run::

    python benchmarks/data_loading.py                               # 1M, 5M, 20M rows
    python benchmarks/data_loading.py --rows 1000000,5000000 --repeats 3
    python benchmarks/data_loading.py --rows 1000000 --layouts 1x2 --breakdown
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, LocalCluster, get_task_stream
from distributed.utils import key_split

import workbench as wb

TARGET = "is_fraud"
CATEGORICAL = ["merchant_category", "device"]
ROWS_PER_PARTITION = 500_000
PEER_THREADS = 2
DEFAULT_LAYOUTS = "1x2,2x1"  # (workers x threads); 1x2 is LocalCluster's default on 2 cores


@dataclass
class Timing:
    """One timed run."""

    rows: int
    method: str  # "peer", or "wb 1x2 check=False" and the like
    seconds: float
    other_cores: float  # CPU used by other processes during the run, in cores


# ---------------------------------------------------------------------------------- machine
def _own_pids() -> set[int]:
    me = psutil.Process()
    return {me.pid, *(c.pid for c in me.children(recursive=True))}


def _own_cpu_seconds(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``fn``; return its wall seconds, the cores used by other processes, its result."""
    pids = _own_pids()
    own0, busy0 = _own_cpu_seconds(pids), _busy_cpu_seconds()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    other = (_busy_cpu_seconds() - busy0) - (_own_cpu_seconds(pids) - own0)
    return seconds, max(other, 0.0) / seconds, out


def load_text() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# -------------------------------------------------------------------------------------- data
def parquet_files(path: str) -> list[str]:
    return sorted(
        os.path.join(path, f)
        for f in os.listdir(path)
        if f.endswith(".parquet") and not f.startswith(("_", "."))
    )


def generate(root: str, rows: int, workers: int) -> str:
    """Write ``rows`` fraud rows as Parquet under ``root`` (not timed); return the folder."""
    path = os.path.join(root, f"fraud-{rows}")
    partitions = max(1, -(-rows // ROWS_PER_PARTITION))
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        wb.generate("fraud", rows, path, partitions=partitions, seed=0, client=client)
    return path


def warmup_folder(root: str, path: str) -> str:
    """A folder holding a hard link to the first file of ``path``, for warm-up runs."""
    folder = os.path.join(root, "warmup")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    first = parquet_files(path)[0]
    os.link(first, os.path.join(folder, os.path.basename(first)))
    return folder


# -------------------------------------------------------------------------------------- peer
def _fill(X: np.ndarray, start: int, chunks: list[pa.Array], luts: list[np.ndarray | None]) -> None:
    """Write one file chunk of every feature into rows ``start:`` of ``X``."""
    for j, (chunk, lut) in enumerate(zip(chunks, luts, strict=True)):
        stop = start + len(chunk)
        if lut is None:
            X[start:stop, j] = chunk.to_numpy(zero_copy_only=False)  # nulls become NaN
        else:
            idx = chunk.indices.fill_null(0).to_numpy(zero_copy_only=False)
            X[start:stop, j] = lut[idx]
            if chunk.null_count:
                X[start:stop, j][chunk.is_null().to_numpy(zero_copy_only=False)] = np.nan


def peer_load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``read_table`` then one float32 matrix (categoricals as codes) and the target."""
    table = pq.read_table(path)
    features = [c for c in table.column_names if c != TARGET]
    columns = [table.column(c) for c in features]
    # Dictionary chunks may differ from file to file: code every chunk into the sorted union.
    levels = {
        c: sorted({v for ch in col.chunks for v in ch.dictionary.to_pylist()}, key=str)
        for c, col in zip(features, columns, strict=True)
        if c in CATEGORICAL
    }
    ref = columns[0]
    bounds = np.cumsum([0, *(len(ch) for ch in ref.chunks)])
    if not all([len(ch) for ch in col.chunks] == [len(ch) for ch in ref.chunks] for col in columns):
        columns = [pa.chunked_array(col.combine_chunks()) for col in columns]
        bounds = np.array([0, table.num_rows])
    jobs = []
    for i in range(len(bounds) - 1):
        chunks = [col.chunk(i) for col in columns]
        luts: list[np.ndarray | None] = []
        for c, ch in zip(features, chunks, strict=True):
            if c in levels:
                pos = {v: k for k, v in enumerate(levels[c])}
                luts.append(np.array([pos[v] for v in ch.dictionary.to_pylist()], np.float32))
            else:
                luts.append(None)
        jobs.append((int(bounds[i]), chunks, luts))
    X = np.empty((table.num_rows, len(features)), dtype=np.float32)
    with ThreadPoolExecutor(PEER_THREADS) as pool:
        list(pool.map(lambda job: _fill(X, *job), jobs))
    y = table.column(TARGET).to_numpy()
    return X, y


# --------------------------------------------------------------------------------- workbench
def _warm_worker() -> None:
    import dask.dataframe  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import workbench.data.placement  # noqa: F401


def wb_load(client: Client, path: str, check: bool) -> tuple[Any, Any]:
    ds = wb.load(path, target=TARGET, categorical=CATEGORICAL, check=check, client=client)
    return ds.to_arrays(device="cpu", dtype="float32", client=client)


def wait_released(client: Client, timeout: float = 30.0) -> None:
    """Wait until the scheduler holds no task (the dropped arrays are freed on the workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0:
            return
        time.sleep(0.05)


@contextmanager
def cluster(layout: tuple[int, int]) -> Iterator[Client]:
    """A fresh LocalCluster of ``layout`` (workers, threads) with warm workers."""
    with (
        LocalCluster(
            n_workers=layout[0],
            threads_per_worker=layout[1],
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as lc,
        Client(lc) as client,
    ):
        client.run(_warm_worker)
        yield client


def layout_name(layout: tuple[int, int]) -> str:
    return f"{layout[0]}x{layout[1]}"


def compare(
    got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], cat_cols: list[int]
) -> str:
    """Which parts of (X, y) equal the peer's: numeric columns, category codes, target."""
    if got[0].shape != want[0].shape:
        return f"X shape {got[0].shape} != peer {want[0].shape}"
    num_cols = [j for j in range(want[0].shape[1]) if j not in cat_cols]
    num = np.array_equal(got[0][:, num_cols], want[0][:, num_cols], equal_nan=True)
    codes = np.array_equal(got[0][:, cat_cols], want[0][:, cat_cols], equal_nan=True)
    target = np.array_equal(got[1], want[1])
    return f"vs peer: numeric {num}, category codes {codes}, y {target}"


# --------------------------------------------------------------------------------- breakdown
def task_summary(stream: list[dict[str, Any]], wall: float) -> str:
    """Worker compute seconds by task name, and the time no task ran on any worker."""
    by_name: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    spans: list[tuple[float, float]] = []
    for task in stream:
        for ss in task.get("startstops", ()):
            if ss["action"] != "compute":
                continue
            entry = by_name[key_split(task["key"])]
            entry[0] += 1
            entry[1] += ss["stop"] - ss["start"]
            spans.append((ss["start"], ss["stop"]))
    covered, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            covered += b - max(a, end)
            end = b
    top = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:6]
    names = ", ".join(f"{k} {int(n)}x {s:.2f}s" for k, (n, s) in top)
    return f"no task running {max(wall - covered, 0.0):.2f}s; tasks: {names}"


def breakdown(client: Client, path: str, check: bool) -> None:
    """One run of (a) split into its public steps, with the tasks each step ran."""
    steps: list[tuple[str, float, str]] = []

    def step(label: str, fn: Callable[[], Any]) -> Any:
        with get_task_stream(client=client) as ts:
            t0 = time.perf_counter()
            out = fn()
            wall = time.perf_counter() - t0
        steps.append((label, wall, task_summary(ts.data, wall)))
        return out

    loaded = step(
        "wb.load",
        lambda: wb.load(path, target=TARGET, categorical=CATEGORICAL, check=check, client=client),
    )
    step(  # the arrays are dropped at once
        "ds.to_arrays",
        lambda: loaded.to_arrays(device="cpu", dtype="float32", client=client),
    )
    total = sum(s[1] for s in steps)
    print(f"    breakdown check={check}: {total:.2f}s in all", flush=True)
    for label, wall, text in steps:
        print(f"      {label:<13} {wall:6.2f}s  {text}", flush=True)
    loaded = None  # drop it before waiting for the workers
    wait_released(client)


# -------------------------------------------------------------------------------------- main
def parse_rows(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def parse_layouts(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        w, t = item.lower().split("x")
        out.append((int(w), int(t)))
    return out


def run_size(
    rows: int, path: str, warm: str, layouts: list[tuple[int, int]], repeats: int, verify: bool
) -> list[Timing]:
    """All timed runs of one size, interleaved."""
    out: list[Timing] = []
    peer_load(warm)  # warm-up, not timed
    reference: tuple[np.ndarray, np.ndarray] | None = None
    names = [c for c in pq.read_schema(parquet_files(path)[0]).names if c != TARGET]
    cat_cols = [j for j, c in enumerate(names) if c in CATEGORICAL]
    for rep in range(repeats):
        seconds, other, result = timed(lambda: peer_load(path))
        out.append(Timing(rows, "peer", seconds, other))
        print(f"  rep {rep + 1} peer              {seconds:7.2f}s  other={other:.2f}", flush=True)
        if verify and rep == 0:
            reference = result
        del result
        gc.collect()
        for layout in layouts:
            with cluster(layout) as client:
                wb_load(client, warm, True)  # warm-up, not timed
                wait_released(client)
                checks = (False, True) if rep % 2 == 0 else (True, False)
                for check in checks:
                    method = f"wb {layout_name(layout)} check={check}"
                    seconds, other, (X, y) = timed(lambda c=client, k=check: wb_load(c, path, k))
                    out.append(Timing(rows, method, seconds, other))
                    same = ""
                    if reference is not None:
                        got = (X.compute(), y.compute())
                        same = "  " + compare(got, reference, cat_cols)
                        del got
                    print(
                        f"  rep {rep + 1} {method:<18}{seconds:7.2f}s  other={other:.2f}{same}",
                        flush=True,
                    )
                    del X, y
                    wait_released(client)
        reference = None
        gc.collect()
    return out


def report(timings: list[Timing], sizes: list[int], methods: list[str]) -> None:
    print()
    print(
        f"{'rows':>11} {'method':<20} {'median s':>9} {'rows/s':>12} {'s per M rows':>13} "
        f"{'vs peer':>8} {'other':>6}"
    )
    for rows in sizes:
        peer = statistics.median(
            t.seconds for t in timings if t.rows == rows and t.method == "peer"
        )
        for method in methods:
            mine = [t for t in timings if t.rows == rows and t.method == method]
            if not mine:
                continue
            sec = statistics.median(t.seconds for t in mine)
            other = statistics.median(t.other_cores for t in mine)
            ratio = peer / sec  # throughput(a) / throughput(b)
            print(
                f"{rows:>11,} {method:<20} {sec:>9.2f} {rows / sec:>12,.0f} "
                f"{sec / rows * 1e6:>13.3f} {ratio:>7.2f}x {other:>6.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="1000000,5000000,20000000", help="comma-separated sizes to measure"
    )
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats per size")
    parser.add_argument(
        "--layouts", default=DEFAULT_LAYOUTS, help="cluster layouts, workers x threads"
    )
    parser.add_argument("--breakdown", action="store_true", help="time (a) step by step too")
    parser.add_argument("--tmp", default=None, help="folder for the generated files")
    args = parser.parse_args()
    sizes = parse_rows(args.rows)
    layouts = parse_layouts(args.layouts)
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)  # P2P notices of check=True

    print(
        f"sizes={sizes} repeats={args.repeats} layouts={[layout_name(x) for x in layouts]} "
        f"cores={psutil.cpu_count()} memory={psutil.virtual_memory().total / 2**30:.0f}GiB "
        f"pyarrow={pa.__version__} rows/file={ROWS_PER_PARTITION:,} load avg={load_text()}",
        flush=True,
    )
    methods = ["peer"] + [
        f"wb {layout_name(layout)} check={check}" for layout in layouts for check in (False, True)
    ]
    timings: list[Timing] = []
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wb-data-loading-", dir=args.tmp) as root:
        for rows in sizes:
            t0 = time.perf_counter()
            path = generate(root, rows, workers=psutil.cpu_count() or 2)
            warm = warmup_folder(root, path)
            print(
                f"{rows:,} rows: {len(parquet_files(path))} files generated in "
                f"{time.perf_counter() - t0:.1f}s (not timed); load avg before {load_text()}",
                flush=True,
            )
            timings += run_size(rows, path, warm, layouts, args.repeats, verify=True)
            if args.breakdown:
                with cluster(layouts[0]) as client:
                    wb_load(client, warm, True)
                    wait_released(client)
                    for check in (False, True):
                        breakdown(client, path, check)
            print(f"  load avg after {load_text()}", flush=True)
            shutil.rmtree(path)
            gc.collect()
    report(timings, sizes, methods)
    print(
        "ratio 'vs peer' = throughput(workbench) / throughput(pyarrow peer); goal >= 0.80. "
        "'other' = cores used by other processes during the timed runs (median)."
    )
    print(f"total wall time {time.perf_counter() - wall0:.0f}s; load avg at end {load_text()}")


if __name__ == "__main__":
    main()
