"""``start_cluster``: a profile in, a running :class:`~workbench.clusters.cluster.Cluster` out."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from workbench import config
from workbench.checks import whole_number
from workbench.clusters import remote
from workbench.clusters.cluster import Cluster
from workbench.clusters.joined import running_cluster
from workbench.clusters.local import bind_host, gpu_readiness, start_local, start_local_cuda
from workbench.clusters.profiles import Profile, get_profile
from workbench.clusters.security import security_for_local, security_for_profile
from workbench.errors import ProfileError

logger = logging.getLogger(__name__)

Starter = Callable[..., tuple[Any, list[Any]]]


def _starter(kind: str) -> Starter:
    """The function that starts a deployment of ``kind`` (remote ones load libraries on use)."""
    if kind == "local":
        return start_local
    if kind == "local-cuda":
        return start_local_cuda
    return {
        "ssh": remote.start_ssh,
        "kubernetes": remote.start_kubernetes,
        "slurm": remote.start_slurm,
        "gateway": remote.start_gateway,
    }[kind]


#: Kinds whose scheduler we start (kubernetes gets the timeout in its spec; a gateway sets it).
_SCHEDULER_HERE = ("local", "local-cuda", "ssh", "slurm")


def _set_idle_timeout(seconds: float, dask_scheduler: Any = None) -> None:
    """Run on the scheduler: close after ``seconds`` without work, counting from now."""
    from time import time

    dask_scheduler.idle_timeout = seconds
    dask_scheduler.idle_since = time()


def _check_dashboard_address(address: Any) -> str:
    """Return ``address`` if it is ``HOST:PORT`` or ``:PORT``; warn when it is public."""
    text = str(address)
    host, sep, port = text.rpartition(":")
    if not isinstance(address, str) or not sep or not port.isdigit():
        raise ValueError(
            f"dashboard address {address!r} must be HOST:PORT, e.g. '127.0.0.1:8787' "
            "(port 0 picks a free one)"
        )
    if host.strip("[]") in ("", "0.0.0.0", "::"):
        logger.warning(
            "the dashboard at %s listens on every network interface: anyone who can reach this "
            "machine can see it. Use 127.0.0.1:PORT and an SSH tunnel to keep it private.",
            text,
        )
    return text


def resolve_profile(profile: str | os.PathLike[str] | None) -> Profile:
    """Return the concrete profile to start: ``auto`` profiles become their GPU or CPU choice."""
    chosen = get_profile(profile if profile is not None else config.get("profiles.default"))
    if chosen.kind != "auto":
        return chosen
    ready, why = gpu_readiness()
    target = chosen.extra["gpu"] if ready else chosen.extra["cpu"]
    if not ready:
        logger.info("%s: starting the CPU profile %r instead.", why[0].upper() + why[1:], target)
    else:
        logger.info("GPUs found: starting the GPU profile %r.", target)
    resolved = get_profile(target)
    if resolved.kind == "auto":
        raise ProfileError(f"profile {chosen.name!r} points to {target!r}, which is 'auto' too")
    return resolved


def start_cluster(
    profile: str | os.PathLike[str] | None = None,
    *,
    tls: bool | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    idle_timeout: str | float | None = None,
    dashboard_address: str | None = None,
    **options: Any,
) -> Cluster:
    """Start a Dask cluster from a profile and connect a client to it.

    Called with nothing at all while this session already has a cluster (a current Dask
    client, or Dask's ``scheduler-address`` setting, which ``workbench lab`` sets for its
    kernels), it joins that cluster and says so instead of starting a second one: the result
    is a :class:`~workbench.clusters.joined.JoinedCluster`, whose ``close()`` leaves the
    cluster running. A profile or any option starts a cluster of its own.

    Parameters
    ----------
    profile
        A profile name from :func:`workbench.profiles` or a path to a profile YAML file.
        Defaults to ``workbench.profiles.default`` (``"local"``: GPUs if present, else CPU).
    tls
        Encrypt and authenticate all cluster traffic. Local clusters use temporary
        certificates (or the profile's files) and default to TLS exactly when they listen
        beyond loopback (``host="0.0.0.0"``, ``workbench.cluster.host``); ``tls=False`` there
        is honoured with an :class:`~workbench.errors.InsecureClusterWarning`. Remote profiles
        need certificate files and default to ``True``.
    minimum, maximum
        Scale adaptively between these worker counts (where the deployment can).
    idle_timeout
        Close the scheduler after this long without work, e.g. ``"1h"``.
    dashboard_address
        Where the dashboard listens; default ``workbench.cluster.dashboard-address``
        (localhost, a free port).
    **options
        Options of the deployment class that win over the profile's, e.g. ``n_workers=4``,
        ``threads_per_worker=2`` or ``rmm_pool_size="20GB"``. Unknown names are refused
        with the list of valid ones.

    Returns
    -------
    Cluster
        The running cluster; ``cluster.get_client()`` is its client, already the current one.

    Raises
    ------
    ProfileError
        Unknown profile, malformed YAML (file and line), unknown option.
    GPUUnavailableError, MissingDependencyError
        A GPU profile where there is no GPU, or without the ``gpu`` extra.
    SecurityConfigError
        TLS certificate files missing or not matching.
    MainGuardError
        Called from a script's top level without ``if __name__ == "__main__":``.

    Warns
    -----
    InsecureClusterWarning
        A local cluster listens beyond loopback with TLS turned off explicitly.

    Examples
    --------
    >>> import workbench as wb
    >>> with wb.start_cluster("local-cpu", n_workers=2) as cluster:  # doctest: +SKIP
    ...     client = cluster.get_client()
    """
    config.setup_logging()
    asked = (tls, minimum, maximum, idle_timeout, dashboard_address)
    if profile is None and not options and all(a is None for a in asked):
        joined = running_cluster()
        if joined is not None:
            logger.info(
                "joined the running cluster at %s (%s) instead of starting another: %s; "
                "pass a profile to start a separate one, e.g. start_cluster('local-cpu')",
                joined.scheduler_address,
                joined.how,
                joined.dashboard_link or "no dashboard",
            )
            return joined
    chosen = resolve_profile(profile).with_overrides(options)
    bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
    if bounds:
        chosen = replace(chosen, adapt={**chosen.adapt, **bounds})
    adapt = dict(chosen.adapt)
    lo, hi = adapt.get("minimum"), adapt.get("maximum")
    for key, value in (("minimum", lo), ("maximum", hi)):
        if value is not None:
            whole_number(value, key, 0, hint="the number of workers")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"minimum={lo} is larger than maximum={hi}; swap them")

    if chosen.kind == "gateway":  # the gateway makes per-cluster certificates itself
        security = None
        if tls is not None:
            chosen = replace(chosen, security={**chosen.security, "tls": tls})
    elif chosen.kind in ("local", "local-cuda"):
        host, listens = bind_host(chosen.options)
        security = security_for_local(
            chosen.security, host=host, listens=listens, tls=tls, where=chosen.where("security")
        )
    else:
        security = security_for_profile(
            chosen.security, remote=chosen.remote, where=chosen.where("security"), tls=tls
        )
    dashboard = _check_dashboard_address(
        dashboard_address
        or chosen.dashboard.get("address")
        or config.get("cluster.dashboard-address")
    )
    if idle_timeout is None:
        idle_timeout = chosen.idle_timeout
    if idle_timeout is None:
        idle_timeout = config.get("cluster.idle-timeout")
    idle_seconds = None
    if idle_timeout is not None:
        idle_seconds = config.timeout_seconds("cluster.idle-timeout", idle_timeout)
        chosen = replace(chosen, idle_timeout=idle_timeout)
    starter = _starter(chosen.kind)
    deployment, plugins = starter(chosen, security=security, dashboard_address=dashboard)
    dashboard_host = dashboard.rpartition(":")[0].strip("[]")
    local = chosen.kind in ("local", "local-cuda")
    cluster = Cluster(
        deployment,
        chosen,
        security=security,
        plugins=plugins,
        dashboard_host=dashboard_host if local and dashboard_host not in ("", "0.0.0.0") else None,
    )
    try:
        if adapt:
            cluster.adapt(**adapt)
        client = cluster.get_client()
        if idle_seconds is not None and chosen.kind in _SCHEDULER_HERE:
            # Set once the cluster is up: a scheduler that starts with a short idle timeout can
            # close before its first worker has even registered, and the start then waits forever.
            client.run_on_scheduler(_set_idle_timeout, idle_seconds)
    except BaseException:
        cluster.close()
        raise
    logger.info(
        "cluster %r is up at %s; dashboard: %s",
        chosen.name,
        cluster.scheduler_address,
        cluster.dashboard_link or "none",
    )
    return cluster
