"""Certificates for one cluster: a CA of its own, a server and a client certificate.

:func:`issue_certificates` makes them (PEM bytes), :func:`temporary_security` holds them in
memory for a local cluster, and :func:`make_certificates` (``workbench tls make``) writes them
to a folder. The scheduler and workers get the server certificate (extended key usage
``serverAuth`` and ``clientAuth``), users, notebooks and Lab kernels the client certificate
(``clientAuth`` only), which OpenSSL refuses as a server certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from distributed import Security

from workbench.checks import whole_number


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
    days = whole_number(days, "days", 1, hint="the certificates' validity in days")
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


#: The order :func:`make_certificates` renames new files over old ones: keys before their
#: certificates, the CA last, so the files in place never look like a whole set until the end.
REPLACE_ORDER = ("key_file", "cert_file", "client_key_file", "client_cert_file", "ca_file")


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
        :class:`~workbench.clusters.security.NameCheckingSecurity`).
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

    Notes
    -----
    Replacing: the new five files are written in full (and synced) into a private folder
    inside ``folder`` first, then renamed over the old ones one by one (:data:`REPLACE_ORDER`).
    A crash during those renames leaves a mix of old and new files; every such mix holds a
    key that does not match its certificate or a certificate that ``ca.pem`` did not issue,
    which :func:`~workbench.clusters.security.security_from_files` refuses by name before
    anything starts. Run ``workbench tls make --overwrite`` again then.
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
    # the whole new set first, in a private folder beside the files (the same filesystem),
    # then each file renamed into place; see "Replacing" above for a crash in between
    staging = Path(tempfile.mkdtemp(prefix=".workbench-tls-new-", dir=out))
    try:
        for role, name in CERTIFICATE_FILES.items():
            fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(contents[role])
                f.flush()
                os.fsync(f.fileno())
        for role in REPLACE_ORDER:
            os.replace(staging / CERTIFICATE_FILES[role], paths[role])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths
