"""connect() against real `dask scheduler` / `dask worker` processes with TLS."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socket
import socketserver
import threading
import warnings
from collections.abc import Iterator

import dask
import pytest
from click.testing import CliRunner
from distributed import Client, Security, default_client

import workbench as wb
from tests.conftest import free_port, threads_settle
from workbench._client import ensure_client
from workbench.cli import main
from workbench.clusters.connect import plain_tcp_warning
from workbench.training.allreduce import UnencryptedAllreduceWarning, warn_if_allreduce_unencrypted

HTTP_SERVER = "an HTTP server"
SILENT = "a silent server"


@contextlib.contextmanager
def non_dask_server(reply: bytes | str, lifetime: float = 60.0) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that does not speak Dask; yields its tcp:// address.

    ``HTTP_SERVER``: the standard library's HTTP server (it answers Dask's handshake with a
    400 response); ``SILENT``: it accepts, reads and never answers; bytes: it answers each
    connection's first message with them. Connections are held until the block ends, or
    ``lifetime`` seconds at most; the server and its threads are gone when the block ends.
    """
    stop = threading.Event()

    class Quiet(http.server.BaseHTTPRequestHandler):
        timeout = lifetime  # of its reads: it waits for a request line that never comes

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Raw(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(lifetime)
            try:
                self.request.recv(65536)  # the client's handshake
                if isinstance(reply, bytes):
                    self.request.sendall(reply)
            except OSError:
                return
            stop.wait(lifetime)

    server: socketserver.ThreadingTCPServer
    if reply == HTTP_SERVER:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    else:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Raw)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="non-dask-server")
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(lifetime)


