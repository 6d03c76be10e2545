"""The client that workbench calls use when they are given ``client=None``."""

from __future__ import annotations

import atexit
import contextlib
import logging
from typing import Any

from distributed import Client, Security

from workbench.clusters.connect import connect
from workbench.config import setup_logging
from workbench.errors import ClusterConnectionError, SecurityConfigError

logger = logging.getLogger("workbench")

_started: list[Any] = []  # clusters started here for lack of a client; closed at exit


def ensure_client(client: Client | None = None) -> Client:
    """Return ``client``, else the current Dask client, else one on a new default cluster.

    Without a current client, Dask's ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``,
    set for the kernels of ``workbench lab``) is connected to, with the TLS settings of Dask's
    config, and becomes the current client. Otherwise ``workbench.start_cluster()`` (the
    default profile) starts, says so, and is closed when the interpreter exits.
    """
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(
                f"client must be a distributed.Client or None, not {type(client).__name__}"
            )
        return client
    try:
        from distributed import get_client

        return get_client()
    except ValueError:
        pass
    import dask

    address = dask.config.get("scheduler-address", None)
    if address:
        return _connect_configured(str(address))
    from workbench.clusters.start import start_cluster

    setup_logging()
    logger.info("no Dask client is connected: starting the default local cluster for this session")
    cluster = start_cluster()
    if not _started:
        atexit.register(_close_started)
    _started.append(cluster)
    return cluster.get_client()


def _connect_configured(address: str) -> Client:
    """Connect to Dask's ``scheduler-address`` setting through :func:`workbench.connect`.

    The same checks as ``connect`` apply: the wait is bounded by
    ``workbench.cluster.connect-timeout`` (a port that is not a Dask scheduler's gives a clear
    error, not a hang), TLS settings come from Dask's config, and plain TCP off this machine
    is warned about.
    """
    setup_logging()
    logger.info("connecting to the scheduler at %s (Dask's scheduler-address setting)", address)
    where = f"Dask's scheduler-address setting (DASK_SCHEDULER_ADDRESS) names {address}"
    try:
        return connect(address, security=Security(), set_as_default=True)
    except ClusterConnectionError as err:
        raise ClusterConnectionError(
            f"{where}, which did not answer as a Dask scheduler: {err} Start that cluster, or "
            "unset the setting to have a local cluster started."
        ) from err
    except (SecurityConfigError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from err


def _close_started() -> None:
    while _started:
        with contextlib.suppress(Exception):  # at exit, nothing is worth raising for
            _started.pop().close()


def scheduler_workers(client: Client) -> dict[str, dict[str, Any]]:
    """The scheduler's current view of its workers (address -> info), asked directly.

    ``Client.scheduler_info(n_workers=-1)`` returns a cached copy that the client's periodic
    refresh (which carries no per-worker details) can replace between the fetch and the read,
    so it may come back without workers; this asks the scheduler itself.
    """
    scheduler: Any = client.scheduler
    identity = client.sync(scheduler.identity, n_workers=-1)
    return dict(identity.get("workers", {}))
