"""connect() against real `dask scheduler` / `dask worker` processes with TLS."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
from click.testing import CliRunner
from distributed import Security

import workbench as wb
from tests.conftest import free_port, threads_settle
from workbench.cli import main
from workbench.clusters.security import UnencryptedAllreduceWarning, warn_if_allreduce_unencrypted


def test_connect_with_certificates_runs_work(tls_scheduler: str, certs: dict) -> None:
    client = wb.connect(tls_scheduler, security={k: str(v) for k, v in certs.items()})
    try:
        assert client.submit(lambda x: x + 1, 41).result() == 42
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert len(workers) == 2
        assert all(a.startswith("tls://") for a in workers)
        assert {w["host"] for w in workers.values()} == {"127.0.0.1", "127.0.0.2"}
    finally:
        client.close()


def test_connect_accepts_a_security_object(tls_scheduler: str, certs: dict) -> None:
    sec = Security(
        tls_ca_file=str(certs["ca_file"]),
        tls_client_cert=str(certs["cert_file"]),
        tls_client_key=str(certs["key_file"]),
        require_encryption=True,
    )
    client = wb.connect(tls_scheduler, security=sec, set_as_default=False)
    try:
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        client.close()


def test_client_without_certificates_is_refused(tls_scheduler: str) -> None:
    t = time.monotonic()
    with pytest.raises(wb.SecurityConfigError, match="needs certificates"):
        wb.connect(tls_scheduler)
    assert time.monotonic() - t < 5


def test_client_with_certificates_of_another_ca_is_refused(
    tls_scheduler: str, other_certs: dict
) -> None:
    t = time.monotonic()
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(tls_scheduler, security={k: str(v) for k, v in other_certs.items()}, timeout=5)
    assert time.monotonic() - t < 30
    assert tls_scheduler in str(err.value)


def test_plain_tcp_client_to_a_tls_scheduler_is_refused(tls_scheduler: str) -> None:
    tcp = tls_scheduler.replace("tls://", "tcp://")
    t = time.monotonic()
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(tcp, timeout=3)
    assert time.monotonic() - t < 30
    assert tcp in str(err.value)


def test_unreachable_address_fails_within_the_timeout_and_leaves_no_thread() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    before = {t.name for t in threading.enumerate()}
    t = time.monotonic()
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(address, timeout=2)
    assert time.monotonic() - t < 20
    assert address in str(err.value) and "within 2s" in str(err.value)
    assert threads_settle(before) == set()


def test_timeout_comes_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import dask

    address = f"127.0.0.1:{free_port()}"
    with (
        dask.config.set({"workbench.cluster.connect-timeout": "1s"}),
        pytest.raises(wb.ClusterConnectionError, match="within 1s"),
    ):
        wb.connect(address)


@pytest.mark.parametrize(
    ("address", "exc", "needle"),
    [
        ("", TypeError, "scheduler address"),
        (None, TypeError, "scheduler address"),
        ("http://127.0.0.1:8786", ValueError, "use tcp:// or tls://"),
        ("tcp://127.0.0.1", ValueError, "has no port"),
    ],
)
def test_bad_addresses(address: object, exc: type, needle: str) -> None:
    with pytest.raises(exc, match=needle):
        wb.connect(address)  # type: ignore[arg-type]


def test_bad_security_arguments(tls_scheduler: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="ca_file, cert_file and key_file"):
        wb.connect(tls_scheduler, security={"ca_file": "x"})
    with pytest.raises(TypeError, match="security must be"):
        wb.connect(tls_scheduler, security="certs/")  # type: ignore[arg-type]
    with pytest.raises(wb.SecurityConfigError, match="missing"):
        wb.connect(
            tls_scheduler,
            security={
                "ca_file": tmp_path / "a",
                "cert_file": tmp_path / "b",
                "key_file": tmp_path / "c",
            },
        )


def test_allreduce_warning_once_for_tls_over_several_hosts(tls_scheduler: str, certs: dict) -> None:
    client = wb.connect(
        tls_scheduler, security={k: str(v) for k, v in certs.items()}, set_as_default=False
    )
    try:
        with pytest.warns(UnencryptedAllreduceWarning, match="127.0.0.1, 127.0.0.2"):
            assert warn_if_allreduce_unencrypted(client)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not warn_if_allreduce_unencrypted(client)  # once only
    finally:
        client.close()


def test_no_allreduce_warning_on_one_host_or_without_tls() -> None:
    with (
        wb.start_cluster("local-cpu", processes=False, n_workers=2, threads_per_worker=1) as c,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        assert not warn_if_allreduce_unencrypted(c.get_client())


def test_cli_cluster_info(tls_scheduler: str, certs: dict) -> None:
    result = CliRunner().invoke(
        main,
        [
            "cluster",
            "info",
            tls_scheduler,
            "--ca-file",
            str(certs["ca_file"]),
            "--cert-file",
            str(certs["cert_file"]),
            "--key-file",
            str(certs["key_file"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "workers:   2" in result.output and "tls:       on" in result.output
    assert "127.0.0.2" in result.output


def test_cli_cluster_info_unreachable() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["cluster", "info", address, "--timeout", "1s"])
    assert result.exit_code == 1
    assert address in result.output
