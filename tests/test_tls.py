"""Who can get in: when local clusters get TLS, and what TLS verifies (issue 12, items 4 and 5).

The certificate tests run real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1
with certificates made here. The one test that binds to every interface (``host="0.0.0.0"``)
runs inside a network namespace of its own whose only device is its own loopback: no port it
opens is reachable from outside this machine, nor from this machine's own network namespace,
and nothing it sends can leave.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from distributed import Client, Security
from distributed.comm import connect

import workbench as wb
from tests.conftest import DASK, _wait_for_log, free_port
from workbench import lab
from workbench.cli import main
from workbench.clusters.certificates import CERTIFICATE_FILES
from workbench.clusters.connect import _security_arg
from workbench.clusters.profiles import get_profile
from workbench.clusters.security import (
    NameCheckingSecurity,
    is_loopback,
    local_tls,
    security_for_local,
    security_from_files,
    temporary_security,
)
from workbench.errors import InsecureClusterWarning

SERVER = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
CLIENT = {ExtendedKeyUsageOID.CLIENT_AUTH}


def _cert(pem: str | bytes | Path) -> x509.Certificate:
    data = pem.read_bytes() if isinstance(pem, Path) else pem
    return x509.load_pem_x509_certificate(data.encode() if isinstance(data, str) else data)


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in alt.get_values_for_type(x509.IPAddress)} | set(
        alt.get_values_for_type(x509.DNSName)
    )


def _handshake(address: str, security: Security) -> str:
    """Open one comm as a client would; return "ok" or the TLS error that refused it."""

    async def go() -> str:
        try:
            comm = await connect(address, timeout=10, **security.get_connection_args("client"))
        except OSError as err:
            causes = []
            e: BaseException | None = err
            while e is not None:
                causes.append(str(e))
                e = e.__cause__ or e.__context__
            return " <- ".join(causes)
        await comm.close()
        return "ok"

    return asyncio.run(go())


# --- item 4: a local cluster beyond loopback gets TLS --------------------------------------
@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "10.1.2.3", "192.168.0.7", "fe80::1", "node-7.example.org"]
)
def test_a_host_beyond_loopback_gets_tls_unless_turned_off_and_then_a_warning(host: str) -> None:
    assert not is_loopback(host)
    assert local_tls(host, None) == (True, None)  # nobody chose: TLS
    assert local_tls(host, True) == (True, None)
    on, warning = local_tls(host, False)  # turned off explicitly: honoured, with a warning
    assert not on and warning is not None
    assert repr(host) in warning and "run any code" in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.0.1", "localhost", "::1"])
def test_loopback_stays_plain_unless_asked(host: str) -> None:
    assert is_loopback(host)
    assert local_tls(host, None) == (False, None)
    assert local_tls(host, False) == (False, None)
    assert local_tls(host, True) == (True, None)


def test_the_shipped_local_profiles_do_not_turn_tls_off_explicitly() -> None:
    for name in ("local-cpu", "local-gpu"):
        settings = get_profile(name).security
        assert "tls" not in settings, name
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sec = security_for_local(settings, host="0.0.0.0", where=name)
        assert sec is not None and sec.require_encryption
        assert security_for_local(settings, host="127.0.0.1", where=name) is None


def test_an_explicit_no_is_honoured_with_a_warning() -> None:
    with pytest.warns(InsecureClusterWarning, match=r"every network interface.*'0\.0\.0\.0'"):
        assert security_for_local({}, host="0.0.0.0", tls=False, where="test") is None
    with pytest.warns(InsecureClusterWarning, match="10.1.2.3"):  # written in a profile
        assert security_for_local({"tls": False}, host="10.1.2.3", where="test") is None
    # an in-process cluster without a host of its own talks over inproc://: no TLS needed
    assert security_for_local({}, host="0.0.0.0", listens=False, where="test") is None


def _netns_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make a network namespace"
    missing = [b for b in ("unshare", "ip") if shutil.which(b) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip()}"
    return None


ISOLATED = """
import sys
import warnings
import workbench as wb
from workbench.errors import InsecureClusterWarning

def show(name, cluster):
    client = cluster.get_client()
    workers = sorted(client.scheduler_info()["workers"])
    print(name, cluster.scheduler_address, workers, client.submit(sum, [1, 2]).result())

