"""The ``ssh`` deployment: distributed's :class:`~distributed.SSHCluster` parts from a profile.

Needs ``asyncssh`` (the ``remote`` extra). The scheduler binds to the first host of the profile
and each worker to its own host; with TLS on, the certificate files must exist at the same paths
on the remote hosts.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from typing import Any

from distributed import Security, SpecCluster
from distributed.deploy.ssh import Scheduler as SSHScheduler
from distributed.deploy.ssh import SSHCluster
from distributed.deploy.ssh import Worker as SSHWorker

from workbench import config
from workbench.clusters.engine import Started, _require, _tls_files
from workbench.clusters.local import _params, check_options
from workbench.clusters.profiles import Profile
from workbench.errors import ClusterConnectionError, ProfileError

__all__ = ["ssh_arguments", "ssh_options", "ssh_specs", "start_ssh"]


@cache
def ssh_options() -> frozenset[str]:
    """Options an ``ssh`` profile may set: those of :class:`distributed.SSHCluster`."""
    return frozenset(_params(SSHCluster) - {"loop", "asynchronous", "security"})


def ssh_arguments(
    profile: Profile, *, security: Security | None, dashboard_address: str
) -> dict[str, Any]:
    """Return the keyword arguments for :class:`distributed.SSHCluster` from a profile.

    The scheduler is bound to the first host named in the profile (never the outward
    interface it would otherwise pick); each worker is bound to its own host by
    :func:`ssh_specs` (``worker_options.host`` in the profile wins). With TLS on, the scheduler
    and the workers get the server certificate, and the client (this process) the client
    certificate (as plain settings: they travel to the remote hosts as JSON).
    """
    check_options(profile, ssh_options())
    opts = copy.deepcopy(profile.options)
    hosts = opts.get("hosts")
    if not isinstance(hosts, list) or len(hosts) < 2 or not all(isinstance(h, str) for h in hosts):
        raise ProfileError(
            f"profile {profile.name!r} needs options.hosts: a list of at least two host names, "
            f"the scheduler's first, then one per worker ({profile.where('options.hosts')}); "
            f"got {hosts!r}"
        )
    sched = dict(opts.get("scheduler_options") or {})
    work = dict(opts.get("worker_options") or {})
    sched.setdefault("host", hosts[0])
    sched.setdefault("dashboard_address", dashboard_address)
    tls = _tls_files(security)
    if tls is not None:
        sched["protocol"] = "tls"
        sched["security"] = {
            "tls_ca_file": tls["ca"],
            "tls_scheduler_cert": tls["cert"],
            "tls_scheduler_key": tls["key"],
            "require_encryption": True,
        }
        work["security"] = {
            "tls_ca_file": tls["ca"],
            "tls_worker_cert": tls["cert"],
            "tls_worker_key": tls["key"],
            "require_encryption": True,
        }
        opts["security"] = security
    opts["scheduler_options"] = sched
    opts["worker_options"] = work
    remote_python = opts.get("remote_python")
    if isinstance(remote_python, list) and len(remote_python) != len(hosts):
        raise ProfileError(
            f"options.remote_python of profile {profile.name!r} is a list of "
            f"{len(remote_python)} paths for {len(hosts)} hosts; give one per host, or one path "
            f"for all ({profile.where('options.remote_python')})"
        )
    connect = opts.get("connect_options")
    if connect is None:
        connect = opts["connect_options"] = {}
    if not isinstance(connect, dict):
        raise ProfileError(
            f"options.connect_options of profile {profile.name!r} must be a mapping of asyncssh "
            f"connect options ({profile.where('options.connect_options')}), not {connect!r}"
        )
    if connect.get("client_keys"):
        connect["client_keys"] = [os.path.expanduser(str(k)) for k in connect["client_keys"]]
    if isinstance(connect.get("known_hosts"), str):
        connect["known_hosts"] = os.path.expanduser(connect["known_hosts"])
    # a host that drops packets would otherwise hang for the system's TCP timeout
    connect.setdefault("connect_timeout", config.timeout_seconds("cluster.connect-timeout"))
    return opts


def ssh_specs(
    arguments: dict[str, Any],
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], dict[str, Any]]:
    """Split :func:`ssh_arguments` into the scheduler's and workers' specs of a ``SpecCluster``.

    :class:`distributed.SSHCluster` gives every worker the same ``worker_options``, so a
    worker without a ``host`` option would listen on all of its machine's interfaces. Here
    each worker gets ``host`` = the host it runs on (its entry in ``hosts``), unless
    ``worker_options`` names a host itself. The classes are distributed's own
    (``distributed.deploy.ssh.Scheduler`` and ``Worker``).

    Parameters
    ----------
    arguments
        The keyword arguments of :func:`ssh_arguments` (``hosts``, ``connect_options``,
        ``worker_options``, ``scheduler_options``, ``worker_class``, ``remote_python``...).

    Returns
    -------
    scheduler, workers, rest
        The scheduler's spec, the workers' specs by number, and the remaining keyword
        arguments of :class:`distributed.SpecCluster` (``security``).
    """
    args = dict(arguments)
    hosts: list[str] = args.pop("hosts")
    connect = args.pop("connect_options")
    work = args.pop("worker_options")
    sched = args.pop("scheduler_options")
    worker_class = args.pop("worker_class", "distributed.Nanny")
    python = args.pop("remote_python", None)
    pythons = python if isinstance(python, list) else [python] * len(hosts)
    scheduler: dict[str, Any] = {
        "cls": SSHScheduler,
        "options": {
            "address": hosts[0],
            "connect_options": connect,
            "kwargs": sched,
            "remote_python": pythons[0],
        },
    }
    workers: dict[int, dict[str, Any]] = {
        i: {
            "cls": SSHWorker,
            "options": {
                "address": host,
                "connect_options": connect,
                "kwargs": {**work, "host": work.get("host", host)},
                "worker_class": worker_class,
                "remote_python": pythons[i + 1],
            },
        }
        for i, host in enumerate(hosts[1:])
    }
    return scheduler, workers, args


def start_ssh(profile: Profile, *, security: Security | None, dashboard_address: str) -> Started:
    """Start an SSH cluster (``distributed.SSHCluster``'s parts) for an ``ssh`` profile."""
    _require("asyncssh", "ssh", "asyncssh")
    kwargs = ssh_arguments(profile, security=security, dashboard_address=dashboard_address)
    scheduler, workers, rest = ssh_specs(kwargs)
    try:
        return SpecCluster(workers, scheduler, name="SSHCluster", **rest), []
    except (OSError, RuntimeError) as err:
        target = kwargs["hosts"][0]
        port = (kwargs.get("connect_options") or {}).get("port", 22)
        raise ClusterConnectionError(
            f"could not start the SSH cluster of profile {profile.name!r} "
            f"(scheduler host {target}, SSH port {port}): {err}. Check that you can "
            f"`ssh -p {port} {target}` with the profile's keys, "
            "and that remote_python exists there."
        ) from err
