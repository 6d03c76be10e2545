"""Recovery from a lost worker or a cut-off host: time lost and rounds redone, against a warm run.

Two modes, each with a scheduler and two one-thread workers with nannies:

``--mode kill`` (default)
    A local cluster (processes on 127.0.0.1); one worker process is killed with SIGKILL
    ``--at`` seconds after XGBoost's training tasks start. The survivor's socket errors at once.
``--mode cut``
    Three network namespaces on a private test bridge (10.231.x.0/24), a TLS scheduler and two
    TLS workers (``dask worker``, with nannies); one worker host's link is taken down ``--at``
    seconds after the training tasks start. Nothing tells the survivor: the scheduler removes the
    silent worker after ``worker-ttl`` (``--ttl``), and the workbench restarts the survivor to
    end its wait in XGBoost's allreduce. Needs root and iproute2.

First one uninterrupted training to warm up (not timed), then ``--runs`` pairs, interleaved: an
uninterrupted training (the reference), then one with the loss. For each interrupted run it
prints the seconds lost against the mean of the warm references, the rounds redone (failure
round - checkpoint round) and what they cost at the reference's pace, the seconds from the first
sign of the loss (the scheduler's removal or the failure) to the resumed start and from the
failure to it (the difference: how long the stuck attempt waited after the removal), how that
attempt ended, and the validation AUC and log loss differences.

    python benchmarks/recovery.py --mode kill --rows 400000 --rounds 200 --every 20 --runs 3
    sudo python benchmarks/recovery.py --mode cut --rows 400000 --rounds 200 --every 20 --runs 3
    sudo python benchmarks/recovery.py --mode cut --rounds 300 --every 10 --at 10 --runs 1
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def after_training_starts(client: Any, seconds: float, act: Callable[[], None]) -> threading.Thread:
    """``act()`` once XGBoost's two training tasks have run for ``seconds``."""

    def run() -> None:
        while client.run_on_scheduler(_running) < 2:
            time.sleep(0.05)
        time.sleep(seconds)
        act()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# --- cut mode: hosts in network namespaces -------------------------------------------------------
def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, text=True, check=True)


