"""Shared fixtures: certificates, real scheduler/worker processes, and leak checks."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from distributed import Client, LocalCluster

import workbench as wb

ROOT = Path(__file__).resolve().parents[1]
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
DASK_WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def children() -> set[int]:
    """Child processes of this test process, without multiprocessing's resource tracker."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


def wait_until_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """Wait for ``pids`` to exit; return those still alive."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {
            p
            for p in alive
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        }
        time.sleep(0.2)
    return alive


def threads_settle(before: set[str], timeout: float = 10.0) -> set[str]:
    """Wait for threads that were not there before to end; return their names if they do not.

    distributed's process-wide offload executor (one thread, ``Dask-Offload_0``, made on first
    use and reused by every later cluster and client) is not a leak and is left out.
    """
    deadline = time.monotonic() + timeout
    extra = set()
    while time.monotonic() < deadline:
        extra = {
            t.name
            for t in threading.enumerate()
            if t.name not in before and t.is_alive() and not t.name.startswith("Dask-Offload")
        }
        if not extra:
            break
        time.sleep(0.2)
    return extra


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A client of an in-process cluster of 2 workers x 1 thread, for one test module.

    Not the default client: code under test must use the client it is given.
    """
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def tcp_client() -> Iterator[Client]:
    """An in-process cluster of 2 workers x 1 thread on tcp://127.0.0.1, for one test module.

    For what must reach the cluster from other processes (JupyterLab's kernels) or needs the
    workers' addresses to be 127.0.0.1 (LightGBM's machines list): ``processes=False`` alone
    would pick the in-process transport.
    """
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


def span_prefixes(dask_scheduler: Any) -> dict[str, set[str]]:
    """Each span's name and the task prefixes that ran in it (``client.run_on_scheduler``)."""
    out: dict[str, set[str]] = {}
    for s in dask_scheduler.extensions["spans"].spans.values():
        out.setdefault("/".join(s.name), set()).update(g.prefix.name for g in s.groups)
    return out


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1/127.0.0.2/localhost, made for this test session."""
    folder = tmp_path_factory.mktemp("certs")
    return wb.make_certificates(folder, hosts=("127.0.0.1", "127.0.0.2", "localhost"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Certificates from a different CA: a scheduler using ``certs`` must refuse them."""
    return wb.make_certificates(tmp_path_factory.mktemp("other-certs"))


def _wait_for_log(proc: subprocess.Popen[bytes], log: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if needle in text:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{needle!r} not seen within {timeout}s in {log}:\n{log.read_text()}")


@pytest.fixture(scope="session")
def tls_scheduler(
    certs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real ``dask scheduler`` process with TLS and two ``dask worker`` processes.

    The workers listen on two loopback addresses (127.0.0.1 and 127.0.0.2), so the cluster
    looks like two hosts to anything that counts them.
    """
    port = free_port()
    tls = [
        "--tls-ca-file",
        str(certs["ca_file"]),
        "--tls-cert",
        str(certs["cert_file"]),
        "--tls-key",
        str(certs["key_file"]),
    ]
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}
    work = tmp_path_factory.mktemp("dask-procs")
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def launch(name: str, cmd: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = work / f"{name}.log"
        f = open(log, "wb")  # noqa: SIM115 - closed below
        logs.append(f)
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
        procs.append(p)
        return p, log

    try:
        sched, log = launch(
            "scheduler",
            [
                *DASK,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--protocol",
                "tls",
                "--dashboard-address",
                "127.0.0.1:0",
                *tls,
            ],
        )
        _wait_for_log(sched, log, "Scheduler at", 60)
        address = f"tls://127.0.0.1:{port}"
        for i, host in enumerate(("127.0.0.1", "127.0.0.2")):
            w, log = launch(
                f"worker-{i}",
                [
                    *DASK_WORKER,
                    address,
                    "--host",
                    host,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--dashboard-address",
                    f"{host}:0",
                    "--memory-limit",
                    "1GiB",
                    *tls,
                ],
            )
            _wait_for_log(w, log, "Registered to", 60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()


@pytest.fixture()
def user_profiles(tmp_path: Path) -> Iterator[Path]:
    """An empty user profile folder, set through dask.config for the test."""
    import dask

    folder = tmp_path / "profiles"
    folder.mkdir()
    with dask.config.set({"workbench.profiles.path": str(folder)}):
        yield folder


def has_binary(name: str) -> bool:
    return shutil.which(name) is not None


@pytest.fixture()
def identity_calls(client: Client) -> Iterator[list[dict[str, Any]]]:
    """The ``identity`` requests the real in-process scheduler answers within the test.

    The scheduler's own handler is wrapped (and restored after): it still answers; each call's
    arguments are recorded. ``Client.scheduler_info`` and ``workbench._client.snapshot`` both
    ask this handler.
    """
    scheduler = client.cluster.scheduler
    original = scheduler.handlers["identity"]
    calls: list[dict[str, Any]] = []

    @functools.wraps(original)
    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(**kwargs)

    scheduler.handlers["identity"] = counting
    try:
        yield calls
    finally:
        scheduler.handlers["identity"] = original


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's, driven by Playwright) for one test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()
