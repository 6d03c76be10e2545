"""The ssh profile against a real OpenSSH server on a loopback port, with TLS."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask.array as da
import psutil
import pytest
import yaml

import workbench as wb

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

pytestmark = pytest.mark.slow


def _need_sshd() -> None:
    if not os.path.exists(SSHD):
        if os.environ.get("CI"):
            pytest.fail("CI must install openssh-server (see .ci/run)")
        pytest.skip("OpenSSH server not installed: apt-get install openssh-server")


def _tagged(tag: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get("WB_TEST_SSHD") == tag:
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An sshd listening on 127.0.0.1 only, accepting one key made here."""
    _need_sshd()
    tmp = tmp_path_factory.mktemp("sshd")
    os.chmod(tmp, 0o755)
    host_key, client_key = tmp / "host_key", tmp / "client_key"
    for key in (host_key, client_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True
        )
    (tmp / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = str(tmp)
    env = {"WB_TEST_SSHD": tag, "PYTHONUNBUFFERED": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    config = tmp / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {tmp / 'sshd.pid'}",
                f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
                f"AllowUsers {getpass.getuser()}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PrintMotd no",
                "LogLevel ERROR",
                "SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()),
            ]
        )
        + "\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.settimeout(2)
                    if c.recv(8).startswith(b"SSH-"):
                        break
            except OSError:
                assert time.monotonic() < deadline, "sshd did not start"
                time.sleep(0.1)
        yield {"port": port, "client_key": str(client_key), "tag": tag}
    finally:
        leftovers = _tagged(tag)
        for p in leftovers:
            p.kill()
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def _profile(folder: Path, sshd: dict, certs: dict | None) -> str:
    shipped = yaml.safe_load((Path(wb.__file__).parents[1] / "clusters" / "ssh.yaml").read_text())
    shipped["options"].update(
        {
            "hosts": ["127.0.0.1", "127.0.0.1", "127.0.0.1"],
            "remote_python": sys.executable,
            "connect_options": {
                "port": sshd["port"],
                "username": getpass.getuser(),
                "known_hosts": None,
                "client_keys": [sshd["client_key"]],
                "agent_path": None,
                "config": [],
            },
            "scheduler_options": {"host": "127.0.0.1", "port": 0},
            # no host here: each worker binds to its own entry in hosts (127.0.0.1) by itself
            "worker_options": {
                "dashboard_address": "127.0.0.1:0",
                "nthreads": 1,
                "memory_limit": "1GiB",
            },
        }
    )
    if certs:
        shipped["security"] = {"tls": True, **{k: str(v) for k, v in certs.items()}}
    else:
        shipped["security"] = {"tls": False}
    shipped["dashboard"] = {"address": "127.0.0.1:0"}
    path = folder / "ssh-test.yaml"
    path.write_text(yaml.safe_dump(shipped))
    return "ssh-test"


def test_ssh_profile_with_tls_two_workers_and_a_computation(
    sshd: dict, certs: dict, user_profiles: Path
) -> None:
    name = _profile(user_profiles, sshd, certs)
    with wb.start_cluster(name) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        cluster.wait_for_workers(2, timeout=60)
        workers = cluster.workers()
        assert len(workers) == 2
        assert all(w.address.startswith("tls://127.0.0.1:") for w in workers)
        client = cluster.get_client()
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert int(client.compute(da.ones((400, 400), chunks=100).sum()).result()) == 160_000
        remote = _tagged(sshd["tag"])
        assert len(remote) >= 3  # scheduler and workers really run through sshd
        for p in remote:  # everything the remote side listens on is loopback
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    assert c.laddr.ip == "127.0.0.1", (p.cmdline(), c)
        assert "tls=on" in repr(cluster)
    deadline = time.monotonic() + 30
    while _tagged(sshd["tag"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged(sshd["tag"]) == []


def test_ssh_profile_without_certificates_is_refused_before_connecting(
    sshd: dict, user_profiles: Path, tmp_path: Path
) -> None:
    name = _profile(
        user_profiles,
        sshd,
        {
            "ca_file": tmp_path / "ca.pem",
            "cert_file": tmp_path / "c.pem",
            "key_file": tmp_path / "k.pem",
        },
    )
    with pytest.raises(wb.SecurityConfigError, match="certificate files are missing"):
        wb.start_cluster(name)
    assert _tagged(sshd["tag"]) == []


def test_ssh_unreachable_port_is_a_clear_error(sshd: dict, user_profiles: Path) -> None:
    name = _profile(user_profiles, {**sshd, "port": 1}, None)
    t = time.monotonic()
    with pytest.raises(wb.ClusterConnectionError, match="SSH port 1"):
        wb.start_cluster(name)
    assert time.monotonic() - t < 60