class Hosts:
    """A scheduler (s) and two workers (a, b), each in a network namespace on one bridge."""

    def __init__(self, work: Path, ttl: str) -> None:
        tag = os.getpid() % 1000
        net = f"10.231.{os.getpid() % 250 + 1}"
        self.work = work
        self.bridge = f"wb{tag}br"
        self.names = {h: f"wb{tag}{h}" for h in "sab"}
        self.links = {h: f"wb{tag}v{h}" for h in "sab"}
        self.addr = {"host": f"{net}.1", "s": f"{net}.2", "a": f"{net}.3", "b": f"{net}.4"}
        self.env = {
            **os.environ,
            "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
            "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": ttl,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tls: list[str] = []
        self.scheduler = f"tls://{self.addr['s']}:8786"

    def up(self, security: dict[str, str]) -> None:
        """Make the namespaces and links; start the scheduler and both workers."""
        self.tls = ["--tls-ca-file", security["ca_file"], "--tls-cert", security["cert_file"]]
        self.tls += ["--tls-key", security["key_file"]]
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.addr['host']}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for h, ns in self.names.items():
            peer = f"{self.links[h]}p"
            _ip("netns", "add", ns)
            _ip("link", "add", self.links[h], "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", ns)
            _ip("link", "set", self.links[h], "master", self.bridge)
            _ip("link", "set", self.links[h], "up")
            _ip("-n", ns, "addr", "add", f"{self.addr[h]}/24", "dev", peer)
            _ip("-n", ns, "link", "set", peer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        self.launch("s", ["distributed.cli.dask_scheduler", "--host", self.addr["s"]])
        for w in "ab":
            self.launch_worker(w)

    def launch(self, host: str, cmd: list[str]) -> None:
        """Start ``python -m cmd`` in the host's namespace, in a process group of its own."""
        log = open(self.work / f"{host}.log", "ab")  # noqa: SIM115 - the child keeps it
        args = [*cmd, "--no-dashboard", *self.tls]
        if host == "s":
            args += ["--port", "8786"]
        self.procs[host] = subprocess.Popen(
            ["ip", "netns", "exec", self.names[host], sys.executable, "-m", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.work,
            start_new_session=True,
        )
        log.close()

    def launch_worker(self, w: str) -> None:
        """Start ``dask worker`` (with its nanny) on host ``w``."""
        cmd = ["distributed.cli.dask_worker", self.scheduler, "--host", self.addr[w]]
        self.launch(w, [*cmd, "--nthreads", "1", "--name", w])

    def cut(self, host: str) -> None:
        """Take the host's link down: its packets are dropped, nothing is reset."""
        _ip("link", "set", self.links[host], "down")

    def restore(self, host: str) -> None:
        """The host's link up again, with a fresh worker (and nanny) on it."""
        self.stop(host)
        _ip("link", "set", self.links[host], "up")
        self.launch_worker(host)

    def stop(self, host: str) -> None:
        """Kill the host's processes (the whole group: a nanny's worker too)."""
        p = self.procs.pop(host, None)
        if p is not None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def down(self) -> None:
        """Kill every process and remove the namespaces, links and bridge."""
        for h in list(self.procs):
            self.stop(h)
        for ns in self.names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for link in self.links.values():
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


@contextmanager
def kill_cluster(folder: Path) -> Iterator[tuple[Any, Callable[[], None], Callable[[], None]]]:
    """A local 2-worker cluster; ``lose`` kills a worker (its nanny starts another)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):

        def lose() -> None:
            _, pid = sorted(client.run(os.getpid).items())[-1]
            os.kill(pid, signal.SIGKILL)

        def restore() -> None:
            client.wait_for_workers(2, timeout=60)

        yield client, lose, restore


@contextmanager
def cut_cluster(
    folder: Path, ttl: str
) -> Iterator[tuple[Any, Callable[[], None], Callable[[], None]]]:
    """Three namespaces, TLS; ``lose`` takes worker b's link down."""
    import workbench as wb

    if os.geteuid() != 0:
        raise SystemExit("--mode cut needs root (network namespaces)")
    hosts = Hosts(folder, ttl)
    certs = wb.make_certificates(folder / "certs", hosts=tuple(hosts.addr.values()))
    security = {k: str(v) for k, v in certs.items()}
    try:
        hosts.up(security)
        client = wb.connect(hosts.scheduler, security=security, timeout=30, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=60)

            def restore() -> None:
                hosts.restore("b")
                deadline = time.monotonic() + 60
                while len(client.scheduler_info(n_workers=-1)["workers"]) < 2:
                    if time.monotonic() > deadline:
                        raise TimeoutError("worker b did not come back within 60 s")
                    time.sleep(0.2)

            yield client, lambda: hosts.cut("b"), restore
        finally:
            client.close()
    finally:
        hosts.down()


def main() -> None:
    import warnings

    import dask

    import workbench as wb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("kill", "cut"), default="kill")
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--at", type=float, default=3.0, help="seconds into the training")
    parser.add_argument("--ttl", default="6s", help="the scheduler's worker-ttl (cut mode)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*plain TCP.*")  # XGBoost's allreduce on TLS
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        make_data(folder, args.rows)
        clusters = {
            "kill": lambda: kill_cluster(folder),
            "cut": lambda: cut_cluster(folder, args.ttl),
        }
        with (
            dask.config.set({"workbench.train.checkpoint-every": args.every}),
            clusters[args.mode]() as (client, lose, restore),
        ):
            ds = wb.load(folder, target="y", client=client)
            train, valid = ds.split((0.8, 0.2), seed=0)

            def run() -> tuple[wb.Model, float]:
                # persisted and waited for before the clock starts (the lost worker's share
                # is recomputed during the recovery, which is part of its cost)
                tr, va = train.persist(client=client), valid.persist(client=client)
                t = time.perf_counter()
                model = wb.train(
                    tr, va, rounds=args.rounds, params={"max_depth": 6}, client=client,
                    progress=False,
                )  # fmt: skip
                return model, time.perf_counter() - t

            run()  # warm-up, not timed
            refs: list[float] = []
            lossy: list[tuple[wb.Model, float]] = []
            ref_model = None
            for _ in range(args.runs):
                ref_model, s = run()
                refs.append(s)
                t = after_training_starts(client, args.at, lose)
                lossy.append(run())
                t.join(5)
                restore()
            assert ref_model is not None
            ref_s = statistics.mean(refs)
            pace = ref_s / args.rounds
            print(
                f"mode {args.mode}: {args.rows:,} rows, {args.rounds} rounds, checkpoint every "
                f"{args.every}, loss {args.at:g} s into the training"
                + (f", worker-ttl {args.ttl}" if args.mode == "cut" else "")
            )
            print(
                f"uninterrupted (warm, {len(refs)} runs): {ref_s:.1f} s "
                f"(min {min(refs):.1f}, max {max(refs):.1f}; {pace * 1000:.0f} ms/round), "
                f"AUC {ref_model.metrics['auc']:.4f}"
            )
            print(
                "run  total s  lost s  failed@  redone  redone s  to-resume s  wait s  "
                "ended-by  dAUC      dlogloss"
            )
            for i, (model, s) in enumerate(lossy):
                for r in model.info["recoveries"] or [{}]:
                    redone = r.get("failed_at_round", 0) - r.get("resumed_from", 0)
                    print(
                        f"{i:>3}  {s:>7.1f}  {s - ref_s:>6.1f}  "
                        f"{r.get('failed_at_round', '-'):>7}  "
                        f"{redone:>6}  {redone * pace:>8.1f}  "
                        f"{r.get('seconds_to_resume', float('nan')):>11.1f}  "
                        f"{r.get('waited_seconds', float('nan')):>6.1f}  "
                        f"{r.get('ended_by', '-'):>8}  "
                        f"{model.metrics['auc'] - ref_model.metrics['auc']:+.5f}  "
                        f"{model.metrics['logloss'] - ref_model.metrics['logloss']:+.5f}"
                    )


if __name__ == "__main__":
    main()
