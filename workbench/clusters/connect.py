"""``connect``: join an existing scheduler, with TLS where its address says ``tls://``.

Before the client starts, a probe opens one connection, completes Dask's handshake and asks
the peer who it is, all within the timeout. distributed's own handshake waits without a limit
and reads the first eight bytes it gets as a message length, so a port that speaks another
protocol would hang the client (a silent server) or make it allocate exabytes (an HTTP
reply); the probe turns both into a :class:`ClusterConnectionError` that names the address.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distributed import Client, Security
from distributed.comm import Comm, parse_address
from distributed.comm.core import CommClosedError, FatalCommClosedError
from distributed.comm.registry import get_backend

from workbench import config
from workbench.clusters.security import client_security, is_loopback
from workbench.errors import ClusterConnectionError, InsecureClusterWarning, SecurityConfigError

logger = logging.getLogger(__name__)

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
    if not 0 < int(port) < 65536:
        raise ValueError(
            f"scheduler address {address!r} has port {port}; a port is 1 to 65535 "
            "(the scheduler's default is 8786)"
        )
    return address


def plain_tcp_warning(address: str) -> str | None:
    """The warning that connecting to ``address`` deserves, or ``None``; decided from the text.

    A ``tcp://`` address off this machine carries pickles both ways without encryption or
    authentication: anyone on the path can read the data, or change what the client unpickles
    and so run code here or on the cluster. ``tls://`` and loopback addresses (127.0.0.0/8,
    ``::1``, ``localhost``) get ``None``; host names other than ``localhost`` are not looked
    up, and count as remote.

    Parameters
    ----------
    address
        A normalised scheduler address (``tcp://host:port`` or ``tls://host:port``).

    Returns
    -------
    str or None
        The text of the :class:`~workbench.errors.InsecureClusterWarning` to give, or ``None``.
    """
    if not address.startswith("tcp://") or is_loopback(address):
        return None
    return (
        f"connecting to {address} over plain TCP: the client and the scheduler exchange pickled "
        "data without encryption or authentication, so anyone on the network path can read it "
        "or change it and run code on this machine or the cluster. Use the scheduler's tls:// "
        "address with certificates (workbench tls make), or an SSH tunnel to 127.0.0.1."
    )


def _security_arg(security: Security | Mapping[str, Any] | None, address: str) -> Security | None:
    """The client's Security: as given, or a client-only one built from a mapping of files.

    A mapping names ``ca_file`` and the client certificate and key, as ``client_cert_file``
    and ``client_key_file`` (a profile's names) or ``cert_file`` and ``key_file``; the
    client-only Security (:func:`client_security`) carries no scheduler certificate, so a Lab
    started from it hands kernels nothing that could serve as the scheduler.
    """
    if security is None or isinstance(security, Security):
        return security
    if isinstance(security, Mapping):
        cert = security.get("client_cert_file") or security.get("cert_file")
        key = security.get("client_key_file") or security.get("key_file")
        named = set(security)
        if not (
            "ca_file" in named
            and named & {"cert_file", "client_cert_file"}
            and named & {"key_file", "client_key_file"}
        ):
            raise ValueError(
                f"security={dict(security)!r} must name ca_file, cert_file and key_file (the "
                "client certificate; client_cert_file and client_key_file also do), or pass a "
                "distributed.Security"
            )
        where = f"connect({address!r})"  # a file named as None is reported missing there
        return client_security(security["ca_file"] or "", cert or "", key or "", where=where)
    raise TypeError(
        f"security must be a distributed.Security, a mapping with ca_file/cert_file/key_file, "
        f"or None; not {type(security).__name__}"
    )


def _kind(err: BaseException) -> str:
    """The name of an error's type: the built-in one it derives from, else module.name."""
    builtin = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
    if builtin not in (Exception, BaseException):
        return builtin.__name__
    return f"{type(err).__module__.split('.')[0]}.{type(err).__qualname__}"


def _root_cause(err: BaseException) -> BaseException:
    while isinstance(err.__cause__, Exception):  # not a timeout's CancelledError
        err = err.__cause__
    return err


async def _open(address: str, args: dict[str, Any], left: Any) -> Comm:
    """A comm to ``address`` (TCP, and TLS where asked), retried until no time is ``left()``.

    Retrying as distributed's own ``connect`` does lets a scheduler that is still starting
    answer. A refused certificate is final; when the time is out, the last error is raised.
    """
    connector = get_backend(parse_address(address)[0]).get_connector()
    location = parse_address(address)[1]
    delay = 0.01
    while True:
        try:
            return await asyncio.wait_for(
                connector.connect(location, deserialize=True, **args), left()
            )
        except FatalCommClosedError:
            raise
        except (OSError, TimeoutError):
            if left() <= 0:
                raise
            await asyncio.sleep(min(delay, left()))
            delay = min(delay * 2, 0.5)


async def _greet(comm: Comm) -> dict[str, Any]:
    """Dask's handshake on an open comm, then the peer's identity (its ``type`` and more)."""
    local = comm.handshake_info()
    await comm.write(local)
    remote = await comm.read()
    if not isinstance(remote, dict) or "pickle-protocol" not in remote:
        raise ValueError(f"a handshake of type {type(remote).__name__} without Dask's fields")
    comm.handshake_options = comm.handshake_configuration(local, remote)
    await comm.write({"op": "identity", "reply": True})
    identity = await comm.read()
    if not isinstance(identity, dict):
        raise ValueError(f"an identity of type {type(identity).__name__}")
    return identity


async def _check_scheduler(address: str, args: dict[str, Any], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    def left() -> float:
        return max(deadline - loop.time(), 0.0)

    comm = await _open(address, args, left)
    try:
        identity = await asyncio.wait_for(_greet(comm), left())
    except TimeoutError:
        raise ClusterConnectionError(
            f"{address} accepted the connection but did not speak Dask's protocol within "
            f"{seconds:g}s: is it the port of a Dask scheduler (default 8786), or of another "
            "service? A tcp:// client cannot talk to a tls:// scheduler either."
        ) from None
    except CommClosedError as err:
        raise ClusterConnectionError(
            f"{address} accepted the connection, then closed it without Dask's handshake "
            f"({_root_cause(err)}): a tcp:// client cannot talk to a tls:// scheduler (use its "
            "tls:// address and certificates), and other services close on Dask's first message"
        ) from None
    except Exception as err:  # garbage read as a Dask message: MemoryError, struct.error...
        raise ClusterConnectionError(
            f"{address} answered with something that is not Dask's protocol "
            f"({_kind(err)} reading its reply: {str(err)[:200]}): it is another kind of "
            "server (HTTP, SSH, a database...?). Check the scheduler's address and port "
            "(default 8786)."
        ) from None
    finally:
        comm.abort()
    kind = identity.get("type")
    if kind in ("Worker", "Nanny"):
        scheduler = identity.get("scheduler")
        raise ClusterConnectionError(
            f"{address} is a Dask {kind.lower()}, not a scheduler: connect to its scheduler"
            + (f" at {scheduler}" if scheduler else "")
        )


def _probe(address: str, security: Security | None, seconds: float) -> None:
    """Check within ``seconds`` that a Dask scheduler answers at ``address``.

    Raises ``OSError`` (or ``TimeoutError``) when nothing accepts a connection, and
    :class:`ClusterConnectionError` when the peer is not a Dask scheduler. It runs on a
    short-lived thread of its own with its own event loop (which also works inside a notebook,
    whose main thread already runs one), and leaves no comm open: a synchronous ``Client`` that
    fails to connect leaves its event-loop thread behind, so it starts only after this passed.
    """
    args = (security or Security()).get_connection_args("client")
    with ThreadPoolExecutor(1, thread_name_prefix="workbench-probe") as pool:
        pool.submit(asyncio.run, _check_scheduler(address, args, seconds)).result()


class BoundedClient(Client):
    """A :class:`distributed.Client` whose start as a whole is bounded by its ``timeout``.

    distributed bounds each step of a client's start by ``timeout`` separately, and not the
    handshake read of its connection at all, so a peer that stalls there would hold the client
    for ever. Here the start is cancelled when ``timeout`` is up (``callback_timeout``), and a
    client that did not start is closed, its event-loop thread included (distributed leaves
    that thread running after a failed start). Everything else is distributed's ``Client``.
    """

    def start(self, **kwargs: Any) -> None:
        """Start the client as distributed does, within ``timeout``; clean up on failure."""
        if self.asynchronous or self.status != "newly-created":
            return super().start(**kwargs)
        kwargs.setdefault("callback_timeout", self._timeout)
        try:
            super().start(**kwargs)
        except BaseException:
            try:
                self.close(timeout=self._timeout)
            except Exception as err:  # the failure to start is the one to report
                logger.debug("closing a client that did not start: %r", err)
            finally:
                self._loop_runner.stop()
            raise


def connect(
    address: str,
    security: Security | Mapping[str, Any] | None = None,
    *,
    timeout: float | str | None = None,
    set_as_default: bool = True,
) -> Client:
    """Connect a client to a running scheduler.

    A ``tcp://`` address that is not a loopback address (127.0.0.0/8, ``::1``,
    ``localhost``) gets an :class:`~workbench.errors.InsecureClusterWarning` first: pickles
    would travel without encryption or authentication.

    Parameters
    ----------
    address
        ``tcp://host:port`` or ``tls://host:port`` (``host:port`` means ``tcp://``).
    security
        For ``tls://``: a :class:`distributed.Security`, or a mapping with ``ca_file``,
        ``cert_file`` and ``key_file`` (PEM files: the cluster's CA and *your* client
        certificate, ``client-cert.pem``/``client-key.pem`` of ``workbench tls make``;
        ``client_cert_file``/``client_key_file`` are read too, so a profile's ``security``
        mapping works as it is).
    timeout
        Give up after this long; default ``workbench.cluster.connect-timeout``. It bounds the
        whole of it: the check that a Dask scheduler answers (connection, TLS and Dask's
        handshake) and the client's start after it.
    set_as_default
        Make the client the current one, used by every workbench call with ``client=None``.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ClusterConnectionError
        The scheduler did not answer within ``timeout``, refused our certificate, or the port
        speaks another protocol or belongs to a worker (the message says which).
    SecurityConfigError
        A ``tls://`` address without certificates, or certificate files missing.

    Warns
    -----
    InsecureClusterWarning
        A plain ``tcp://`` address that is not this machine's loopback.
    """
    address = _normalise_address(address)
    warning = plain_tcp_warning(address)
    if warning:
        warnings.warn(warning, InsecureClusterWarning, stacklevel=2)
    seconds = config.timeout_seconds("cluster.connect-timeout", timeout)
    sec = _security_arg(security, address)
    if address.startswith("tls://") and (
        sec is None or not sec.get_connection_args("client").get("ssl_context")
    ):
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
    deadline = time.monotonic() + seconds
    try:
        _probe(address, sec, seconds)
        left = max(deadline - time.monotonic(), 0.001)
        client = BoundedClient(address, security=sec, timeout=left, set_as_default=set_as_default)
    except ClusterConnectionError:
        raise
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
        cause = _root_cause(err)
        raise ClusterConnectionError(
            f"could not connect to the scheduler at {address} within {seconds:g}s: "
            f"{type(cause).__name__}: {cause or 'no answer'}. {hint.capitalize()}. "
            "Change the wait with timeout= or DASK_WORKBENCH__CLUSTER__CONNECT_TIMEOUT."
        ) from err
    logger.debug("connected to %s", address)
    return client
