"""A cluster that is already running for this session: joined, not started.

Under ``workbench lab`` every kernel is told the lab's scheduler (``DASK_SCHEDULER_ADDRESS``,
Dask's ``scheduler-address`` setting), and in a notebook that has already connected a client
that client is current. :func:`workbench.start_cluster` with no profile then joins that cluster
instead of starting a second one beside it (which would claim the machine's memory a second
time and leave the lab's dashboard panes empty): :func:`running_cluster` finds it and
:class:`JoinedCluster` is the handle, with the manners of a started
:class:`~workbench.clusters.cluster.Cluster` except that closing it only disconnects this
session's own client; the cluster stays up for whoever started it.
"""

from __future__ import annotations

import logging
from typing import Any

import dask
from distributed import Client, Security

from workbench.clusters.cluster import Cluster
from workbench.clusters.connect import connect
from workbench.clusters.profiles import Profile
from workbench.errors import ClusterConnectionError, SecurityConfigError

__all__ = ["JoinedCluster", "connect_configured", "running_cluster"]

logger = logging.getLogger(__name__)

#: The profile name a joined cluster reports (it was started elsewhere, from whatever profile).
JOINED = Profile(
    name="joined",
    kind="joined",
    description="A running cluster this session joined (workbench lab, DASK_SCHEDULER_ADDRESS "
    "or a connected client); closing it disconnects only this session.",
)


class JoinedCluster(Cluster):
    """A handle on a running cluster this session joined rather than started.

    Parameters
    ----------
    client
        The connected client.
    owns_client
        Whether :meth:`close` closes ``client`` (one this handle connected) or leaves it
        connected (a client the session had before).
    how
        How the cluster was found, for the message and the repr: ``"Dask's scheduler-address
        setting"`` or ``"the current Dask client"``.
    """

    def __init__(self, client: Client, *, owns_client: bool, how: str) -> None:
        super().__init__(deployment=None, profile=JOINED, security=client.security)
        self._client = client
        self._owns_client = owns_client
        self.how = how

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address."""
        scheduler = self._joined_client().scheduler
        return str(scheduler.address) if scheduler is not None else ""

    @property
    def dashboard_link(self) -> str:
        """The URL of the Dask dashboard, or ``""`` when there is none."""
        try:
            return str(self._joined_client().dashboard_link or "")
        except Exception:  # a scheduler without a dashboard, or gone
            return ""

    @property
    def status(self) -> str:
        """``running``, ``lost`` (the scheduler went away) or ``closed``."""
        if self._closed:
            return "closed"
        return "running" if self._joined_client().status == "running" else "lost"

    def _joined_client(self) -> Client:
        assert self._client is not None  # only None once closed, which the callers check
        return self._client

    def get_client(self) -> Client:
        """Return the joined cluster's client."""
        if self._closed:
            raise RuntimeError("this handle on a joined cluster is closed; call start_cluster()")
        return self._joined_client()

    def scale(self, n: int | None = None, **kwargs: Any) -> None:
        """Refused: a joined cluster is scaled by whoever started it."""
        raise RuntimeError(
            f"this session joined the running cluster at {self.scheduler_address} "
            f"({self.how}); scale it where it was started (e.g. `workbench lab --workers N`), "
            "or start a cluster of your own with a profile: wb.start_cluster('local-cpu', "
            "n_workers=...)"
        )

    def adapt(self, minimum: int | None = None, maximum: int | None = None, **kwargs: Any) -> Any:
        """Refused: a joined cluster is scaled by whoever started it."""
        self.scale()

    def close(self, timeout: float | None = None) -> None:
        """Disconnect this session's own client; the cluster keeps running."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close(**({"timeout": timeout} if timeout else {}))
        logger.debug("left the joined cluster")


def connect_configured(address: str) -> Client:
    """Connect to Dask's ``scheduler-address`` setting through :func:`workbench.connect`.

    The same checks as ``connect`` apply: the wait is bounded by
    ``workbench.cluster.connect-timeout`` (a port that is not a Dask scheduler's gives a clear
    error, not a hang), TLS settings come from Dask's config, and plain TCP off this machine
    is warned about. The client becomes the current one.
    """
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


def running_cluster() -> JoinedCluster | None:
    """The cluster this session is already pointed at, joined; ``None`` when there is none.

    The current Dask client (a running one) comes first, then Dask's ``scheduler-address``
    setting (``DASK_SCHEDULER_ADDRESS``: what ``workbench lab`` sets for its kernels), which is
    connected to and made current.

    Raises
    ------
    ClusterConnectionError, SecurityConfigError
        The setting names a scheduler that does not answer, or one whose TLS settings are
        missing: the message names the setting and the way out.
    """
    try:
        current = Client.current(allow_global=True)
    except ValueError:
        current = None
    if current is not None and current.status == "running":
        return JoinedCluster(current, owns_client=False, how="the current Dask client")
    address = dask.config.get("scheduler-address", None)
    if not address:
        return None
    client = connect_configured(str(address))
    return JoinedCluster(client, owns_client=True, how="Dask's scheduler-address setting")
