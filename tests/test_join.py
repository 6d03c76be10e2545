"""``start_cluster()`` with nothing asked joins the session's running cluster (issue 15, item 1).

Under ``workbench lab`` the kernels are told the lab's scheduler (``DASK_SCHEDULER_ADDRESS``);
a notebook that calls ``wb.start_cluster()`` there must use that cluster, not start a second
one. The lab's own kernels are checked in ``tests/test_lab.py``; here the same setting and a
current client, with real clusters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dask
import psutil
import pytest
from distributed import Client

import workbench as wb
from tests.conftest import free_port
from workbench.clusters.joined import JoinedCluster

SCRIPT = """
import sys

import psutil

import workbench as wb

if __name__ == "__main__":
    before = len(psutil.Process().children(recursive=True))
    cluster = wb.start_cluster()
    client = cluster.get_client()
    print(type(cluster).__name__, cluster.scheduler_address, len(cluster.workers()))
    started = len(psutil.Process().children(recursive=True)) - before
    print(client.submit(sum, [1, 2]).result(), started)
    print(repr(cluster))
    cluster.close()
    print(cluster.status)
"""


def _run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )


def test_the_scheduler_address_setting_is_joined(tcp_client: Client, tmp_path: Path) -> None:
    address = tcp_client.scheduler.address
    script = tmp_path / "join.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**_env(), "DASK_SCHEDULER_ADDRESS": address}
    done = _run(script, env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"JoinedCluster {address} 2"
    assert lines[1] == "3 0"  # the work ran there, and no process was started here
    assert lines[2].startswith(f"<workbench.Cluster 'joined' (joined): {address}, workers=2")
    assert lines[3] == "closed"
    assert f"joined the running cluster at {address}" in done.stderr
    assert "pass a profile to start a separate one" in done.stderr
    assert tcp_client.submit(sum, [2, 3]).result() == 5  # closing the handle left it running


def test_a_dead_scheduler_address_is_named(tmp_path: Path) -> None:
    script = tmp_path / "join.py"
    script.write_text(textwrap.dedent(SCRIPT))
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {
        **_env(),
        "DASK_SCHEDULER_ADDRESS": address,
        "DASK_WORKBENCH__CLUSTER__CONNECT_TIMEOUT": "3s",
    }
    done = _run(script, env)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("workbench.errors.ClusterConnectionError")
    assert "DASK_SCHEDULER_ADDRESS" in last and address in last
    assert "unset the setting" in last
    assert done.stdout == ""  # failed before anything was started or printed


def test_the_current_client_is_joined(tcp_client: Client) -> None:
    with pytest.raises(ValueError):
        Client.current()
    before = psutil.Process().children(recursive=True)
    with Client(tcp_client.scheduler.address, set_as_default=True) as mine:
        with wb.start_cluster() as cluster:
            assert isinstance(cluster, JoinedCluster)
            assert cluster.get_client() is mine
            assert cluster.scheduler_address == tcp_client.scheduler.address
            assert cluster.dashboard_link == mine.dashboard_link
            assert {w.address for w in cluster.workers()} == set(
                tcp_client.scheduler_info()["workers"]
            )
            assert cluster.status == "running"
            with pytest.raises(RuntimeError, match="scale it where it was started"):
                cluster.scale(4)
            with pytest.raises(RuntimeError, match="scale it where it was started"):
                cluster.adapt(minimum=1, maximum=2)
            assert "joined" in cluster._repr_html_()
        assert cluster.status == "closed"
        assert mine.status == "running"  # the session's own client is left connected
        assert mine.submit(sum, [1, 1]).result() == 2
        with pytest.raises(RuntimeError, match="closed"):
            cluster.get_client()
    assert psutil.Process().children(recursive=True) == before


def test_a_profile_or_an_option_starts_a_cluster_of_its_own(tcp_client: Client) -> None:
    address = tcp_client.scheduler.address
    with (
        dask.config.set({"scheduler-address": address}),
        wb.start_cluster("local-cpu", n_workers=1, processes=False) as cluster,
    ):
        assert not isinstance(cluster, JoinedCluster)
        assert cluster.scheduler_address != address
    with (
        dask.config.set({"scheduler-address": address}),
        wb.start_cluster(n_workers=1, processes=False) as cluster,
    ):
        assert not isinstance(cluster, JoinedCluster)
        assert cluster.scheduler_address != address


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
