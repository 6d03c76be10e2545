"""The client a workbench call works with, and one look at the cluster behind it.

This module is part of the base layer: data and training call :func:`ensure_client` and
:func:`snapshot`, and it imports nothing from clusters, data or training. Where a call is given
``client=None`` and no Dask client is current, :func:`ensure_client` asks the default-client
factory that the public API layer registers with :func:`set_default_client_factory` when
``workbench`` is imported (:func:`workbench.api.default_client`: Dask's ``scheduler-address``
setting, else the default local cluster, said so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from distributed import Client, get_client

from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)

DefaultClientFactory = Callable[[], Client]

_default_factory: list[DefaultClientFactory] = []  # at most one: the public API layer's


def set_default_client_factory(factory: DefaultClientFactory | None) -> None:
    """Register what :func:`ensure_client` calls when there is no client; ``None`` removes it.

    Parameters
    ----------
    factory
        A function of no arguments returning a connected :class:`distributed.Client`. The
        public API layer (:mod:`workbench.api`) registers its default-cluster hook here on
        ``import workbench``.
    """
    if factory is not None and not callable(factory):
        raise TypeError(
            f"the default client factory must be callable or None, not {type(factory).__name__}"
        )
    _default_factory.clear()
    if factory is not None:
        _default_factory.append(factory)


def ensure_client(client: Client | None = None) -> Client:
    """Return ``client``, else the current Dask client, else the default factory's client.

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`, or ``None``.

    Returns
    -------
    distributed.Client
        ``client``; without one, :func:`distributed.get_client`'s current client; without
        that, the client of the factory registered with :func:`set_default_client_factory`
        (on ``import workbench``: Dask's ``scheduler-address`` setting, else the default local
        cluster, started and said so).

    Raises
    ------
    TypeError
        ``client`` is neither a :class:`distributed.Client` nor ``None``.
    WorkbenchError
        There is no client and no factory is registered.
    """
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(
                f"client must be a distributed.Client or None, not {type(client).__name__}"
            )
        return client
    try:
        return get_client()
    except ValueError:
        pass
    if not _default_factory:
        raise WorkbenchError(
            "no Dask client is connected and no default cluster is set up: pass client=..., "
            "or connect one first (workbench.connect or workbench.start_cluster)"
        )
    return _default_factory[0]()


def scheduler_workers(client: Client) -> dict[str, dict[str, Any]]:
    """The scheduler's current view of its workers (address -> info), asked directly.

    ``Client.scheduler_info(n_workers=-1)`` returns a cached copy that the client's periodic
    refresh (which carries no per-worker details) can replace between the fetch and the read,
    so it may come back without workers; this asks the scheduler itself, once.

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`.
    """
    scheduler: Any = client.scheduler
    identity = client.sync(scheduler.identity, n_workers=-1)
    return dict(identity.get("workers", {}))


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as the scheduler sees it (``memory_used``: its process's bytes, as reported).

    ``gpu_name`` and ``gpu_memory`` are what NVML reports on the worker: its first visible GPU.
    A worker sees a GPU this way on any machine that has one, whether or not it is a GPU
    worker (see :func:`workbench.data.placement.gpu_workers`).
    """

    name: str
    address: str
    host: str
    threads: int
    memory_limit: int
    gpu_name: str | None = None
    gpu_memory: int | None = None
    memory_used: int = 0
    gpu_memory_used: int = 0

    @property
    def has_gpu(self) -> bool:
        """Whether the worker reports a GPU."""
        return bool(self.gpu_name or self.gpu_memory)


def workers_from_info(workers: Mapping[str, Mapping[str, Any]]) -> list[WorkerInfo]:
    """The workers of a scheduler's ``workers`` mapping (address -> info), by host and name.

    Parameters
    ----------
    workers
        As :func:`scheduler_workers` or a deployment's ``scheduler_info["workers"]`` gives it.
    """
    out = []
    for addr, w in workers.items():
        # distributed reports a worker's GPU in two places: "gpu" (name, memory) only where
        # NVML was started in the worker's process before the worker (in-process workers),
        # and its system monitor's metrics ("gpu-memory-total", "gpu_memory_used") always,
        # so a worker process of its own (a Nanny's, dask-cuda's) has only the metrics
        gpu = w.get("gpu") or {}
        used = w.get("metrics") or {}
        gpu_memory = gpu.get("memory-total") or used.get("gpu-memory-total") or None
        gpu_used = (used.get("gpu") or {}).get("memory-used") or used.get("gpu_memory_used")
        out.append(
            WorkerInfo(
                name=str(w.get("name", addr)),
                address=addr,
                host=str(w.get("host", "")),
                threads=int(w.get("nthreads", 0)),
                memory_limit=int(w.get("memory_limit") or 0),
                gpu_name=gpu.get("name"),
                gpu_memory=None if gpu_memory is None else int(gpu_memory),
                memory_used=int(used.get("memory") or 0),
                gpu_memory_used=int(gpu_used or 0),
            )
        )
    return sorted(out, key=lambda w: (w.host, w.name))


@dataclass(frozen=True)
class ClusterSnapshot:
    """The cluster as one question to its scheduler found it: what one operation works with.

    Build it with :func:`snapshot` once at the start of an operation (a training, a load) and
    pass it down, instead of asking the scheduler again in each step.

    Attributes
    ----------
    address
        The scheduler's address (``tcp://``, ``tls://``, ``gateway://``, ``inproc://``).
    workers
        The workers, sorted by host and name.
    """

    address: str
    workers: tuple[WorkerInfo, ...]

    @property
    def addresses(self) -> list[str]:
        """The workers' addresses, sorted."""
        return sorted(w.address for w in self.workers)

    @property
    def n_workers(self) -> int:
        """How many workers there are."""
        return len(self.workers)

    @property
    def hosts(self) -> list[str]:
        """The distinct hosts the workers run on, sorted."""
        return sorted({w.host for w in self.workers})

    @property
    def threads(self) -> int:
        """The workers' threads, all together."""
        return sum(w.threads for w in self.workers)

    @property
    def memory(self) -> int:
        """The workers' memory limits in bytes, all together (0 where unlimited)."""
        return sum(w.memory_limit for w in self.workers)

    @property
    def gpus(self) -> int:
        """How many workers report a GPU (see :attr:`WorkerInfo.has_gpu`)."""
        return sum(1 for w in self.workers if w.has_gpu)

    @property
    def all_gpu(self) -> bool:
        """Whether there are workers and every one reports a GPU."""
        return bool(self.workers) and self.gpus == len(self.workers)

    @property
    def tls(self) -> bool:
        """Whether the scheduler's traffic is encrypted (``tls://``, or a gateway's proxy)."""
        return self.address.startswith(("tls://", "gateway://"))


def snapshot(client: Client) -> ClusterSnapshot:
    """Ask ``client``'s scheduler once for its workers; return what it said.

    Parameters
    ----------
    client
        A connected :class:`distributed.Client`.

    Returns
    -------
    ClusterSnapshot
        Workers, hosts, threads, memory, GPUs and TLS, from one ``identity`` call.
    """
    scheduler: Any = client.scheduler
    workers = workers_from_info(scheduler_workers(client))
    return ClusterSnapshot(address=str(scheduler.address), workers=tuple(workers))
