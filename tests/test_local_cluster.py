"""start_cluster with real LocalClusters: reprs, overrides, scaling, TLS, GPU fallback, cleanup."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import dask
import dask.array as da
import pytest
from distributed import Client, Security

import workbench as wb
from tests.conftest import children, threads_settle, wait_until_gone
from workbench.clusters.local import cpu_layout


def test_start_cluster_processes_repr_html_and_clean_close() -> None:
    before_children = children()
    before_threads = {t.name for t in threading.enumerate()}
    with wb.start_cluster("local-cpu", n_workers=2, threads_per_worker=1) as cluster:
        client = cluster.get_client()
        assert client is cluster.get_client()
        from distributed import get_client

        assert get_client() is client  # the new client is the current one
        assert client.submit(sum, [1, 2, 3]).result() == 6
        text = repr(cluster)
        assert text.startswith("<workbench.Cluster 'local-cpu' (local): tcp://127.0.0.1:")
        assert "workers=2" in text and "threads=2" in text and "tls=off" in text
        # the workers report the machine's GPU where NVML sees one; they are CPU workers all
        # the same (no CUDA_VISIBLE_DEVICES of their own: device="auto" keeps NumPy there)
        assert f"gpus={2 if wb.hardware().gpus else 0}" in text
        html = cluster._repr_html_()
        for needle in (
            "workbench.Cluster",
            cluster.scheduler_address,
            cluster.dashboard_link,
            "<td>2</td>",
            "TLS",
            "GPUs",
        ):
            assert needle in html, needle
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        workers = cluster.workers()
        assert [w.threads for w in workers] == [1, 1]
        assert all(w.host == "127.0.0.1" for w in workers)
        spawned = children() - before_children
        assert len(spawned) >= 2  # real worker processes
    assert repr(cluster).endswith("closed>")
    assert "closed" in cluster._repr_html_()
    assert wait_until_gone(spawned) == set()
    assert children() - before_children == set()
    assert threads_settle(before_threads) == set()
    cluster.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        cluster.get_client()


def _environ() -> dict[str, str | None]:
    import os

    keys = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {k: os.environ.get(k) for k in keys}


@pytest.mark.parametrize("trim", [None, 65536])
def test_worker_processes_get_the_training_malloc_setting_and_this_process_keeps_its_own(
    trim: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536 (XGBoost's buffers then
    # page-fault every round) and leave their variables in this process's environment (a
    # notebook's XGBoost imported afterwards runs on one thread). A plain LocalCluster started
    # earlier in this test process leaves it there; this test starts from a clean process's.
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    here = _environ()
    with (
        dask.config.set({"workbench.cluster.malloc-trim-threshold": trim}),
        wb.start_cluster("local-cpu", n_workers=1, threads_per_worker=1) as cluster,
    ):
        (seen,) = cluster.get_client().run(_environ).values()
        assert _environ() == here  # this process's environment is as it was
        restarted = cluster.get_client().restart_workers(list(cluster.get_client().nthreads()))
        assert restarted
        (again,) = cluster.get_client().run(_environ).values()
    assert seen["MALLOC_TRIM_THRESHOLD_"] == (None if trim is None else str(trim))
    assert seen["OMP_NUM_THREADS"] == "1"  # Dask's one thread per library stays
    assert again == seen  # a worker the nanny restarts gets the same


def test_a_bad_malloc_setting_is_refused_before_anything_starts() -> None:
    for bad in ("64k", -1, True):
        with (
            dask.config.set({"workbench.cluster.malloc-trim-threshold": bad}),
            pytest.raises(ValueError, match=r"malloc-trim-threshold=.*use null"),
        ):
            wb.start_cluster("local-cpu", n_workers=1, threads_per_worker=1)


def test_default_layout_follows_the_measurement() -> None:
    assert cpu_layout(1) == (1, 1)
    assert cpu_layout(2) == (1, 2)
    assert cpu_layout(8) == (1, 8)
    assert cpu_layout(16) == (2, 8)
    assert cpu_layout(20) == (2, 10)


def test_default_profile_falls_back_to_cpu_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    if wb.hardware().gpus:  # pragma: no cover - covered by tests/gpu
        pytest.skip("this machine has a GPU; tests/gpu covers the GPU choice")
    with wb.start_cluster(processes=False) as cluster:
        assert cluster.name == "local-cpu"
        # in-process clusters talk over inproc://, yet the dashboard listens on localhost only
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        ws = cluster.workers()
        assert len(ws) == cpu_layout(wb.hardware().cpu_count)[0]
    err = capsys.readouterr().err
    assert "starting the CPU profile 'local-cpu'" in err
    assert "no gpu is visible" in err.lower()


def test_local_gpu_without_gpu_is_a_clear_error() -> None:
    if wb.hardware().gpus:  # pragma: no cover
        pytest.skip("this machine has a GPU")
    t = time.monotonic()
    with pytest.raises((wb.GPUUnavailableError, wb.MissingDependencyError)) as err:
        wb.start_cluster("local-gpu")
    assert time.monotonic() - t < 30
    msg = str(err.value)
    assert "local-gpu" in msg
    from workbench.clusters.local import has_dask_cuda

    if has_dask_cuda():
        assert isinstance(err.value, wb.GPUUnavailableError)
        assert "no GPU" in msg or "none is visible" in msg
    assert "local-cpu" in msg


def test_local_gpu_without_the_gpu_extra_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['dask_cuda'] = None\n"
        "import workbench as wb\n"
        "try:\n    wb.start_cluster('local-gpu')\n"
        "except wb.MissingDependencyError as e:\n    print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")
    assert "pip install 'workbench[gpu]'" in out.stdout


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(wb.ProfileError) as err:
        wb.start_cluster("local-cpu", n_worker=2)
    msg = str(err.value)
    assert "'n_worker'" in msg and "n_workers" in msg and "Valid options" in msg


@pytest.mark.parametrize(
    ("kwargs", "exc", "needle"),
    [
        ({"n_workers": "two"}, wb.ProfileError, "whole number"),
        ({"minimum": 3, "maximum": 1}, ValueError, "swap"),
        ({"minimum": -1}, ValueError, "whole number"),
    ],
)
def test_bad_values_are_refused_before_anything_starts(
    kwargs: dict, exc: type, needle: str
) -> None:
    before = children()
    with pytest.raises(exc, match=needle):
        wb.start_cluster("local-cpu", processes=False, **kwargs)
    assert children() == before


def test_overrides_scale_and_adapt() -> None:
    with wb.start_cluster("local-cpu", processes=False, n_workers=1, threads_per_worker=1) as c:
        c.scale(2)
        c.wait_for_workers(2, timeout=30)
        assert len(c.workers()) == 2
        adaptive = c.adapt(minimum=1, maximum=3)
        assert adaptive.minimum == 1 and adaptive.maximum == 3
        with pytest.raises(ValueError, match="minimum"):
            c.adapt(minimum=4, maximum=2)


def test_adaptive_bounds_from_start_cluster() -> None:
    with wb.start_cluster("local-cpu", processes=False, n_workers=0, minimum=1, maximum=2) as c:
        c.wait_for_workers(1, timeout=30)
        adaptive = c.deployment._adaptive
        assert adaptive is not None and adaptive.minimum == 1 and adaptive.maximum == 2


def test_tls_local_cluster_uses_temporary_certificates(other_certs: dict) -> None:
    with wb.start_cluster("local-cpu", tls=True, n_workers=1) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        assert cluster.tls and "tls=on" in repr(cluster)
        assert "<td>on</td>" in cluster._repr_html_()
        x = da.ones((1000,), chunks=100)
        assert cluster.get_client().compute(x.sum()).result() == 1000
        # clients hold a client certificate of their own, never the scheduler's and workers'
        sec: Any = cluster.security
        assert sec.tls_client_cert != sec.tls_scheduler_cert == sec.tls_worker_cert
        assert sec.tls_client_key not in (sec.tls_scheduler_key, sec.tls_worker_key)
        client_only = Security(
            tls_ca_file=sec.tls_ca_file,
            tls_client_cert=sec.tls_client_cert,
            tls_client_key=sec.tls_client_key,
            require_encryption=True,
        )
        with Client(cluster.scheduler_address, security=client_only, set_as_default=False) as c:
            assert c.submit(sum, [1, 2]).result() == 3  # what a Lab kernel is given is enough
        # a client without the certificates, or with another CA's, is refused, fast
        t = time.monotonic()
        with pytest.raises(wb.SecurityConfigError):
            wb.connect(cluster.scheduler_address)
        with pytest.raises(wb.ClusterConnectionError):
            wb.connect(cluster.scheduler_address, security=other_certs, timeout=5)
        assert time.monotonic() - t < 30


def test_idle_timeout_closes_the_scheduler_and_the_cluster_notices() -> None:
    cluster = wb.start_cluster("local-cpu", processes=False, n_workers=1, idle_timeout="1s")
    try:
        assert cluster.status == "running"
        deadline = time.monotonic() + 30
        while cluster.status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cluster.deployment.scheduler.status.name in ("closed", "closing")
        assert cluster.status == "lost"
        assert "scheduler gone" in repr(cluster)
        assert "scheduler is gone" in cluster._repr_html_()
    finally:
        cluster.close()
    assert cluster.status == "closed"


def test_in_process_cluster_listens_on_loopback_only() -> None:
    import psutil

    with wb.start_cluster("local-cpu", processes=False, n_workers=2) as cluster:
        ws = cluster.workers()
        assert [w.threads for w in ws] == [max(1, wb.hardware().cpu_count // 2)] * 2
        listening = [
            c.laddr
            for c in psutil.Process().net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening  # the dashboard and the workers' HTTP servers
        assert all(a.ip == "127.0.0.1" for a in listening), listening


def test_options_that_belong_to_top_level_keys_say_where_they_go(user_profiles) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(wb.ProfileError, match="top-level 'security:' key"):
        wb.start_cluster("local-cpu", processes=False, security={"tls": True})
    (user_profiles / "mine.yaml").write_text(
        "kind: local\noptions: {dashboard_address: '127.0.0.1:8787'}\n"
    )
    with pytest.raises(wb.ProfileError, match=r"'dashboard: \{address: \.\.\.\}'"):
        wb.start_cluster("mine")


@pytest.mark.parametrize("address", ["x", "127.0.0.1", "127.0.0.1:port", 8787])
def test_bad_dashboard_address_is_refused(address: object) -> None:
    with pytest.raises(ValueError, match="dashboard address"):
        wb.start_cluster("local-cpu", processes=False, dashboard_address=address)  # type: ignore[arg-type]
