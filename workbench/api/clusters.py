"""Cluster operations of the command line: a scheduler's overview, a profile rendered, Lab's.

Each returns values and leaves the printing to its caller (:mod:`workbench.cli`).
"""

from __future__ import annotations

import copy
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from distributed import Client, Security

from workbench._client import ClusterSnapshot, snapshot
from workbench.clusters import remote
from workbench.clusters.cluster import Cluster
from workbench.clusters.connect import connect
from workbench.clusters.profiles import builtin_dir, get_profile, user_dir
from workbench.clusters.security import security_for_profile
from workbench.clusters.start import start_cluster

logger = logging.getLogger(__name__)


def _tls_files(
    ca_file: str | None, cert_file: str | None, key_file: str | None
) -> dict[str, Any] | None:
    """The ``security`` mapping of ``connect`` for the files given, or ``None`` for none."""
    if ca_file or cert_file or key_file:
        return {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    return None


@dataclass(frozen=True)
class SchedulerView:
    """A running scheduler as ``workbench cluster info`` shows it.

    Attributes
    ----------
    address
        The scheduler's address as it reports it.
    tls
        Whether the address asked for is ``tls://``.
    dashboard_port
        The dashboard's port, or ``None`` without a dashboard.
    cluster
        Its workers, threads, memory and GPUs, from one question to the scheduler.
    """

    address: str
    tls: bool
    dashboard_port: Any
    cluster: ClusterSnapshot


def describe_scheduler(
    address: str,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    timeout: str | None = None,
) -> SchedulerView:
    """Connect to the scheduler at ``address``, look at it once, and disconnect.

    Parameters
    ----------
    address
        The scheduler's address, e.g. ``tls://host:8786``.
    ca_file, cert_file, key_file
        TLS: the CA certificate and the client certificate and key.
    timeout
        Give up connecting after this long (default: ``workbench.cluster.connect-timeout``).

    Returns
    -------
    SchedulerView
        Its address, TLS, dashboard port and workers.
    """
    security = _tls_files(ca_file, cert_file, key_file)
    client = connect(address, security=security, timeout=timeout, set_as_default=False)
    try:
        cluster = snapshot(client)
        info = client.scheduler_info(n_workers=0)
        return SchedulerView(
            address=str(info.get("address", address)),
            tls=address.startswith("tls://"),
            dashboard_port=info.get("services", {}).get("dashboard"),
            cluster=cluster,
        )
    finally:
        client.close()


def profile_folders() -> tuple[Path, Path]:
    """The folders of the built-in cluster profiles and of the user's own."""
    return builtin_dir(), user_dir()


def render_profile(
    profile: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    tls: bool | None = None,
    with_secret: bool = False,
) -> list[str]:
    """What ``profile`` deploys, as text blocks to print, without deploying it.

    Parameters
    ----------
    profile
        A Kubernetes, Slurm or SSH profile's name or YAML file.
    overrides
        Deployment options that win over the profile's.
    tls
        Override the profile's TLS setting.
    with_secret
        Kubernetes: include the Secret with the private key among the manifests.

    Returns
    -------
    list of str
        Kubernetes: the ``kubectl create secret`` line (as a comment, when TLS is on and the
        Secret is left out) and the manifests; Slurm: one job's batch script; SSH: the
        scheduler and each worker, with the SSH host it runs on and the options it starts with.

    Raises
    ------
    ValueError
        The profile is of another kind.
    """
    p = get_profile(profile).with_overrides(dict(overrides or {}))
    if p.kind not in ("kubernetes", "slurm", "ssh"):
        raise ValueError(
            f"profile {p.name!r} is of kind {p.kind}; render works for kubernetes, slurm and ssh"
        )
    sec = security_for_profile(p.security, remote=True, where=p.where("security"), tls=tls)
    if p.kind == "kubernetes":
        blocks = []
        docs = remote.kubernetes_manifests(p, sec, include_secret=with_secret)
        if sec is not None and not with_secret:
            name = p.options.get("tls_secret") or f"{p.options.get('name', 'workbench')}-tls"
            words = ["kubectl", "create", "secret", "generic", str(name)]
            if p.options.get("namespace"):
                words += ["-n", str(p.options["namespace"])]
            words += [
                f"--from-file={k}={p.security[f]}"
                for k, f in (
                    ("ca.pem", "ca_file"),
                    ("cert.pem", "cert_file"),
                    ("key.pem", "key_file"),
                )
            ]
            blocks.append(f"# first: {shlex.join(words)}")
        blocks.append(yaml.safe_dump_all(docs, sort_keys=False))
        return blocks
    if p.kind == "slurm":
        return [remote.slurm_job_script(p, sec)]
    args = remote.ssh_arguments(p, security=sec, dashboard_address="127.0.0.1:8787")
    scheduler, workers, _ = remote.ssh_specs(args)
    # each process: the SSH host it runs on, then how it is started there
    parts = [copy.deepcopy(spec["options"]) for spec in (scheduler, *workers.values())]
    plan = [{"ssh_host": part.pop("address"), **part} for part in parts]
    return [yaml.safe_dump({"scheduler": plan[0], "workers": plan[1:]}, sort_keys=False)]


@dataclass(frozen=True)
class LabCluster:
    """The cluster JupyterLab's kernels connect to: started here, or a running one's client.

    Attributes
    ----------
    owner
        The :class:`~workbench.clusters.cluster.Cluster` started here, or the client of a
        running scheduler; :meth:`close` closes it.
    address
        The scheduler's address.
    dashboard
        The dashboard's URL, or ``""`` without one.
    security
        The TLS settings kernels connect with, or ``None`` for plain TCP.
    started
        Whether the cluster was started here (closing it ends it).
    """

    owner: Cluster | Client
    address: str
    dashboard: str
    security: Security | None
    started: bool

    def close(self) -> None:
        """Close the cluster started here, or disconnect from the running one."""
        self.owner.close()


def lab_cluster(
    scheduler: str | None = None,
    *,
    profile: str | None = None,
    tls: bool | None = None,
    overrides: Mapping[str, Any] | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> LabCluster:
    """Connect to the running ``scheduler``, or start ``profile``'s cluster, for JupyterLab.

    Parameters
    ----------
    scheduler
        A running scheduler's address; ``None`` starts ``profile``'s cluster instead.
    profile, tls, overrides
        The cluster to start (as :func:`workbench.start_cluster` takes them).
    ca_file, cert_file, key_file
        TLS files for connecting to ``scheduler``.

    Returns
    -------
    LabCluster
        Its address, dashboard and TLS settings; close it when JupyterLab exits.
    """
    if scheduler is not None:
        security = _tls_files(ca_file, cert_file, key_file)
        client = connect(scheduler, security=security, set_as_default=False)
        sec = client.security if scheduler.startswith("tls://") else None
        try:
            dashboard = client.dashboard_link or ""
        except KeyError:  # a scheduler without a dashboard
            dashboard = ""
        return LabCluster(client, scheduler, dashboard, sec, started=False)
    cluster = start_cluster(profile, tls=tls, **dict(overrides or {}))
    return LabCluster(
        cluster, cluster.scheduler_address, cluster.dashboard_link, cluster.security, started=True
    )
