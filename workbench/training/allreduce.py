"""XGBoost's allreduce and Dask's TLS: the warning that the one is not covered by the other.

Dask's TLS covers scheduler, worker and client traffic, but XGBoost's collective (the tracker
and the ring allreduce of gradient histograms) opens its own plain TCP connections between the
workers. This is training's concern, so it lives here; it learns of the cluster only through
the base layer's :class:`~workbench._client.ClusterSnapshot`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from distributed import Client

from workbench import config
from workbench._client import ClusterSnapshot, snapshot

logger = logging.getLogger(__name__)


class UnencryptedAllreduceWarning(UserWarning):
    """XGBoost's allreduce between workers bypasses Dask's TLS."""


_warned_schedulers: set[str] = set()


def warn_if_allreduce_unencrypted(client: Client, cluster: ClusterSnapshot | None = None) -> bool:
    """Warn once per scheduler when training would send XGBoost's allreduce across hosts in clear.

    On one host that traffic stays on the machine; across hosts it crosses the network
    unencrypted, though the cluster uses TLS.

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`.
    cluster
        The operation's :func:`~workbench._client.snapshot` of the cluster, if it has one;
        otherwise the scheduler is asked (only when its address is ``tls://``).

    Returns
    -------
    bool
        Whether a warning was issued now.
    """
    if not config.get("security.warn-unencrypted-allreduce"):
        return False
    scheduler: Any = client.scheduler
    address = cluster.address if cluster is not None else str(scheduler.address)
    if not address.startswith("tls://") or address in _warned_schedulers:
        return False
    hosts = (cluster if cluster is not None else snapshot(client)).hosts
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
