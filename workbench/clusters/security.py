"""TLS for clusters: certificates from profile files, temporary ones for local clusters.

Dask's own :class:`distributed.Security` carries the settings; this module checks that the
files exist and fit together, makes certificates (a CA per cluster, a server certificate for the
scheduler and workers, a client certificate for users), decides when a local cluster needs TLS,
and builds the object.

What TLS verifies here (see the README's security section):

- every connection is encrypted and both ends show a certificate signed by the cluster's CA;
- the scheduler and workers serve a *server* certificate (extended key usage ``serverAuth`` and
  ``clientAuth``: workers also connect to the scheduler as clients); users, notebooks and Lab
  kernels hold a *client* certificate (``clientAuth`` only), which OpenSSL refuses as a server
  certificate, so a stolen client certificate cannot pose as the scheduler;
- with certificates from files, clients (:class:`NameCheckingSecurity`) also check that the
  server certificate names the host or IP address they connect to
  (``workbench.security.check-hostname``). Distributed turns that check off for its own
  servers, so a worker does not check the scheduler's name, nor a scheduler a client's.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil
from distributed import Security

from workbench import config
from workbench.errors import InsecureClusterWarning, SecurityConfigError

logger = logging.getLogger("workbench")


class NameCheckingSecurity(Security):
    """A :class:`distributed.Security` whose client connections check the server's name.

    Distributed's TLS contexts check the peer's certificate against the CA only
    (``check_hostname=False``). For the ``client`` role this class turns the name check on:
    tornado hands the host of the address being connected to (a name or an IP address) to
    OpenSSL, so the server certificate must list that host among its subject alternative names.
    The scheduler's and workers' own contexts are distributed's, unchanged.
    """

    def get_connection_args(self, role: str) -> dict[str, Any]:
        """Distributed's connection arguments; for ``client``, with the host name checked."""
        args: dict[str, Any] = super().get_connection_args(role)
        ctx = args.get("ssl_context")
        if role == "client" and ctx is not None:
            ctx.check_hostname = True
        return args


def security_from_files(
    ca_file: str | os.PathLike[str],
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    *,
    client_cert_file: str | os.PathLike[str] | None = None,
    client_key_file: str | os.PathLike[str] | None = None,
    where: str = "security",
    check_hostname: bool | None = None,
) -> Security:
    """Build a :class:`distributed.Security` that requires TLS, after checking the files.

    The certificate ``cert_file`` serves the scheduler and the workers; the client uses
    ``client_cert_file``/``client_key_file`` when given (``workbench tls make`` writes both),
    else the same one.

    Parameters
    ----------
    ca_file, cert_file, key_file
        PEM files: the certificate authority, and a certificate with its private key.
    client_cert_file, client_key_file
        Optional separate client certificate and key.
    where
        Where the settings came from (a profile file), for error messages.
    check_hostname
        Whether clients check that the server certificate names the host they connect to;
        default ``workbench.security.check-hostname``.

    Raises
    ------
    SecurityConfigError
        When a file is missing or unreadable, or the certificate does not match its key.
    """
    files: dict[str, str | os.PathLike[str] | None] = {
        "ca_file": ca_file,
        "cert_file": cert_file,
        "key_file": key_file,
    }
    if client_cert_file or client_key_file:
        files |= {"client_cert_file": client_cert_file, "client_key_file": client_key_file}
    missing = [f"{k}={v!s}" for k, v in files.items() if not v or not Path(v).is_file()]
    if missing:
        raise SecurityConfigError(
            f"TLS is on in {where}, but these certificate files are missing: "
            f"{', '.join(missing)}. Point security.ca_file, cert_file and key_file (and "
            "client_cert_file, client_key_file) at PEM files (`workbench tls make DIR --host "
            "HOST` writes a CA, a server and a client certificate), or set security.tls: false."
        )
    pairs = [(cert_file, key_file)]
    if client_cert_file and client_key_file:
        pairs.append((client_cert_file, client_key_file))
    for cert, key in pairs:
        try:
            ctx = ssl.create_default_context(cafile=str(ca_file))
            ctx.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError) as err:
            raise SecurityConfigError(
                f"TLS files in {where} do not fit together (ca={ca_file}, cert={cert}, "
                f"key={key}): {err}. Check that the key belongs to the certificate."
            ) from None
    ccert = str(client_cert_file or cert_file)
    ckey = str(client_key_file or key_file)
    if check_hostname is None:
        check_hostname = bool(config.get("security.check-hostname"))
    cls = NameCheckingSecurity if check_hostname else Security
    return cls(
        tls_ca_file=str(ca_file),
        tls_client_cert=ccert,
        tls_client_key=ckey,
        tls_scheduler_cert=str(cert_file),
        tls_scheduler_key=str(key_file),
        tls_worker_cert=str(cert_file),
        tls_worker_key=str(key_file),
        require_encryption=True,
    )