@contextlib.contextmanager
def workbench_log(level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """The records of the ``workbench`` logger (which does not propagate) within the block."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("workbench")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


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


@pytest.mark.timeout(30)  # a hang guard: refused before any connection
def test_client_without_certificates_is_refused(tls_scheduler: str) -> None:
    with pytest.raises(wb.SecurityConfigError, match="needs certificates"):
        wb.connect(tls_scheduler)


@pytest.mark.timeout(60)
def test_client_with_certificates_of_another_ca_is_refused(
    tls_scheduler: str, other_certs: dict
) -> None:
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(tls_scheduler, security={k: str(v) for k, v in other_certs.items()}, timeout=5)
    assert tls_scheduler in str(err.value)


@pytest.mark.timeout(60)
def test_plain_tcp_client_to_a_tls_scheduler_is_refused(tls_scheduler: str) -> None:
    tcp = tls_scheduler.replace("tls://", "tcp://")
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(tcp, timeout=3)
    assert tcp in str(err.value)


@pytest.mark.timeout(60)
def test_unreachable_address_fails_within_the_timeout_and_leaves_no_thread() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(address, timeout=2)
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
        ("tcp://127.0.0.1:99999", ValueError, "a port is 1 to 65535"),
        ("127.0.0.1:0", ValueError, "a port is 1 to 65535"),
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


# --- ports that are not a Dask scheduler's (issue 12, item 6) --------------------------------


HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("server", [SILENT, HTTP_SERVER], ids=["silent", "http-server"])
def test_a_silent_port_fails_within_the_timeout_and_leaves_nothing_running(server: str) -> None:
    # An HTTP server waits for a request line that Dask's binary handshake never ends
    before = {t.name for t in threading.enumerate()}
    with non_dask_server(server) as address:
        with pytest.raises(wb.ClusterConnectionError) as err:
            wb.connect(address, timeout=1)  # before the fix: waited as long as the server held on
        assert address in str(err.value)
        assert "accepted the connection but did not speak Dask's protocol within 1s" in str(
            err.value
        )
    assert threads_settle(before) == set()
    with pytest.raises(ValueError):
        Client.current()  # no client was left behind


@pytest.mark.parametrize(
    "reply",
    [
        HTTP_400,  # "HTTP/1.1" read as a message length: 3 EiB (MemoryError before the fix)
        b"SSH-2.0-OpenSSH_9.6\r\n",  # an SSH server's greeting
        b"\xff" * 64,  # the largest length there is
        b"\x05\x00\x00\x00\x00\x00\x00\x00hello",  # a length, then no valid frames
    ],
    ids=["http-400", "ssh", "huge-length", "bad-frames"],
)
def test_a_port_speaking_another_protocol_is_named(reply: bytes | str) -> None:
    with non_dask_server(reply) as address:
        with pytest.raises(wb.ClusterConnectionError) as err:
            wb.connect(address, timeout=5)
        assert address in str(err.value)
        assert "answered with something that is not Dask's protocol" in str(err.value)


def test_a_workers_port_is_not_a_scheduler(tcp_client: Client) -> None:
    worker = next(iter(tcp_client.scheduler_info(n_workers=-1)["workers"]))
    with pytest.raises(wb.ClusterConnectionError) as err:
        wb.connect(worker, timeout=5)  # a raw TypeError from the Client before
    assert f"{worker} is a Dask worker, not a scheduler" in str(err.value)
    assert tcp_client.scheduler.address in str(err.value)


def test_cli_cluster_info_on_a_silent_port() -> None:
    with non_dask_server(SILENT) as address:
        result = CliRunner().invoke(main, ["cluster", "info", address, "--timeout", "1s"])
    assert result.exit_code == 1
    assert address in result.output and "did not speak Dask's protocol" in result.output


def test_lab_scheduler_on_a_port_speaking_http() -> None:
    with (
        non_dask_server(HTTP_400) as address,
        dask.config.set({"workbench.cluster.connect-timeout": "5s"}),
    ):
        root = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
        result = CliRunner().invoke(main, ["lab", "--scheduler", address, "--no-browser", *root])
    assert result.exit_code == 1, result.output
    assert address in result.output and "not Dask's protocol" in result.output


def test_scheduler_address_setting_on_a_silent_port() -> None:
    with pytest.raises(ValueError):
        Client.current()
    with (
        non_dask_server(SILENT) as address,
        dask.config.set({"scheduler-address": address, "workbench.cluster.connect-timeout": "2s"}),
        pytest.raises(wb.ClusterConnectionError) as err,
    ):
        ensure_client()
    assert "scheduler-address" in str(err.value) and address in str(err.value)
    assert "did not speak Dask's protocol within 2s" in str(err.value)


def test_scheduler_address_setting_connects(tcp_client: Client) -> None:
    address = tcp_client.scheduler.address
    with dask.config.set({"scheduler-address": address}):
        client = ensure_client()
    try:
        assert client is not tcp_client and client.scheduler.address == address
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        client.close()


# --- plain TCP off this machine (issue 12, item 7) --------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "tcp://10.0.0.5:8786",
        "tcp://192.168.1.20:8786",
        "tcp://scheduler.example.com:8786",
        "tcp://[2001:db8::1]:8786",
        "tcp://0.0.0.0:8786",
    ],
)
def test_plain_tcp_off_this_machine_is_warned_about(address: str) -> None:
    # decided from the address alone: no traffic goes there
    warning = plain_tcp_warning(address)
    assert warning is not None
    assert address in warning and "pickled" in warning and "tls://" in warning


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:8786",
        "tcp://127.1.2.3:8786",
        "tcp://localhost:8786",
        "tcp://[::1]:8786",
        "tls://10.0.0.5:8786",
    ],
)
def test_loopback_and_tls_are_not_warned_about(address: str) -> None:
    assert plain_tcp_warning(address) is None


def test_connect_over_loopback_tcp_does_not_warn(tcp_client: Client) -> None:
    with workbench_log(logging.WARNING) as records, warnings.catch_warnings():
        warnings.simplefilter("error")
        client = wb.connect(tcp_client.scheduler.address, set_as_default=False)
    try:
        assert client.submit(sum, [1, 2]).result() == 3
    finally:
        client.close()
    assert not [r for r in records if r.levelno >= logging.WARNING]


def test_the_warning_is_an_insecure_cluster_warning() -> None:
    # the same category as a local cluster opened beyond loopback without TLS; the address is
    # refused (encryption required) after the warning and before any traffic
    with (
        pytest.warns(wb.InsecureClusterWarning, match=r"tcp://10\.0\.0\.5:8786 over plain TCP"),
        pytest.raises(ValueError, match="require encryption"),
    ):
        wb.connect("tcp://10.0.0.5:8786", security=Security(require_encryption=True))


@contextlib.contextmanager
def answers_once_then_stalls(backend: str) -> Iterator[str]:
    """A TCP relay on 127.0.0.1 to ``backend``'s port for its first connection only.

    The first connection (the probe's) reaches the real scheduler; every later one is accepted
    and held without a byte, as a scheduler that stalls after the probe would. Yields the
    relay's address with ``backend``'s scheme; everything is closed when the block ends.
    """
    scheme, hostport = backend.split("://")
    target = ("127.0.0.1", int(hostport.rsplit(":", 1)[1]))
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            if len(held) == 1:
                up = socket.create_connection(target, timeout=10)
                up.settimeout(None)
                held.append(up)
                for a, b in ((conn, up), (up, conn)):
                    t = threading.Thread(target=pump, args=(a, b), name="relay-pump")
                    t.start()
                    threads.append(t)

    main_thread = threading.Thread(target=serve, name="relay")
    main_thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        main_thread.join(10)
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for t in threads:
            t.join(10)
        listener.close()


@pytest.mark.timeout(90)  # a hang guard: before the fix a tcp:// client waited for ever
@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_a_scheduler_that_stalls_after_the_probe_is_bounded_and_leaves_nothing(
    scheme: str, tls_scheduler: str, tcp_client: Client, certs: dict
) -> None:
    """The probe passes, then the client's own connection gets no handshake.

    Over tcp:// distributed's handshake read has no time limit; over tls:// the TLS handshake
    is bounded, but the failed client's event-loop thread was left running.
    """
    backend, security = tcp_client.scheduler.address, None
    if scheme == "tls":
        backend = tls_scheduler
        security = {  # the README's way: the client certificate as cert_file/key_file
            "ca_file": str(certs["ca_file"]),
            "cert_file": str(certs["client_cert_file"]),
            "key_file": str(certs["client_key_file"]),
        }
    before = {t.name for t in threading.enumerate()}
    with answers_once_then_stalls(backend) as address:
        with pytest.raises(wb.ClusterConnectionError, match=f"{address} within 3s") as err:
            wb.connect(address, security=security, timeout=3)
        assert "TimeoutError" in str(err.value)
    with pytest.raises(ValueError, match="No clients found"):
        default_client()  # the client that did not start is not left as the default
    assert threads_settle(before) == set()  # nor its event-loop thread
