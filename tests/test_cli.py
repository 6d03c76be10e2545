"""The workbench command: profiles, hardware, tls make, and `cluster up` in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from click.testing import CliRunner

import workbench as wb
from tests.conftest import ROOT
from workbench.cli import main


def test_profiles_command() -> None:
    result = CliRunner().invoke(main, ["profiles"])
    assert result.exit_code == 0
    for name in ("local", "local-cpu", "local-gpu", "ssh", "kubernetes", "slurm", "gateway"):
        assert name in result.output
    assert "built-in:" in result.output


def test_hardware_command() -> None:
    result = CliRunner().invoke(main, ["hardware"])
    assert result.exit_code == 0
    hw = wb.hardware()
    assert f"cores:  {hw.cpu_count}" in result.output
    assert ("gpus:   none" in result.output) == (not hw.gpus)


def test_tls_make_writes_usable_certificates(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["tls", "make", str(tmp_path / "tls"), "--host", "127.0.0.1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    names = sorted(p.name for p in (tmp_path / "tls").iterdir())
    assert names == ["ca.pem", "cert.pem", "client-cert.pem", "client-key.pem", "key.pem"]
    from workbench.clusters.security import security_from_files

    sec = security_from_files(
        tmp_path / "tls" / "ca.pem", tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    )
    assert sec.require_encryption


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    a = wb.make_certificates(tmp_path / "a")
    b = wb.make_certificates(tmp_path / "b")
    import pytest

    from workbench.clusters.security import security_from_files

    with pytest.raises(wb.SecurityConfigError, match="do not fit together"):
        security_from_files(a["ca_file"], a["cert_file"], b["key_file"])


def test_bad_option_syntax_and_unknown_profile() -> None:
    result = CliRunner().invoke(main, ["cluster", "up", "-o", "n_workers"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output
    result = CliRunner().invoke(main, ["cluster", "up", "--profile", "nope"])
    assert result.exit_code == 2 and "known profiles" in result.output


def test_cluster_up_runs_until_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("workbench")
    proc = subprocess.Popen(
        [str(exe), "cluster", "up", "--profile", "local-cpu", "-o", "n_workers=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("scheduler: tcp://127.0.0.1:"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        address = line.split()[1]
        dash = proc.stdout.readline()
        assert dash.startswith("dashboard: http://127.0.0.1:")
        client = wb.connect(address, set_as_default=False)
        try:
            assert client.submit(sum, [5, 6]).result() == 11
        finally:
            client.close()
        kids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert kids  # the worker process
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "cluster closed" in err
        deadline = time.monotonic() + 20
        while any(psutil.pid_exists(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [
            k
            for k in kids
            if psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE
        ]
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cluster_up_ends_by_itself_after_the_idle_timeout(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("workbench")
    out = subprocess.run(
        [
            str(exe),
            "cluster",
            "up",
            "--profile",
            "local-cpu",
            "-o",
            "n_workers=1",
            "--idle-timeout",
            "2s",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert "the scheduler closed (idle timeout or shut down)" in out.stderr
    assert "cluster closed" in out.stderr
