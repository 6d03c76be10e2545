"""The ``slurm`` deployment: :class:`dask_jobqueue.SLURMCluster` from a profile.

The scheduler runs here and the workers as Slurm jobs; with TLS on, the certificate files must
exist at the same paths on the compute nodes. dask-jobqueue is imported on use (the ``remote``
extra).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from distributed import Security

from workbench.clusters.engine import Started, _require
from workbench.clusters.local import _params, check_options
from workbench.clusters.profiles import Profile

__all__ = ["slurm_job_script", "slurm_options", "start_slurm"]


@cache
def slurm_options() -> frozenset[str]:
    """Options a ``slurm`` profile may set: SLURMCluster's, its job's and the base job's."""
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.slurm import SLURMJob

    return frozenset(
        _params(SLURMCluster, JobQueueCluster, SLURMJob, Job)
        - {
            "loop",
            "asynchronous",
            "security",
            "scheduler",
            "name",
            "config_name",
            "job_cls",
            "protocol",
            "dashboard_address",
            "host",
        }
    )


def _slurm_kwargs(profile: Profile, dashboard_address: str) -> dict[str, Any]:
    check_options(profile, slurm_options())
    opts = copy.deepcopy(profile.options)
    sched = dict(opts.get("scheduler_options") or {})
    sched.setdefault("dashboard_address", dashboard_address)
    opts["scheduler_options"] = sched
    return opts


def slurm_job_script(
    profile: Profile, security: Security | None, scheduler: str | None = None
) -> str:
    """Render the batch script one Slurm job of the profile runs, without starting anything.

    Parameters
    ----------
    profile
        A ``slurm`` profile.
    security
        Its TLS settings; the worker command then carries the certificate files.
    scheduler
        The scheduler address to write into the script (a placeholder by default).
    """
    _require("dask_jobqueue", "slurm", "dask-jobqueue")
    from dask_jobqueue.slurm import SLURMJob

    opts = _slurm_kwargs(profile, "127.0.0.1:0")
    opts.pop("scheduler_options", None)
    for key in ("n_workers", "scheduler_cls", "shared_temp_directory"):
        opts.pop(key, None)
    protocol = "tls://" if security is not None else "tcp://"
    address = scheduler or f"{protocol}SCHEDULER-HOST:8786"
    job = SLURMJob(
        scheduler=address, name="workbench", protocol=protocol, security=security, **opts
    )
    return str(job.job_script())


def start_slurm(profile: Profile, *, security: Security | None, dashboard_address: str) -> Started:
    """Start a :class:`dask_jobqueue.SLURMCluster` (the scheduler runs here; workers as jobs)."""
    _require("dask_jobqueue", "slurm", "dask-jobqueue")
    from dask_jobqueue import SLURMCluster

    kwargs = _slurm_kwargs(profile, dashboard_address)
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
    return SLURMCluster(**kwargs), []
