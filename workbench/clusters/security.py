"""TLS for clusters: certificates from profile files, temporary ones for local clusters.

Dask's own :class:`distributed.Security` carries the settings; this module checks that the
files exist and fit together, decides when a local cluster needs TLS, and builds the object.
:mod:`workbench.clusters.certificates` makes the certificates (a CA per cluster, a server
certificate for the scheduler and workers, a client certificate for users).

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

import ipaddress
import logging
import os
import socket
import ssl
import urllib.parse
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from distributed import Security

from workbench import config
from workbench.clusters.certificates import temporary_security
from workbench.errors import InsecureClusterWarning, SecurityConfigError

logger = logging.getLogger(__name__)


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


_Pair = tuple[str, str | os.PathLike[str] | None, str | os.PathLike[str] | None]


def _check_files(
    ca_file: str | os.PathLike[str],
    pairs: list[_Pair],
    where: str,
) -> None:
    """Check that the CA and each (certificate, key) pair exist and fit together.

    ``pairs`` holds ``(role, cert, key)``; the role names the pair in messages. A certificate
    must match its key and be issued by the CA in ``ca_file`` (one cluster's files, not a mix
    of two sets, such as after an interrupted ``workbench tls make --overwrite``).

    Raises
    ------
    SecurityConfigError
        A file is missing or unreadable, a key does not belong to its certificate, or the CA
        did not issue a certificate.
    """
    files: dict[str, str | os.PathLike[str] | None] = {"ca_file": ca_file}
    for role, cert, key in pairs:
        files |= {f"{role}cert_file": cert, f"{role}key_file": key}
    missing = [f"{k}={v!s}" for k, v in files.items() if not v or not Path(v).is_file()]
    if missing:
        raise SecurityConfigError(
            f"TLS is on in {where}, but these certificate files are missing: "
            f"{', '.join(missing)}. Point security.ca_file, cert_file and key_file (and "
            "client_cert_file, client_key_file) at PEM files (`workbench tls make DIR --host "
            "HOST` writes a CA, a server and a client certificate), or set security.tls: false."
        )
    try:
        cas = x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
    except ValueError as err:
        raise SecurityConfigError(
            f"the CA file {ca_file} in {where} holds no PEM certificate ({err})"
        ) from None
    for _, cert, key in pairs:
        try:
            ctx = ssl.create_default_context(cafile=str(ca_file))
            ctx.load_cert_chain(str(cert), str(key))
            leaf = x509.load_pem_x509_certificate(Path(str(cert)).read_bytes())
        except (ssl.SSLError, OSError, ValueError) as err:
            raise SecurityConfigError(
                f"TLS files in {where} do not fit together (ca={ca_file}, cert={cert}, "
                f"key={key}): {err}. Check that the key belongs to the certificate."
            ) from None
        if not any(_issued_by(leaf, ca) for ca in cas):
            raise SecurityConfigError(
                f"the certificate {cert} in {where} was not issued by the CA in {ca_file} "
                f"(it names {leaf.issuer.rfc4514_string()!r} as issuer): the files come from "
                "two different sets. Use one folder of `workbench tls make` (run it again with "
                "--overwrite if a replacement was interrupted)."
            )


def _issued_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _security_class(check_hostname: bool | None) -> type[Security]:
    if check_hostname is None:
        check_hostname = bool(config.get("security.check-hostname"))
    return NameCheckingSecurity if check_hostname else Security


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
    """Build a cluster's :class:`distributed.Security` that requires TLS, after checking files.

    The certificate ``cert_file`` serves the scheduler and the workers; the client uses
    ``client_cert_file``/``client_key_file`` when given (``workbench tls make`` writes both),
    else the same one. A user who only connects to a cluster holds no server certificate: see
    :func:`client_security`.

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

    Returns
    -------
    distributed.Security
        With ``require_encryption``; a :class:`NameCheckingSecurity` when names are checked.

    Raises
    ------
    SecurityConfigError
        When a file is missing or unreadable, a certificate does not match its key, or the CA
        did not issue it.
    """
    pairs: list[_Pair] = [("", cert_file, key_file)]
    if client_cert_file or client_key_file:
        pairs.append(("client_", client_cert_file, client_key_file))
    _check_files(ca_file, pairs, where)
    ccert = str(client_cert_file or cert_file)
    ckey = str(client_key_file or key_file)
    return _security_class(check_hostname)(
        tls_ca_file=str(ca_file),
        tls_client_cert=ccert,
        tls_client_key=ckey,
        tls_scheduler_cert=str(cert_file),
        tls_scheduler_key=str(key_file),
        tls_worker_cert=str(cert_file),
        tls_worker_key=str(key_file),
        require_encryption=True,
    )


def client_security(
    ca_file: str | os.PathLike[str],
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    *,
    where: str = "security",
    check_hostname: bool | None = None,
) -> Security:
    """Build a client's :class:`distributed.Security`: the CA and a client certificate only.

    For a user who connects to a cluster (``wb.connect``, ``workbench lab --scheduler``): it
    holds no scheduler or worker certificate, so nothing handed on from it (to Lab kernels)
    can serve as one.

    Parameters
    ----------
    ca_file, cert_file, key_file
        PEM files: the cluster's CA, and the client certificate with its private key
        (``client-cert.pem`` and ``client-key.pem`` of ``workbench tls make``).
    where
        Where the settings came from, for error messages.
    check_hostname
        Whether to check that the server certificate names the host connected to; default
        ``workbench.security.check-hostname``.

    Returns
    -------
    distributed.Security
        With ``require_encryption`` and only the ``tls_ca_file`` and ``tls_client_*`` fields.

    Raises
    ------
    SecurityConfigError
        When a file is missing or unreadable, the certificate does not match its key, or the
        CA did not issue it.
    """
    _check_files(ca_file, [("", cert_file, key_file)], where)
    return _security_class(check_hostname)(
        tls_ca_file=str(ca_file),
        tls_client_cert=str(cert_file),
        tls_client_key=str(key_file),
        require_encryption=True,
    )


def _security_from_settings(settings: Mapping[str, Any], where: str) -> Security:
    """:func:`security_from_files` for a profile's ``security`` mapping (missing keys: "")."""
    return security_from_files(
        settings.get("ca_file") or "",
        settings.get("cert_file") or "",
        settings.get("key_file") or "",
        client_cert_file=settings.get("client_cert_file"),
        client_key_file=settings.get("client_key_file"),
        where=where,
    )


def security_for_profile(
    settings: Mapping[str, Any], *, remote: bool, where: str, tls: bool | None = None
) -> Security | None:
    """Return the Security a profile asks for, or ``None`` for plain TCP.

    Local profiles with ``tls: true`` and no files get temporary in-memory certificates
    (:func:`~workbench.clusters.certificates.temporary_security`); remote profiles must name
    files, since the certificates travel to other machines. Local clusters are decided by
    :func:`security_for_local`.
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
        return _security_from_settings(settings, where)
    return temporary_security()


# --- local clusters: when TLS is needed ---------------------------------------------------------
def bare_host(host: str) -> str:
    """``host`` without a ``scheme://`` prefix, a ``:port`` suffix or IPv6 brackets.

    A URL (``https://user@gateway:8000/path``) gives its host name alone.
    """
    if "://" in host:
        try:
            return urllib.parse.urlsplit(host.strip()).hostname or ""
        except ValueError:  # a malformed port or bracket: the text after the scheme
            pass
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
        return _security_from_settings(settings, where)
    return temporary_security(_temporary_hosts(host))