def security_for_profile(
    settings: Mapping[str, Any], *, remote: bool, where: str, tls: bool | None = None
) -> Security | None:
    """Return the Security a profile asks for, or ``None`` for plain TCP.

    Local profiles with ``tls: true`` and no files get temporary in-memory certificates
    (:func:`temporary_security`); remote profiles must name files, since the certificates
    travel to other machines. Local clusters are decided by :func:`security_for_local`.
    """
    on = settings.get("tls", remote) if tls is None else tls
    if not on:
        if remote:
            logger.warning(
                "TLS is off for a remote cluster (%s): scheduler, worker and client traffic "
                "travels unencrypted and unauthenticated.",
                where,
            )
        return None
    if any(settings.get(k) for k in ("ca_file", "cert_file", "key_file")) or remote:
        return security_from_files(
            settings.get("ca_file") or "",
            settings.get("cert_file") or "",
            settings.get("key_file") or "",
            client_cert_file=settings.get("client_cert_file"),
            client_key_file=settings.get("client_key_file"),
            where=where,
        )
    return temporary_security()


# --- local clusters: when TLS is needed ---------------------------------------------------------
def bare_host(host: str) -> str:
    """``host`` without a ``scheme://`` prefix, a ``:port`` suffix or IPv6 brackets."""
    text = host.split("://", 1)[-1].strip()
    if text.startswith("["):  # [::1] or [::1]:8786
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:  # name:port or 1.2.3.4:port
        return text.split(":", 1)[0]
    return text


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback: ``localhost``, 127.0.0.0/8 or ``::1``.

    Every other host, including ``0.0.0.0``, ``::`` and ``""`` (every interface) and host names
    (they resolve to an outward interface), is not.
    """
    text = bare_host(host).lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def local_tls(host: str, tls: bool | None) -> tuple[bool, str | None]:
    """Whether a local cluster that listens on ``host`` gets TLS, and the warning to give.

    Parameters
    ----------
    host
        The address the scheduler and workers bind to.
    tls
        The user's explicit choice: ``start_cluster(tls=...)``, ``--tls/--no-tls``, or a
        ``security: {tls: ...}`` written in the profile. ``None`` when nobody chose (the
        shipped local profiles leave it out).

    Returns
    -------
    on, warning
        TLS is on when asked for, or when nobody chose and ``host`` is not loopback. The
        warning (for :class:`~workbench.errors.InsecureClusterWarning`) is given when TLS is
        turned off explicitly on a host that is not loopback.
    """
    loopback = is_loopback(host)
    if tls is None:
        return (not loopback), None
    if tls or loopback:
        return bool(tls), None
    where = "every network interface" if bare_host(host) in ("", "0.0.0.0", "::") else host
    return False, (
        f"the cluster's scheduler and workers listen on {where} ({host!r}) with TLS turned "
        "off: anyone who can reach these ports can run any code on the cluster, as you. Leave "
        "TLS on (the default off loopback), or bind to 127.0.0.1 and use an SSH tunnel."
    )


def _temporary_hosts(host: str) -> list[str]:
    hosts = ["127.0.0.1", "::1", "localhost"]
    text = bare_host(host)
    if text in ("", "0.0.0.0", "::"):
        hosts.append(socket.gethostname())
        for addrs in psutil.net_if_addrs().values():
            hosts += [a.address.split("%", 1)[0] for a in addrs if a.family in _INET]
    elif text:
        hosts.append(text)
    return list(dict.fromkeys(hosts))


_INET = (socket.AF_INET, socket.AF_INET6)


def security_for_local(
    settings: Mapping[str, Any],
    *,
    host: str,
    listens: bool = True,
    tls: bool | None = None,
    where: str,
) -> Security | None:
    """Return the Security of a local cluster that binds to ``host``, warning where it is open.

    Parameters
    ----------
    settings
        The profile's ``security`` mapping; a ``tls`` key in it is an explicit choice.
    host
        Where the scheduler and workers listen.
    listens
        ``False`` for in-process clusters without a host of their own: they talk over
        ``inproc://``, and then TLS is on only when asked for.
    tls
        ``start_cluster(tls=...)``: wins over the profile.
    where
        Where the settings came from, for messages.

    Warns
    -----
    InsecureClusterWarning
        TLS is turned off explicitly for a cluster that listens beyond loopback.
    """
    explicit = tls if tls is not None else settings.get("tls")
    if listens:
        on, warning = local_tls(host, explicit)
    else:
        on, warning = bool(explicit), None
    if warning:
        warnings.warn(warning, InsecureClusterWarning, stacklevel=3)
    if not on:
        return None
    if not is_loopback(host) and explicit is None:
        logger.info(
            "the cluster listens on %s, beyond loopback: TLS is on with temporary certificates "
            "(start_cluster(tls=False) turns it off).",
            host,
        )
    if any(settings.get(k) for k in ("ca_file", "cert_file", "key_file")):
        return security_from_files(
            settings.get("ca_file") or "",
            settings.get("cert_file") or "",
            settings.get("key_file") or "",
            client_cert_file=settings.get("client_cert_file"),
            client_key_file=settings.get("client_key_file"),
            where=where,
        )
    return temporary_security(_temporary_hosts(host))


# --- certificates ---------------------------------------------------------------------------
def _check_hosts(hosts: Iterable[str]) -> list[str]:
    if isinstance(hosts, str):
        hosts = [hosts]
    out = []
    for h in hosts:
        if not isinstance(h, str) or not h.strip() or any(c in h for c in " /\t\n"):
            raise ValueError(
                f"host {h!r} is not a host name or IP address; name each host or address "
                "clients use to reach the scheduler and workers, e.g. --host 10.0.0.5"
            )
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            out.append(h)
            continue
        if ip.is_unspecified:
            raise ValueError(
                f"host {h!r} means every interface, which no client connects to; name the "
                "host names and IP addresses clients use to reach the scheduler and workers"
            )
        out.append(h)
    if not out:
        raise ValueError("hosts is empty: name at least one host the certificate covers")
    return out


def issue_certificates(
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 365,
    common_name: str = "workbench",
) -> dict[str, bytes]:
    """Make a new CA, a server and a client certificate signed by it; return them as PEM.

    The CA's key is not returned: nothing else can be signed by it afterwards, so it is one
    cluster's CA. ``cert_file`` (extended key usage ``serverAuth`` and ``clientAuth``, the
    ``hosts`` as subject alternative names) is for the scheduler and the workers;
    ``client_cert_file`` (``clientAuth`` only) for users, notebooks and Lab kernels.

    Parameters
    ----------
    hosts
        Host names and IP addresses the server certificate is valid for: every one that
        clients use to reach the scheduler and workers.
    days
        Validity in days.
    common_name
        Subject name of the certificates (the CA's gets `` CA`` and a random tag, the client's
        `` client``).

    Returns
    -------
    dict
        PEM bytes by role: ``ca_file``, ``cert_file``, ``key_file``, ``client_cert_file``,
        ``client_key_file``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names: list[x509.GeneralName] = []
    for h in _check_hosts(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days={days!r} must be a whole number of days, 1 or more")
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=days)

    def usage(*, sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign,
            crl_sign=sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    # a name of its own, so that one cluster's CA is never taken for another's
    ca_id = secrets.token_hex(6)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA {ca_id}")])

    def builder(subject: x509.Name, public: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(until)
        )

    ca_cert = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, eku: list[x509.ObjectIdentifier], sans: list[x509.GeneralName] | None
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]), key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, b.sign(ca_key, hashes.SHA256())

    server_key, server = leaf(
        common_name, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], names
    )
    client_key, client = leaf(f"{common_name} client", [ExtendedKeyUsageOID.CLIENT_AUTH], None)

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    return {
        "ca_file": ca_cert.public_bytes(serialization.Encoding.PEM),
        "cert_file": server.public_bytes(serialization.Encoding.PEM),
        "key_file": pem_key(server_key),
        "client_cert_file": client.public_bytes(serialization.Encoding.PEM),
        "client_key_file": pem_key(client_key),
    }


