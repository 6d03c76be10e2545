"""``connect``: join an existing scheduler, with TLS where its address says ``tls://``."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distributed import Client, Security
from distributed.comm import connect as comm_connect

from workbench import config
from workbench.clusters.security import security_from_files
from workbench.errors import ClusterConnectionError

logger = logging.getLogger("workbench")

_SCHEMES = ("tcp://", "tls://")


def _normalise_address(address: str) -> str:
    if not isinstance(address, str) or not address.strip():
        raise TypeError(
            f"address must be a scheduler address string such as 'tls://host:8786', not {address!r}"
        )
    address = address.strip()
    if "://" not in address:
        address = "tcp://" + address
    if not address.startswith(_SCHEMES):
        scheme = address.split("://", 1)[0]
        raise ValueError(f"scheduler address {address!r} uses {scheme}://; use tcp:// or tls://")
    hostport = address.split("://", 1)[1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"scheduler address {address!r} has no port; write it as tls://HOST:PORT "
            "(the scheduler's default port is 8786)"
        )
    return address


def _security_arg(security: Security | Mapping[str, Any] | None, address: str) -> Security | None:
    if security is None or isinstance(security, Security):
        return security
    if isinstance(security, Mapping):
        keys = {"ca_file", "cert_file", "key_file"}
        if not keys <= set(security):
            raise ValueError(
                f"security={dict(security)!r} must name ca_file, cert_file and key_file "
                "(or pass a distributed.Security)"
            )
        return security_from_files(
            security["ca_file"],
            security["cert_file"],
            security["key_file"],
            where=f"connect({address!r})",
        )
    raise TypeError(
        f"security must be a distributed.Security, a mapping with ca_file/cert_file/key_file, "
        f"or None; not {type(security).__name__}"
    )


def _probe(address: str, security: Security | None, seconds: float) -> None:
    """Open and close one comm to the scheduler, raising OSError if it cannot be reached.

    A synchronous ``Client`` that fails to connect leaves its event-loop thread behind; the
    probe finds an unreachable scheduler first, on a short-lived thread of its own (which also
    works inside a notebook, whose main thread already runs an event loop).
    """
    args = (security or Security()).get_connection_args("client")

    async def probe() -> None:
        comm = await comm_connect(address, timeout=seconds, **args)
        await comm.close()

    with ThreadPoolExecutor(1, thread_name_prefix="workbench-probe") as pool:
        pool.submit(asyncio.run, probe()).result()


def connect(
    address: str,
    security: Security | Mapping[str, Any] | None = None,
    *,
    timeout: float | str | None = None,
    set_as_default: bool = True,
) -> Client:
    """Connect a client to a running scheduler.

    Parameters
    ----------
    address
        ``tcp://host:port`` or ``tls://host:port`` (``host:port`` means ``tcp://``).
    security
        For ``tls://``: a :class:`distributed.Security`, or a mapping with ``ca_file``,
        ``cert_file`` and ``key_file`` (PEM files).
    timeout
        Give up after this long; default ``workbench.cluster.connect-timeout``.
    set_as_default
        Make the client the current one, used by every workbench call with ``client=None``.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ClusterConnectionError
        The scheduler did not answer within ``timeout``, or refused our certificate.
    SecurityConfigError
        A ``tls://`` address without certificates, or certificate files missing.
    """
    address = _normalise_address(address)
    seconds = config.timeout_seconds("cluster.connect-timeout", timeout)
    sec = _security_arg(security, address)
    if address.startswith("tls://") and (
        sec is None or not sec.get_connection_args("client").get("ssl_context")
    ):
        from workbench.errors import SecurityConfigError

        raise SecurityConfigError(
            f"{address} is a TLS scheduler, so the client needs certificates: "
            "connect(address, security={'ca_file': ..., 'cert_file': ..., 'key_file': ...}) "
            "or a distributed.Security"
        )
    if address.startswith("tcp://") and sec is not None and sec.require_encryption:
        raise ValueError(
            f"{address} is plain TCP but the security settings require encryption; "
            "use the tls:// address of the scheduler"
        )
    try:
        _probe(address, sec, seconds)
        client = Client(address, security=sec, timeout=seconds, set_as_default=set_as_default)
    except (OSError, TimeoutError, ssl.SSLError) as err:
        hint = (
            "check that the scheduler runs and the address and port are right"
            + (
                "; for TLS, that its CA signed your certificate and yours signed its"
                if address.startswith("tls://")
                else ""
            )
            + "; a tcp:// client cannot talk to a tls:// scheduler or the other way round"
        )
        raise ClusterConnectionError(
            f"could not connect to the scheduler at {address} within {seconds:g}s: "
            f"{type(err).__name__}: {err}. {hint.capitalize()}. "
            "Change the wait with timeout= or DASK_WORKBENCH__CLUSTER__CONNECT_TIMEOUT."
        ) from err
    logger.debug("connected to %s", address)
    return client