if __name__ == "__main__":
    opts = dict(n_workers=1, threads_per_worker=1)
    if sys.argv[1] == "env":  # DASK_WORKBENCH__CLUSTER__HOST=0.0.0.0, worker processes
        with wb.start_cluster("local-cpu", **opts) as cluster:
            show("env", cluster)
        sys.exit(0)
    with wb.start_cluster("local-cpu", host="0.0.0.0", processes=False, **opts) as cluster:
        show("default", cluster)
    with wb.start_cluster("local-cpu", host="0.0.0.0", **opts) as cluster:  # nannies
        show("nannies", cluster)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with wb.start_cluster("local-cpu", host="0.0.0.0", tls=False, processes=False, **opts) as c:
            print("off", c.scheduler_address)
    print("warned", [w.category.__name__ for w in seen if w.category is InsecureClusterWarning])
"""


def test_a_cluster_on_every_interface_gets_tls_in_an_isolated_network(tmp_path: Path) -> None:
    """start_cluster(host="0.0.0.0") for real, in a network namespace that reaches nowhere."""
    why = _netns_possible()
    if why:
        pytest.skip(why)
    script = tmp_path / "isolated.py"
    script.write_text(ISOLATED)
    # the namespace's own loopback device, with one more address and the default route on it:
    # the cluster finds an outward address (10.231.254.2) as it would on a real network, and
    # nothing can leave, as the namespace has no other device
    setup = " && ".join(
        [
            "ip link set lo up",
            "ip addr add 10.231.254.2/32 dev lo",
            "ip route add default dev lo src 10.231.254.2",
            f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} host",
            # the environment route, through bind_host (nanny processes inherit the namespace)
            f"DASK_WORKBENCH__CLUSTER__HOST=0.0.0.0 exec {shlex.quote(sys.executable)} "
            f"{shlex.quote(str(script))} env",
        ]
    )
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", setup],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split(" ", 1)[0]: line for line in done.stdout.splitlines()}
    for name in ("default", "nannies", "env"):  # in-process; worker processes; the env variable
        line = lines[name].split(" ", 2)
        assert line[1].startswith("tls://10.231.254.2:"), done.stdout  # TLS, the outward address
        assert "tls://10.231.254.2:" in line[2] and line[2].endswith(" 3"), done.stdout  # workers
    assert lines["off"].split()[1].startswith("tcp://10.231.254.2:")
    assert lines["warned"] == "warned ['InsecureClusterWarning']"


# --- item 5: separate server and client certificates, from a CA per cluster ------------------
def test_tls_make_writes_a_ca_a_server_and_a_client_certificate(tmp_path: Path) -> None:
    folder = tmp_path / "cluster a"
    result = CliRunner().invoke(
        main, ["tls", "make", str(folder), "--host", "127.0.0.1", "--host", "sched.example.org"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ca.pem", "cert.pem", "client-cert.pem", "client-key.pem", "key.pem"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
    ca, server, client = (_cert(folder / n) for n in ("ca.pem", "cert.pem", "client-cert.pem"))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (server, client):
        assert leaf.issuer == ca.subject
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _usages(server) == SERVER and _sans(server) == {"127.0.0.1", "sched.example.org"}
    assert _usages(client) == CLIENT and _sans(client) == set()
    assert "client_cert_file" in result.output
    again = wb.make_certificates(tmp_path / "cluster b")  # a new CA for each cluster
    assert _cert(again["ca_file"]).public_key() != ca.public_key()


@pytest.mark.parametrize(
    ("hosts", "message"),
    [(["0.0.0.0"], "every interface"), (["a b"], "not a host name"), ([], "hosts is empty")],
)
def test_tls_make_refuses_hosts_no_client_can_use(
    tmp_path: Path, hosts: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        wb.make_certificates(tmp_path / "x", hosts=hosts)
    assert not (tmp_path / "x").exists()  # nothing written
    if hosts:
        args = ["tls", "make", str(tmp_path / "y"), *(a for h in hosts for a in ("--host", h))]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and message in result.output


def test_a_client_with_the_client_certificate_runs_work(tls_scheduler: str, certs: dict) -> None:
    """(a) The user's certificate is the client one: clientAuth only, and it gets in."""
    assert _usages(_cert(certs["client_cert_file"])) == CLIENT
    sec = security_from_files(certs["ca_file"], certs["client_cert_file"], certs["client_key_file"])
    assert isinstance(sec, NameCheckingSecurity)
    with Client(tls_scheduler, security=sec, set_as_default=False, timeout=30) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        assert len(client.scheduler_info()["workers"]) == 2
    # the address by name works too: the server certificate names localhost
    assert _handshake(tls_scheduler.replace("127.0.0.1", "localhost"), sec) == "ok"


@pytest.fixture(scope="module")
def impostors(certs: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two real schedulers that must not be trusted.

    ``stolen``: serves the cluster's own *client* certificate (from the cluster's CA).
    ``misnamed``: serves a proper server certificate of its own CA, made for 127.0.0.2 only.
    """
    work = tmp_path_factory.mktemp("impostors")
    misnamed = wb.make_certificates(work / "misnamed", hosts=("127.0.0.2",))
    procs, logs, out = [], [], {"misnamed_certs": misnamed}
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}
    try:
        for name, ca, cert, key in (
            ("stolen", certs["ca_file"], certs["client_cert_file"], certs["client_key_file"]),
            ("misnamed", misnamed["ca_file"], misnamed["cert_file"], misnamed["key_file"]),
        ):
            port = free_port()
            log = work / f"{name}.log"
            f = open(log, "wb")  # noqa: SIM115 - closed below
            logs.append(f)
            cmd = [
                *DASK,
                *("--host", "127.0.0.1", "--port", str(port), "--protocol", "tls"),
                *("--dashboard-address", "127.0.0.1:0"),
                *("--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)),
            ]
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
            procs.append((proc, log))
            out[name] = f"tls://127.0.0.1:{port}"
        for proc, log in procs:
            _wait_for_log(proc, log, "Scheduler at", 60)
        yield out
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in logs:
            f.close()


def test_a_client_certificate_cannot_pose_as_the_scheduler(
    impostors: dict[str, Any], certs: dict
) -> None:
    """(b) A scheduler serving a (stolen) client certificate is refused by every client."""
    for check in (True, False):  # EKU does it, with or without the name check
        for cert, key in (
            (certs["client_cert_file"], certs["client_key_file"]),
            (certs["cert_file"], certs["key_file"]),
        ):
            sec = security_from_files(certs["ca_file"], cert, key, check_hostname=check)
            assert "unsuitable certificate purpose" in _handshake(impostors["stolen"], sec)


def test_a_certificate_from_another_ca_is_refused(
    tls_scheduler: str, impostors: dict[str, Any], other_certs: dict, certs: dict
) -> None:
    """(c) The cluster refuses another CA's client; a client refuses another CA's server."""
    theirs = security_from_files(
        other_certs["ca_file"], other_certs["client_cert_file"], other_certs["client_key_file"]
    )
    assert _handshake(tls_scheduler, theirs) != "ok"
    with pytest.raises(OSError), Client(tls_scheduler, security=theirs, timeout=5):
        pass
    ours = security_from_files(
        certs["ca_file"], certs["client_cert_file"], certs["client_key_file"], check_hostname=False
    )
    assert "certificate verify failed" in _handshake(impostors["misnamed"], ours)


def test_the_server_certificate_must_name_the_address(impostors: dict[str, Any]) -> None:
    """(d) With certificate files, clients check the scheduler's name (its SANs)."""
    certs = impostors["misnamed_certs"]  # a server certificate for 127.0.0.2, served on .1
    files = (certs["ca_file"], certs["client_cert_file"], certs["client_key_file"])
    checking = security_from_files(*files)
    assert "IP address mismatch" in _handshake(impostors["misnamed"], checking)
    unchecked = security_from_files(*files, check_hostname=False)
    assert _handshake(impostors["misnamed"], unchecked) == "ok"  # the CA alone would let it in
    import dask

    with dask.config.set({"workbench.security.check-hostname": False}):
        assert not isinstance(security_from_files(*files), NameCheckingSecurity)


def test_temporary_certificates_give_clients_and_lab_kernels_no_server_key(
    tmp_path: Path,
) -> None:
    sec: Any = temporary_security(["127.0.0.1", "localhost"])
    assert sec.tls_scheduler_cert == sec.tls_worker_cert
    assert sec.tls_client_cert != sec.tls_scheduler_cert
    assert sec.tls_client_key != sec.tls_scheduler_key
    assert _usages(_cert(sec.tls_scheduler_cert)) == SERVER
    assert _usages(_cert(sec.tls_client_cert)) == CLIENT
    env = lab.kernel_env("tls://127.0.0.1:8786", sec, tmp_path)
    written = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert sorted(written) == ["ca.pem", "client-key.pem", "client.pem"]
    assert written["client.pem"] == sec.tls_client_cert
    assert sec.tls_scheduler_key not in written.values()
    assert env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"] == str(tmp_path / "client-key.pem")


