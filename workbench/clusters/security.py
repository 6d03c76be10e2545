"""TLS for clusters: certificates from profile files, temporary ones for local clusters.

Dask's own :class:`distributed.Security` carries the settings; this module only checks that the
files exist and fit together, makes test or bootstrap certificates, and builds the object.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from distributed import Security

from workbench.errors import SecurityConfigError

logger = logging.getLogger("workbench")


def security_from_files(
    ca_file: str | os.PathLike[str],
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    *,
    client_cert_file: str | os.PathLike[str] | None = None,
    client_key_file: str | os.PathLike[str] | None = None,
    where: str = "security",
) -> Security:
    """Build a :class:`distributed.Security` that requires TLS, after checking the files.

    The same certificate serves the scheduler and the workers; the client uses
    ``client_cert_file``/``client_key_file`` when given, else the same one.

    Parameters
    ----------
    ca_file, cert_file, key_file
        PEM files: the certificate authority, and a certificate with its private key.
    client_cert_file, client_key_file
        Optional separate client certificate and key.
    where
        Where the settings came from (a profile file), for error messages.

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
            f"{', '.join(missing)}. Point security.ca_file, cert_file and key_file at PEM files "
            "(`workbench tls make DIR` writes a CA and a certificate for testing), "
            "or set security.tls: false."
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
    return Security(
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

    Local profiles with ``tls: true`` and no files get temporary in-memory certificates;
    remote profiles must name files, since the certificates travel to other machines.
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
    return Security.temporary()


def make_certificates(
    folder: str | os.PathLike[str],
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 365,
    common_name: str = "workbench",
) -> dict[str, Path]:
    """Write a new certificate authority and a certificate signed by it into ``folder``.

    Enough for a scheduler, its workers and its clients to authenticate one another: all use
    ``cert.pem``/``key.pem`` and trust ``ca.pem``. For production, use your organisation's CA.

    Parameters
    ----------
    folder
        Created if missing. Receives ``ca.pem``, ``cert.pem`` and ``key.pem`` (the key
        readable by its owner only). The CA's own key is not kept: make a new set to add hosts.
    hosts
        Host names and IP addresses the certificate is valid for.
    days
        Validity in days.
    common_name
        Subject name of the certificate.

    Returns
    -------
    dict
        Paths by role: ``ca_file``, ``cert_file``, ``key_file``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    paths = {"ca_file": out / "ca.pem", "cert_file": out / "cert.pem", "key_file": out / "key.pem"}
    contents = {
        "ca_file": ca_cert.public_bytes(serialization.Encoding.PEM),
        "cert_file": cert.public_bytes(serialization.Encoding.PEM),
        "key_file": pem_key(key),
    }
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
    import warnings

    from workbench import config
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