def temporary_security(hosts: Iterable[str] = ("127.0.0.1", "localhost")) -> Security:
    """A :class:`distributed.Security` with a new CA and certificates held in memory only.

    Like :meth:`distributed.Security.temporary`, but the scheduler and workers get a server
    certificate and the client a separate client certificate (see :func:`issue_certificates`),
    so whoever is given the client's part (a Lab kernel) cannot pose as the scheduler. The CA
    is this cluster's alone and its key is gone once made, so the host names are not checked.
    """
    pem = {k: v.decode("ascii") for k, v in issue_certificates(hosts).items()}
    return Security(
        tls_ca_file=pem["ca_file"],
        tls_scheduler_cert=pem["cert_file"],
        tls_scheduler_key=pem["key_file"],
        tls_worker_cert=pem["cert_file"],
        tls_worker_key=pem["key_file"],
        tls_client_cert=pem["client_cert_file"],
        tls_client_key=pem["client_key_file"],
        require_encryption=True,
    )


#: File names :func:`make_certificates` writes, by role.
CERTIFICATE_FILES = {
    "ca_file": "ca.pem",
    "cert_file": "cert.pem",
    "key_file": "key.pem",
    "client_cert_file": "client-cert.pem",
    "client_key_file": "client-key.pem",
}


def make_certificates(
    folder: str | os.PathLike[str],
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 365,
    common_name: str = "workbench",
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write a new CA for one cluster, a server and a client certificate into ``folder``.

    The scheduler and workers use ``cert.pem``/``key.pem`` (a server certificate for
    ``hosts``); users, notebooks and Lab kernels use ``client-cert.pem``/``client-key.pem``
    (a client certificate, which cannot serve as a scheduler); all trust ``ca.pem``. Use one
    folder per cluster: the CA signs nothing else, and its key is not kept.

    Parameters
    ----------
    folder
        Created if missing. Receives the five files of :data:`CERTIFICATE_FILES`, each
        readable by its owner only.
    hosts
        Host names and IP addresses the server certificate is valid for: every one that
        clients use to reach the scheduler and workers (clients check it; see
        :class:`NameCheckingSecurity`).
    days
        Validity in days.
    common_name
        Subject name of the certificates.
    overwrite
        Replace certificates already in ``folder``. Without it they are refused: a cluster
        that uses them would stop accepting its own clients, and the old CA is gone for good.

    Returns
    -------
    dict
        Paths by role: ``ca_file``, ``cert_file``, ``key_file``, ``client_cert_file``,
        ``client_key_file``.
    """
    contents = issue_certificates(hosts, days=days, common_name=common_name)
    out = Path(folder)
    paths = {role: out / name for role, name in CERTIFICATE_FILES.items()}
    there = [p.name for p in paths.values() if os.path.lexists(p)]
    if there and not overwrite:
        raise FileExistsError(
            f"{out} already holds certificates ({', '.join(there)}); a cluster using them would "
            "stop accepting its clients if they were replaced: choose another folder (one per "
            "cluster), or pass overwrite=True (workbench tls make --overwrite)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for role, p in paths.items():
        # a fresh temporary file (never a leftover one with other permissions), then rename
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(contents[role])
        os.replace(tmp, p)
    return paths


class UnencryptedAllreduceWarning(UserWarning):
    """XGBoost's allreduce between workers bypasses Dask's TLS."""


_warned_schedulers: set[str] = set()


def warn_if_allreduce_unencrypted(client: Any) -> bool:
    """Warn once per scheduler when training would send XGBoost's allreduce across hosts in clear.

    Dask's TLS covers scheduler, worker and client traffic, but XGBoost's collective
    (the tracker and the ring allreduce of gradient histograms) opens its own plain TCP
    connections between the workers. On one host that traffic stays on the machine; across
    hosts it crosses the network unencrypted.

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`.

    Returns
    -------
    bool
        Whether a warning was issued now.
    """
    from workbench._client import scheduler_workers

    if not config.get("security.warn-unencrypted-allreduce"):
        return False
    address = str(client.scheduler.address)
    if not address.startswith("tls://") or address in _warned_schedulers:
        return False
    workers = scheduler_workers(client)
    hosts = sorted({str(w.get("host")) for w in workers.values()})
    if len(hosts) < 2:
        return False
    _warned_schedulers.add(address)
    warnings.warn(
        f"the cluster at {address} uses TLS, but XGBoost's own allreduce traffic between its "
        f"workers on {len(hosts)} hosts ({', '.join(hosts)}) is plain TCP, not covered by Dask's "
        "TLS. Keep the workers on a trusted private network, or set "
        "workbench.security.warn-unencrypted-allreduce: false once you have.",
        UnencryptedAllreduceWarning,
        stacklevel=2,
    )
    return True