# --- item 9: render ------------------------------------------------------------------------
def test_kubectl_secret_line_quotes_its_paths(
    user_profiles: Path, certs: dict, tmp_path: Path
) -> None:
    odd = tmp_path / "my certs; rm -rf ~"
    odd.mkdir()
    files = {}
    for role in ("ca_file", "cert_file", "key_file"):
        files[role] = odd / Path(certs[role]).name
        files[role].write_bytes(Path(certs[role]).read_bytes())
    data = yaml.safe_load(
        (Path(wb.__file__).parents[1] / "clusters" / "kubernetes.yaml").read_text()
    )
    data["security"] = {"tls": True, **{k: str(v) for k, v in files.items()}}
    data["options"]["namespace"] = "team a"
    (user_profiles / "k8s-odd.yaml").write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["cluster", "render", "k8s-odd"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("# first: "))
    words = shlex.split(line[len("# first: ") :])
    assert words[:7] == ["kubectl", "create", "secret", "generic", "workbench-tls", "-n", "team a"]
    assert words[7:] == [
        f"--from-file=ca.pem={files['ca_file']}",
        f"--from-file=cert.pem={files['cert_file']}",
        f"--from-file=key.pem={files['key_file']}",
    ]


def test_ssh_workers_bind_to_their_own_hosts(user_profiles: Path, certs: dict) -> None:
    data = yaml.safe_load((Path(wb.__file__).parents[1] / "clusters" / "ssh.yaml").read_text())
    data["options"]["hosts"] = ["sched.example.org", "w1.example.org", "w2.example.org"]
    data["security"] = {"tls": True, **{k: str(v) for k, v in certs.items()}}
    (user_profiles / "ssh-hosts.yaml").write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["cluster", "render", "ssh-hosts"])
    assert result.exit_code == 0, result.output
    plan = yaml.safe_load(result.output)
    assert (
        plan["scheduler"]["ssh_host"] == plan["scheduler"]["kwargs"]["host"] == "sched.example.org"
    )
    assert [(w["ssh_host"], w["kwargs"]["host"]) for w in plan["workers"]] == [
        ("w1.example.org", "w1.example.org"),
        ("w2.example.org", "w2.example.org"),
    ]
    for w in plan["workers"]:  # the workers serve the server certificate
        assert w["kwargs"]["security"]["tls_worker_cert"] == str(certs["cert_file"])
    # a host named in worker_options wins, for every worker
    data["options"]["worker_options"]["host"] = "127.0.0.1"
    (user_profiles / "ssh-hosts.yaml").write_text(yaml.safe_dump(data))
    plan = yaml.safe_load(CliRunner().invoke(main, ["cluster", "render", "ssh-hosts"]).output)
    assert {w["kwargs"]["host"] for w in plan["workers"]} == {"127.0.0.1"}


