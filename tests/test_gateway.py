"""The gateway profile against a real dask-gateway-server with its local backend."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import psutil
import pytest
import yaml

import workbench as wb
from tests.conftest import free_port

pytest.importorskip("dask_gateway_server", reason="the test extra installs dask-gateway-server")

pytestmark = pytest.mark.slow

PASSWORD = "correct horse"

CONFIG = """
c.DaskGateway.address = "127.0.0.1:{api}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.Proxy.address = "127.0.0.1:{http}"
c.Proxy.tcp_address = "127.0.0.1:{tcp}"
c.Proxy.log_level = "warn"
c.UnsafeLocalBackend.clusters_directory = {clusters!r}
c.UnsafeLocalBackend.sigint_timeout = 5
c.LocalClusterConfig.scheduler_cmd = [{python!r}, "-m", "distributed.cli.dask_scheduler"]
c.LocalClusterConfig.worker_cmd = [
    {python!r}, "-m", "distributed.cli.dask_worker", "--host", "127.0.0.1", "--no-nanny"
]
c.LocalClusterConfig.worker_cores = 1
c.LocalClusterConfig.worker_memory = "1 G"
c.LocalClusterConfig.scheduler_memory = "1 G"
"""


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """dask-gateway-server on 127.0.0.1 (API through its proxy), stopped with SIGTERM."""
    tmp = tmp_path_factory.mktemp("gateway")
    (tmp / "clusters").mkdir()
    api, http, tcp = free_port(), free_port(), free_port()
    cfg = tmp / "config.py"
    cfg.write_text(
        CONFIG.format(
            api=api,
            http=http,
            tcp=tcp,
            password=PASSWORD,
            clusters=str(tmp / "clusters"),
            python=sys.executable,
        )
    )
    log = open(tmp / "gateway.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "dask_gateway_server", "-f", str(cfg)],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    known: set[int] = {proc.pid}
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "gateway.log").read_text()
            try:
                with opener.open(f"http://127.0.0.1:{http}/api/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gateway did not become healthy"
            time.sleep(0.2)
        info = {
            "address": f"http://127.0.0.1:{http}",
            "proxy_address": f"gateway://127.0.0.1:{tcp}",
            "proc": proc,
            "known": known,
        }
        with dask.config.set({"gateway.http-client.proxy": False}):
            yield info
    finally:
        with contextlib.suppress(psutil.Error):
            known |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        procs = [psutil.Process(p) for p in known if psutil.pid_exists(p)]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            p.kill()
        log.close()


def _profile(folder: Path, server: dict, password_env: str = "WB_TEST_GATEWAY_PASSWORD") -> str:
    shipped = yaml.safe_load(
        (Path(wb.__file__).parents[1] / "clusters" / "gateway.yaml").read_text()
    )
    shipped["options"].update(
        {
            "address": server["address"],
            "proxy_address": server["proxy_address"],
            "username": "alice",
            "password_env": password_env,
            "n_workers": 2,
        }
    )
    (folder / "gateway-test.yaml").write_text(yaml.safe_dump(shipped))
    return "gateway-test"


def test_gateway_cluster_created_scaled_used_and_shut_down(
    gateway_server: dict, user_profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WB_TEST_GATEWAY_PASSWORD", PASSWORD)
    name = _profile(user_profiles, gateway_server)
    with wb.start_cluster(name) as cluster:
        assert cluster.scheduler_address.startswith("gateway://127.0.0.1:")
        assert cluster.tls and "tls=on" in repr(cluster)
        cluster.wait_for_workers(2, timeout=120)
        assert len(cluster.workers()) == 2
        client = cluster.get_client()
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert int(client.compute(da.ones((300, 300), chunks=100).sum()).result()) == 90_000
        cluster.scale(1)
        deadline = time.monotonic() + 60
        while len(cluster.workers()) != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(cluster.workers()) == 1
        cluster_name = cluster.deployment.name
    from dask_gateway import BasicAuth, Gateway

    from workbench.clusters.gateway import retire_gateway

    with Gateway(
        gateway_server["address"],
        proxy_address=gateway_server["proxy_address"],
        auth=BasicAuth("alice", PASSWORD),
    ) as gw:
        deadline = time.monotonic() + 60
        while (
            any(c.name == cluster_name for c in gw.list_clusters()) and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        assert all(c.name != cluster_name for c in gw.list_clusters())
    retire_gateway(gw)  # dask-gateway's finaliser would close it again (see remote.py)


def test_gateway_wrong_password_is_refused(
    gateway_server: dict, user_profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WB_TEST_GATEWAY_PASSWORD", "wrong")
    name = _profile(user_profiles, gateway_server)
    t = time.monotonic()
    with pytest.raises(wb.ClusterConnectionError, match="refused the credentials of user 'alice'"):
        wb.start_cluster(name)
    assert time.monotonic() - t < 30


def test_gateway_password_variable_missing(gateway_server: dict, user_profiles: Path) -> None:
    name = _profile(user_profiles, gateway_server, password_env="WB_TEST_NOT_SET_ANYWHERE")
    os.environ.pop("WB_TEST_NOT_SET_ANYWHERE", None)
    with pytest.raises(wb.ProfileError, match="WB_TEST_NOT_SET_ANYWHERE"):
        wb.start_cluster(name)


def test_gateway_plain_http_to_another_host_is_refused(user_profiles: Path) -> None:
    (user_profiles / "gw.yaml").write_text(
        "kind: gateway\noptions: {address: 'http://gateway.example.org', password: x}\n"
    )
    with pytest.raises(wb.ProfileError, match="password in clear"):
        wb.start_cluster("gw")
