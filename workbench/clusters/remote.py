"""Remote deployments, each the engine's own class configured from a profile.

- ``ssh``: :class:`distributed.SSHCluster` (needs ``asyncssh``, the ``remote`` extra);
- ``slurm``: :class:`dask_jobqueue.SLURMCluster`;
- ``kubernetes``: the Dask operator's ``DaskCluster`` resource (``dask_kubernetes.operator``);
- ``gateway``: :class:`dask_gateway.GatewayCluster`.

Every remote profile wants TLS by default. Certificate files are named in the profile and must
exist at the same paths on the remote hosts (SSH, Slurm) or are shipped in a Kubernetes Secret;
Dask Gateway makes its own per-cluster certificates.

One module per deployment kind (:mod:`~workbench.clusters.ssh`, :mod:`~workbench.clusters.slurm`,
:mod:`~workbench.clusters.kubernetes`, :mod:`~workbench.clusters.gateway`), with what they share
in :mod:`~workbench.clusters.engine`; this module gathers their public functions for the
cluster starter and the ``workbench cluster render`` command.
"""

from __future__ import annotations

from workbench.clusters.engine import Started
from workbench.clusters.gateway import gateway_arguments, retire_gateway, start_gateway
from workbench.clusters.kubernetes import (
    kubernetes_manifests,
    kubernetes_options,
    start_kubernetes,
)
from workbench.clusters.slurm import slurm_job_script, slurm_options, start_slurm
from workbench.clusters.ssh import ssh_arguments, ssh_options, ssh_specs, start_ssh

__all__ = [
    "Started",
    "gateway_arguments",
    "kubernetes_manifests",
    "kubernetes_options",
    "retire_gateway",
    "slurm_job_script",
    "slurm_options",
    "ssh_arguments",
    "ssh_options",
    "ssh_specs",
    "start_gateway",
    "start_kubernetes",
    "start_slurm",
    "start_ssh",
]
