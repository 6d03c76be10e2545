"""`workbench lab`: a real JupyterLab with dask-labextension, and real kernels on the cluster."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner
from distributed import Client

from tests.conftest import free_port
from workbench import lab
from workbench.cli import main


@dataclass
class Lab:
    """A `workbench lab` process and what it printed."""

    proc: subprocess.Popen[str]
    base: str
    token: str
    lines: list[str] = field(default_factory=list)

    def printed(self, prefix: str) -> str:
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise AssertionError(f"no {prefix!r} line in: {self.lines}")

    def get(self, path: str) -> Any:
        sep = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{self.base}{path}{sep}token={self.token}", timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            time.sleep(0.3)  # the reader thread takes the last lines
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def _start(tmp: Path, *args: str) -> Lab:
    """Run `workbench lab ARGS` with Jupyter's folders in ``tmp``; wait until it answers."""
    port = free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        **{
            var: str(tmp / name)
            for var, name in (
                ("JUPYTER_RUNTIME_DIR", "runtime"),
                ("JUPYTER_CONFIG_DIR", "config"),
                ("JUPYTER_DATA_DIR", "data"),
                ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
                ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            )
        },
    }
    cmd = [sys.executable, "-m", "workbench", "lab", "--no-browser", "--port", str(port)]
    cmd += ["--root-dir", str(tmp), *args, f"--IdentityProvider.token={token}"]
    cmd.append("--ServerApp.port_retries=0")  # that port or fail, not a silent other one
    if os.geteuid() == 0:  # CI runs as root, which JupyterLab refuses without this
        cmd.append("--allow-root")
    proc = subprocess.Popen(
        cmd,
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    started = Lab(proc, f"http://127.0.0.1:{port}", token)
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            started.lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            started.stop()
            raise AssertionError(f"workbench lab exited {proc.returncode}: {started.lines}")
        try:
            started.get("/api/status")
            return started
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                started.stop()
                raise AssertionError(f"JupyterLab did not answer: {started.lines}") from None
            time.sleep(0.5)


async def _execute(lab_: Lab, code: str) -> str:
    """Run ``code`` in a new python3 kernel of the server; return what it printed.

    Each printed chunk is prefixed by its stream, ``stdout: `` or ``stderr: ``, and each
    display's text form by ``display: ``.
    """
    from tornado.httpclient import AsyncHTTPClient
    from tornado.websocket import websocket_connect

    http = AsyncHTTPClient()
    q = f"token={lab_.token}"
    reply = await http.fetch(
        f"{lab_.base}/api/kernels?{q}", method="POST", body=json.dumps({"name": "python3"})
    )
    kernel = json.loads(reply.body)["id"]
    ws_url = lab_.base.replace("http", "ws", 1) + f"/api/kernels/{kernel}/channels?{q}"
    ws = await websocket_connect(ws_url)
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
    await ws.write_message(json.dumps(request))
    out: list[str] = []
    try:
        while True:
            raw = await ws.read_message()
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(f"{msg['content']['name']}: {msg['content']['text']}\x00")
            elif kind == "display_data":  # the workbench's notes in a notebook
                out.append(f"display: {msg['content']['data'].get('text/plain', '')}\x00")
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()
        await http.fetch(f"{lab_.base}/api/kernels/{kernel}?{q}", method="DELETE")


def _run_in_kernel(lab_: Lab, code: str) -> tuple[list[str], str]:
    """The lines printed to stdout, and all that was shown (stderr and displays too)."""
    printed = asyncio.run(asyncio.wait_for(_execute(lab_, code), 120))
    stdout = "".join(p[8:] for p in printed.split("\x00") if p.startswith("stdout: "))
    return stdout.splitlines(), printed


KERNEL_CODE = """
import os
from distributed import get_client
from workbench._client import ensure_client
c = ensure_client()
n = len(c.scheduler_info(n_workers=-1)["workers"])
print(c.scheduler.address, n, c.submit(sum, [1, 2]).result())
print(os.environ.get("DASK_DISTRIBUTED__COMM__TLS__CA_FILE", "-"))
"""


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    started = _start(
        tmp, "-p", "local-cpu", "--tls", "-o", "n_workers=1", "-o", "threads_per_worker=1"
    )
    yield started
    started.stop()


def test_the_dask_extension_shows_the_clusters_dashboard(tls_lab: Lab) -> None:
    dashboard = tls_lab.printed("dashboard:")
    assert dashboard.startswith("http://127.0.0.1:") and dashboard.endswith("/status")
    root = dashboard[: -len("/status")]
    plugin = tls_lab.get("/lab/api/settings/dask-labextension:plugin")
    assert plugin["schema"]["properties"]["defaultURL"]["default"] == root
    check = tls_lab.get("/dask/dashboard-check/" + urllib.parse.quote(root, safe=""))
    assert check["isActive"] is True  # the extension's server side reached the dashboard
    assert "/individual-task-stream" in check["plots"].values(), check["plots"]


JOIN_CODE = """
import psutil
import workbench as wb
before = len(psutil.Process().children(recursive=True))
cluster = wb.start_cluster()
client = cluster.get_client()
print(type(cluster).__name__, cluster.scheduler_address, len(cluster.workers()))
print(client.submit(sum, [1, 2]).result(), len(psutil.Process().children(recursive=True)) - before)
print(cluster.dashboard_link)
"""


def test_a_notebooks_start_cluster_joins_the_labs(tls_lab: Lab) -> None:
    """Issue 15, item 1: ``wb.start_cluster()`` in a lab kernel is the lab's cluster."""
    address = tls_lab.printed("scheduler:")
    (first, second, link), printed = _run_in_kernel(tls_lab, JOIN_CODE)
    assert first == f"JoinedCluster {address} 1"
    assert second == "3 0"  # it ran there, and the kernel started no process
    assert link == tls_lab.printed("dashboard:")  # the lab's panes show this cluster's work
    assert f"joined the running cluster at {address}" in printed


def _worker_processes(lab_: Lab) -> list[psutil.Process]:
    """The cluster's worker processes under `workbench lab` (spawned by their nannies)."""
    kids = psutil.Process(lab_.proc.pid).children(recursive=True)
    return [p for p in kids if "spawn_main" in " ".join(p.cmdline())]


def test_kernels_connect_to_the_cluster_over_tls(tls_lab: Lab) -> None:
    """Kernels reach the TLS cluster; Ctrl-C spares its workers; a stop removes everything."""
    address = tls_lab.printed("scheduler:")
    assert address.startswith("tls://127.0.0.1:")
    (first, ca_file), printed = _run_in_kernel(tls_lab, KERNEL_CODE)
    assert first == f"{address} 1 3"
    assert f"connecting to the scheduler at {address}" in printed  # said, as a note
    ca = Path(ca_file)
    assert ca.is_file() and ca.stat().st_mode & 0o077 == 0  # the temporary CA, private
    assert ca.parent.stat().st_mode & 0o077 == 0
    # a notebook may still start a plain local cluster of its own
    own = "from distributed import LocalCluster\nwith LocalCluster(n_workers=1, processes=False, "
    own += "dashboard_address=':0') as c:\n    print(c.scheduler_address.split(':')[0])"
    assert _run_in_kernel(tls_lab, own)[0] == ["inproc"]
    workers = _worker_processes(tls_lab)
    assert len(workers) == 1  # the worker process (its nanny lives in the workbench process)
    for p in workers:  # what Ctrl-C in the terminal sends them
        p.send_signal(signal.SIGINT)
    time.sleep(2)
    assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)
    assert _run_in_kernel(tls_lab, KERNEL_CODE)[0][0] == f"{address} 1 3"
    assert tls_lab.stop() == 0
    assert "cluster closed" in " ".join(tls_lab.lines)
    assert not ca.parent.exists()  # the certificates are gone with JupyterLab
    assert not any(p.is_running() for p in workers)


