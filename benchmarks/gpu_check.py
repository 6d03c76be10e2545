"""GPU check: run on a machine with an NVIDIA GPU, in one command of a few minutes.

Prints the hardware, runs ``tests/gpu`` with pytest, and times ``start_cluster()`` (local-gpu)
against a bare ``dask_cuda.LocalCUDACluster`` with the same options, as a ratio. Writes
everything it prints to ``$OUT/gpu_check.txt`` when ``OUT`` is set.

    PYTHONPATH=$PWD python benchmarks/gpu_check.py
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path


def _time_clusters() -> None:
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    import workbench as wb

    t = time.perf_counter()
    with wb.start_cluster("local-gpu", rmm_pool_size=None) as cluster:
        cluster.get_client().submit(sum, [1]).result()
        print(repr(cluster))
    ours = time.perf_counter() - t
    t = time.perf_counter()
    with (
        LocalCUDACluster(
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            device_memory_limit=0.8,
            threads_per_worker=1,
        ) as bare,
        Client(bare) as c,
    ):
        c.submit(sum, [1]).result()
    peer = time.perf_counter() - t
    print(
        f"start+first task+close: workbench {ours:.2f}s, bare LocalCUDACluster {peer:.2f}s, "
        f"ratio {ours / peer:.2f}"
    )


def main() -> int:
    buf = io.StringIO()
    root = Path(__file__).resolve().parents[1]

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            sys.__stdout__.write(s)
            buf.write(s)
            return len(s)

    with redirect_stdout(Tee()):
        import workbench as wb

        print(repr(wb.hardware()))
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/gpu"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        print(tests.stdout[-6000:], tests.stderr[-2000:])
        _time_clusters()
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.txt").write_text(buf.getvalue())
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
