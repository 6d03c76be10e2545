"""Hosts cut off, not killed: a scheduler and two workers, each in a network namespace of its own.

The test makes three namespaces on this machine, links them to a bridge on a private test subnet
(10.231.x.0/24, used by nothing else), starts a TLS scheduler and two TLS workers (with their
nannies, as ``dask worker`` starts them) in them, trains from the host, and takes one worker's
link down mid-training. The survivor waits for the silent peer in XGBoost's allreduce; the
scheduler removes the cut worker when its heartbeats stop (``worker-ttl``), the workbench hears
of it and restarts the survivor, which ends that wait long before
``workbench.train.collective-timeout`` (left at its default), and the training continues on
the survivor from the last checkpoint. Needs root and ``ip`` (CI runs as root); skipped with
the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.config import timeout_seconds

pytestmark = pytest.mark.slow


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = f"wbprobe{os.getpid() % 100000}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


_why = _netns_possible()
if _why:
    pytest.skip(_why, allow_module_level=True)


class Hosts:
    """Three namespaces (s: scheduler, a and b: workers) on a bridge, with their addresses."""

    def __init__(self) -> None:
        tag = os.getpid() % 1000
        self.net = f"10.231.{os.getpid() % 250 + 1}"
        self.bridge = f"wb{tag}br"
        self.names = {h: f"wb{tag}{h}" for h in "sab"}
        self.addr = {
            "host": f"{self.net}.1",
            "s": f"{self.net}.2",
            "a": f"{self.net}.3",
            "b": f"{self.net}.4",
        }
        self.links = {h: f"wb{tag}v{h}" for h in "sab"}  # host side of each veth pair

    def up(self) -> None:
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

    def down(self) -> None:
        for ns in self.names.values():
            _ip("netns", "del", ns, check=False)
        for link in self.links.values():
            _ip("link", "del", link, check=False)
        _ip("link", "del", self.bridge, check=False)

    def cut(self, host: str) -> None:
        _ip("link", "set", self.links[host], "down")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hosts, str, dict[str, str]]]:
    h = Hosts()
    work = tmp_path_factory.mktemp("netns")
    certs = wb.make_certificates(work / "certs", hosts=tuple(h.addr.values()))
    security = {k: str(v) for k, v in certs.items()}
    tls = [
        "--tls-ca-file",
        security["ca_file"],
        "--tls-cert",
        security["cert_file"],
        "--tls-key",
        security["key_file"],
    ]
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "6s",
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    h.up()
    try:
        scheduler = f"tls://{h.addr['s']}:8786"

        def launch(host: str, cmd: list[str]) -> None:
            log = open(work / f"{host}.log", "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", h.names[host], sys.executable, "-m", *cmd],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=work,
                    start_new_session=True,  # the nanny and its worker: one process group
                )
            )

        launch(
            "s",
            [
                "distributed.cli.dask_scheduler",
                "--host",
                h.addr["s"],
                "--port",
                "8786",
                "--no-dashboard",
                *tls,
            ],
        )
        for w in "ab":
            launch(
                w,
                [
                    "distributed.cli.dask_worker",
                    scheduler,
                    "--host",
                    h.addr[w],
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    w,
                    *tls,
                ],
            )
        yield h, scheduler, security
    finally:
        for p in procs:  # the whole group: a nanny's worker too
            os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
        for log in logs:
            log.close()
        h.down()


def test_a_cut_off_worker_host_is_retired_and_training_recovers(
    hosts: tuple[Hosts, str, dict[str, str]], tmp_path: Path
) -> None:
    h, scheduler, security = hosts
    rng = np.random.default_rng(0)
    for i in range(4):
        x = rng.normal(size=(30_000, 10)).astype(np.float32)
        y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=len(x)) > 0).astype(np.int8)
        pd.DataFrame(x, columns=[f"f{j}" for j in range(10)]).assign(y=y).to_parquet(
            tmp_path / f"part-{i}.parquet"
        )
    client = wb.connect(scheduler, security=security, timeout=30, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=60)
        ds = wb.load(tmp_path, target="y", client=client)
        train, valid = ds.split((0.8, 0.2), seed=0)
        # the collective timeout (300 s) and the wait for replacements (30 s) stay at their
        # defaults: the survivor goes on once restarted
        config = {"workbench.train.checkpoint-every": 10}
        result: dict[str, Any] = {}

        def cut_when_training() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = client.run_on_scheduler(
                    lambda dask_scheduler: sum(
                        1
                        for ts in dask_scheduler.tasks.values()
                        if str(ts.key).startswith("fn-") and ts.processing_on
                    )
                )
                if busy:
                    time.sleep(2.0)
                    h.cut("b")
                    result["cut"] = time.monotonic()
                    return
                time.sleep(0.1)

        cutter = threading.Thread(target=cut_when_training, daemon=True)
        cutter.start()
        with dask.config.set(config), pytest.warns(UserWarning, match="plain TCP"):
            model = wb.train(
                train, valid, rounds=150, params={"max_depth": 5}, client=client, progress=False
            )
        cutter.join(5)
        assert "cut" in result
        (recovery,) = model.info["recoveries"]
        assert recovery["lost_workers"] == [
            f"tls://{h.addr['b']}:" + recovery["lost_workers"][0].rsplit(":", 1)[1]
        ]
        assert recovery["workers_after"] == 1
        # the survivor was restarted when the scheduler removed the cut worker: the training
        # resumed long before XGBoost's collective timeout would have ended its wait
        assert recovery["ended_by"] == "restart"
        timeout = timeout_seconds("train.collective-timeout")
        assert timeout == 300  # the default
        assert recovery["seconds_to_resume"] < timeout / 2
        assert len(model.history) == 150
        assert model.metrics["auc"] > 0.85
    finally:
        client.close()