def test_a_running_scheduler_is_used_as_it_is(tcp_client: Client, tmp_path: Path) -> None:
    client = tcp_client
    address = client.scheduler.address
    port = client.scheduler_info()["services"]["dashboard"]
    started = _start(tmp_path, "--scheduler", address)
    try:
        assert started.printed("dashboard:") == f"http://127.0.0.1:{port}/status"
        plugin = started.get("/lab/api/settings/dask-labextension:plugin")
        default = plugin["schema"]["properties"]["defaultURL"]["default"]
        assert default == f"http://127.0.0.1:{port}"
        assert _run_in_kernel(started, KERNEL_CODE)[0][0] == f"{address} 2 3"
    finally:
        assert started.stop() == 0
    assert client.submit(sum, [2, 3]).result() == 5  # the scheduler was not closed
    assert "disconnected" in " ".join(started.lines)


def test_settings_keep_the_sites_own(tmp_path: Path) -> None:
    base = tmp_path / "site"
    (base / "overrides.d").mkdir(parents=True)
    (base / "page_config.json").write_text('{"disabledExtensions": {"x": true}}')
    (base / "overrides.json").write_text(
        '{"dask-labextension:plugin": {"hideClusterManager": true}}'
    )
    (base / "overrides.d").chmod(0o555)  # a read-only site folder
    out = lab.write_settings_dir(tmp_path / "out", "http://127.0.0.1:8787", base=base)
    assert (out / "overrides.d").stat().st_mode & 0o200
    assert json.loads((out / "page_config.json").read_text()) == {"disabledExtensions": {"x": True}}
    assert (out / "overrides.json").read_text() == (base / "overrides.json").read_text()
    ours = json.loads((out / "overrides.d" / "zz-workbench-dask.json").read_text())
    assert ours == {"dask-labextension:plugin": {"defaultURL": "http://127.0.0.1:8787"}}
    assert not (base / "overrides.d" / "zz-workbench-dask.json").exists()  # the site's untouched


def test_certificate_paths_reach_kernels_absolute(tmp_path: Path, monkeypatch: Any) -> None:
    from types import SimpleNamespace

    monkeypatch.chdir(tmp_path)
    security = SimpleNamespace(
        tls_ca_file="certs/ca.pem", tls_client_cert="certs/c.pem", tls_client_key="certs/k.pem"
    )
    env = lab.kernel_env("tls://10.0.0.1:8786", security, tmp_path)
    assert env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == str(tmp_path / "certs/ca.pem")
    assert env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"] == str(tmp_path / "certs/k.pem")
    assert "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION" not in env
    assert lab.kernel_env("tcp://10.0.0.1:8786", None, tmp_path) == {
        "DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.1:8786"
    }


def test_bad_lab_arguments() -> None:
    with pytest.raises(ImportError, match=r"no_such_module_xyz.*pip install 'workbench\[lab\]'"):
        lab.check_installed(("jupyterlab", "no_such_module_xyz"))
    result = CliRunner().invoke(main, ["lab", "--scheduler", "tcp://127.0.0.1:1", "-p", "local"])
    assert result.exit_code == 2 and "--profile, --tls and -o do not apply" in result.output
    result = CliRunner().invoke(main, ["lab", "--ca-file", "ca.pem", "--no-browser"])
    assert result.exit_code == 2 and "go with --scheduler" in result.output
    root = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
    args = ["lab", "--profile", "no-such-profile", "--no-browser", *root]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "no-such-profile" in result.output