def test_certificates_already_in_a_folder_are_never_replaced_silently(tmp_path: Path) -> None:
    first = wb.make_certificates(tmp_path / "cluster")
    before = {role: p.read_bytes() for role, p in first.items()}
    with pytest.raises(FileExistsError, match=r"already holds certificates \(ca\.pem"):
        wb.make_certificates(tmp_path / "cluster")
    assert {role: p.read_bytes() for role, p in first.items()} == before
    result = CliRunner().invoke(main, ["tls", "make", str(tmp_path / "cluster")])
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert {role: p.read_bytes() for role, p in first.items()} == before
    result = CliRunner().invoke(main, ["tls", "make", str(tmp_path / "cluster"), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert first["ca_file"].read_bytes() != before["ca_file"]


def test_lab_warns_when_kernels_would_get_the_scheduler_key(tmp_path: Path) -> None:
    certs = wb.make_certificates(tmp_path / "certs")
    shared = Security(
        tls_ca_file=str(certs["ca_file"]),
        tls_scheduler_cert=str(certs["cert_file"]),
        tls_scheduler_key=str(certs["key_file"]),
        tls_client_cert=str(certs["cert_file"]),  # a profile without client_cert_file
        tls_client_key=str(certs["key_file"]),
    )
    with pytest.warns(wb.InsecureClusterWarning, match="client_cert_file"):
        lab.kernel_env("tls://127.0.0.1:8786", shared, tmp_path / "a")
    separate = Security(
        tls_ca_file=str(certs["ca_file"]),
        tls_scheduler_cert=str(certs["cert_file"]),
        tls_scheduler_key=str(certs["key_file"]),
        tls_client_cert=str(certs["client_cert_file"]),
        tls_client_key=str(certs["client_key_file"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lab.kernel_env("tls://127.0.0.1:8786", separate, tmp_path / "b")


def test_the_readme_lab_command_with_client_files_gives_no_warning(
    tls_scheduler: str, certs: dict, tmp_path: Path
) -> None:
    """``workbench lab --scheduler ADDR --ca-file ca.pem --cert-file client-cert.pem ...``."""
    files = {
        "ca_file": str(certs["ca_file"]),
        "cert_file": str(certs["client_cert_file"]),
        "key_file": str(certs["client_key_file"]),
    }
    sec: Any = _security_arg(files, tls_scheduler)  # what the lab command's connect builds
    assert sec.tls_client_cert == files["cert_file"] and sec.tls_client_key == files["key_file"]
    assert sec.tls_scheduler_cert is None and sec.tls_scheduler_key is None  # client only
    client = wb.connect(tls_scheduler, security=files, set_as_default=False)
    try:
        assert client.submit(sum, [1, 2]).result() == 3
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            env = lab.kernel_env(tls_scheduler, client.security, tmp_path / "a")
    finally:
        client.close()
    assert env["DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"] == files["cert_file"]
    # a profile's names for the client's files are read too
    profile = {
        "ca_file": str(certs["ca_file"]),
        "cert_file": str(certs["cert_file"]),
        "key_file": str(certs["key_file"]),
        "client_cert_file": str(certs["client_cert_file"]),
        "client_key_file": str(certs["client_key_file"]),
    }
    sec = _security_arg(profile, tls_scheduler)
    assert (sec.tls_client_cert, sec.tls_scheduler_cert) == (files["cert_file"], None)


def test_lab_warns_for_the_server_certificate_under_another_name(tmp_path: Path) -> None:
    """The server's certificate and key copied elsewhere still serve: decided by the EKU."""
    certs = wb.make_certificates(tmp_path / "certs")
    copies = tmp_path / "copies"
    copies.mkdir()
    for role in ("cert_file", "key_file"):
        shutil.copy(certs[role], copies / f"my-{role}.pem")
    sec = _security_arg(
        {
            "ca_file": str(certs["ca_file"]),
            "cert_file": str(copies / "my-cert_file.pem"),
            "key_file": str(copies / "my-key_file.pem"),
        },
        "tls://127.0.0.1:8786",
    )
    with pytest.warns(wb.InsecureClusterWarning, match="serverAuth"):
        lab.kernel_env("tls://127.0.0.1:8786", sec, tmp_path / "a")
    assert lab.can_serve(certs["cert_file"].read_text())  # PEM text as well as a path
    assert not lab.can_serve(str(certs["client_cert_file"]))


def test_a_certificate_from_another_set_is_refused_before_anything_starts(
    certs: dict, other_certs: dict
) -> None:
    """A mix of two sets (an interrupted --overwrite leaves one) is named, not left to TLS."""
    with pytest.raises(wb.SecurityConfigError, match="not issued by the CA"):
        security_from_files(other_certs["ca_file"], certs["cert_file"], certs["key_file"])
    with pytest.raises(wb.SecurityConfigError, match="not issued by the CA"):
        security_from_files(
            certs["ca_file"],
            certs["cert_file"],
            certs["key_file"],
            client_cert_file=other_certs["client_cert_file"],
            client_key_file=other_certs["client_key_file"],
        )
    with pytest.raises(wb.SecurityConfigError, match="do not fit together"):
        security_from_files(certs["ca_file"], certs["cert_file"], certs["client_key_file"])


def test_an_interrupted_overwrite_leaves_no_set_that_is_taken_for_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after each rename of ``--overwrite``: the files in place are refused by name."""
    folder = tmp_path / "cluster"
    wb.make_certificates(folder)
    real_replace = os.replace
    for crash_after in range(1, len(CERTIFICATE_FILES)):
        done: list[str] = []

        def replace(src: Any, dst: Any, _n: int = crash_after, _done: list = done) -> None:
            if len(_done) == _n:
                raise KeyboardInterrupt  # the process stops between two renames
            real_replace(src, dst)
            _done.append(str(dst))

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):
            wb.make_certificates(folder, overwrite=True)
        monkeypatch.setattr(os, "replace", real_replace)
        paths = {role: folder / name for role, name in CERTIFICATE_FILES.items()}
        with pytest.raises(wb.SecurityConfigError):
            security_from_files(
                paths["ca_file"],
                paths["cert_file"],
                paths["key_file"],
                client_cert_file=paths["client_cert_file"],
                client_key_file=paths["client_key_file"],
            )
        assert sorted(p.name for p in folder.iterdir()) == sorted(CERTIFICATE_FILES.values())
        wb.make_certificates(folder, overwrite=True)  # whole again
