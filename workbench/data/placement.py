"""Putting a dataset on the workers: memory check, even spread, arrays on CPU or GPU."""

from __future__ import annotations

import importlib.util
import logging
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.utils import format_bytes
from distributed import wait
from distributed.comm import get_address_host

from workbench import config
from workbench._client import (
    ClusterSnapshot,
    ensure_client,
    scheduler_workers,
    snapshot,
    workers_from_info,
)
from workbench.data.encode import encode_frame, encode_piece, fill_pending
from workbench.data.parquet import ReadPlan
from workbench.errors import GPUUnavailableError, InsufficientMemoryError

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


class Table(Protocol):
    """What this module reads of a :class:`~workbench.data.dataset.Dataset`."""

    @property
    def frame(self) -> dd.DataFrame: ...  # noqa: D102
    @property
    def features(self) -> dict[str, str]: ...  # noqa: D102
    @property
    def target(self) -> str | None: ...  # noqa: D102
    @property
    def task(self) -> str | None: ...  # noqa: D102
    @property
    def categories(self) -> dict[str, list[Any]]: ...  # noqa: D102
    @property
    def source(self) -> str: ...  # noqa: D102
    @property
    def rows(self) -> int | None: ...  # noqa: D102
    @property
    def nbytes(self) -> int | None: ...  # noqa: D102
    @property
    def plan(self) -> ReadPlan | None: ...  # noqa: D102
    @property
    def npartitions(self) -> int: ...  # noqa: D102
    @property
    def persisted(self) -> bool: ...  # noqa: D102


@dataclass(frozen=True)
class Placement:
    """Where a persisted dataset's partitions live: rows and bytes per worker."""

    workers: dict[str, dict[str, int]]  # address -> {"partitions", "rows", "bytes"}

    @property
    def empty_workers(self) -> list[str]:
        """Workers that hold no partition."""
        return [w for w, v in self.workers.items() if v["partitions"] == 0]

    def to_frame(self) -> pd.DataFrame:
        """A table of partitions, rows and bytes per worker."""
        return pd.DataFrame.from_dict(self.workers, orient="index").rename_axis("worker")


class Persisted(NamedTuple):
    """A frame over persisted partitions, where they are, and their rows and bytes."""

    frame: dd.DataFrame
    placement: Placement
    rows: int
    nbytes: int


def estimate_nbytes(ds: Table) -> int:
    """Estimate the in-memory size of ``ds``.

    The Parquet metadata's uncompressed size where known, else one partition measured and
    scaled to the rows (or the partitions).
    """
    if ds.nbytes:
        return int(ds.nbytes)
    first = ds.frame.get_partition(0).compute()
    per_row = float(first.memory_usage(deep=True).sum()) / max(1, len(first))
    rows = ds.rows if ds.rows is not None else len(first) * ds.npartitions
    return int(per_row * rows)


def free_memory(
    client: Client,
    device: str = "cpu",
    workers: dict[str, dict[str, Any]] | None = None,
    *,
    cluster: ClusterSnapshot | None = None,
) -> tuple[int, int]:
    """Return ``(free bytes, workers)`` the cluster can hold data in before spilling.

    CPU: each worker's ``memory_limit`` times ``workbench.data.memory-fraction``, less what
    its process already uses. GPU: each worker's device memory times the same fraction.
    ``workers`` is the scheduler's view of them (address -> info), ``cluster`` an operation's
    :func:`~workbench._client.snapshot`; the scheduler is asked here if neither is given.
    """
    fraction = float(config.get("data.memory-fraction"))
    if cluster is not None:
        infos = list(cluster.workers)
    else:
        infos = workers_from_info(scheduler_workers(client) if workers is None else workers)
    free = 0
    for w in infos:
        if device == "gpu":
            total, used = int(w.gpu_memory or 0), w.gpu_memory_used
        else:
            total, used = w.memory_limit, w.memory_used
        free += max(0, int(total * fraction) - used)
    return free, len(infos)


def check_fits(ds: Table, client: Client, device: str = "cpu") -> int:
    """Raise :class:`InsufficientMemoryError` when ``ds`` would not fit; return its estimate."""
    need = estimate_nbytes(ds)
    _check_free(need, ds.source, client, device)
    return need


def _check_free(
    need: int,
    source: str,
    client: Client,
    device: str,
    cluster: ClusterSnapshot | None = None,
) -> None:
    free, n = free_memory(client, device, cluster=cluster)
    if n == 0:
        raise InsufficientMemoryError("the cluster has no workers; scale it up before persisting")
    if need > free:
        where = "GPU memory" if device == "gpu" else "memory"
        raise InsufficientMemoryError(
            f"{source!r} needs about {format_bytes(need)} in {where}, but the {n} worker(s) "
            f"have {format_bytes(free)} free for data ({config.get('data.memory-fraction'):.0%} "
            "of their limits, less what they use). Add workers or memory, load fewer columns "
            "(columns=[...]), filter rows (filters=[...]), or train on a split."
        )


def _placement(client: Client, futures: list[Any]) -> Placement:
    keys = [f.key for f in futures]
    who = client.who_has(futures)
    nbytes = client.nbytes(keys, summary=False)
    rows = client.gather(client.map(len, futures, pure=False))
    table: dict[str, dict[str, int]] = {
        w: {"partitions": 0, "rows": 0, "bytes": 0} for w in scheduler_workers(client)
    }
    for key, n in zip(keys, rows, strict=True):
        for w in who.get(key, ())[:1]:
            entry = table.setdefault(w, {"partitions": 0, "rows": 0, "bytes": 0})
            entry["partitions"] += 1
            entry["rows"] += int(n)
            entry["bytes"] += int(nbytes.get(key, 0))
    return Placement(dict(sorted(table.items())))


def _persist_round_robin(client: Client, frame: Any) -> tuple[Any, list[Any]]:
    """Persist each partition on the next worker in turn, so that every worker holds some.

    Dask would otherwise place partitions where their inputs are or wherever a thread is
    free first, which on a fresh cluster can leave a worker with none; XGBoost then trains
    without that worker's threads (or refuses to start). The choice is a preference, not a
    pin: if that worker is lost, the partition is computed elsewhere.
    """
    workers: list[str | None] = list(sorted(scheduler_workers(client)))
    parts = frame.to_delayed()  # optimised: reading few columns of small files can fuse parts
    futures = _spread(
        len(parts),
        workers,
        lambda mine, where: client.compute(
            [parts[i] for i in mine], workers=where, allow_other_workers=True
        ),
    )
    wait(futures)
    divisions = frame.divisions if len(parts) == frame.npartitions else None
    persisted = dd.from_delayed(futures, meta=frame._meta, divisions=divisions, verify_meta=False)
    return persisted, futures


def _spread(
    n: int,
    workers: list[str | None],
    submit: Callable[[list[int], list[str] | None], list[Any]],
) -> list[Any]:
    """Futures of items ``0..n-1`` placed round-robin over ``workers``, one call per worker.

    ``submit(indices, where)`` makes the futures of those items, preferring the workers
    ``where`` (``None`` for anywhere: a worker ``None`` leaves the choice to Dask).
    """
    out: list[Any] = [None] * n
    for w, worker in enumerate(workers):
        mine = list(range(w, n, len(workers)))
        for i, future in zip(mine, submit(mine, None if worker is None else [worker]), strict=True):
            out[i] = future
    return out


def persist_partitions(ds: Table, client: Any = None, *, device: str = "cpu") -> Persisted | None:
    """Load ``ds`` into the workers' memory, spread over every worker, after a memory check.

    Parameters
    ----------
    ds
        The dataset.
    client
        The Dask client; the current one by default.
    device
        ``cpu`` checks host memory; ``gpu`` checks GPU memory (for data bound for CuPy), on
        GPU workers only (see :func:`gpu_workers`); ``auto`` is ``gpu`` where every worker
        is a GPU worker, else ``cpu``.

    Returns
    -------
    Persisted or None
        The frame over persisted partitions, their ``placement`` (rows and bytes per
        worker), rows and bytes; ``None`` when ``ds`` is persisted already.

    Raises
    ------
    ValueError
        ``device`` is not ``auto``, ``cpu`` or ``gpu``.
    GPUUnavailableError
        ``device="gpu"`` where the workers are not GPU workers; nothing is loaded then.
    InsufficientMemoryError
        When the estimate exceeds the free memory; nothing is loaded then.
    """
    check_device(device)
    client = ensure_client(client)
    where = resolve_device(client, device)  # a refusal whether or not ds is persisted
    if ds.persisted:
        return None
    with client.as_current():
        need = check_fits(ds, client, where)
        frame, futures = _persist_round_robin(client, ds.frame)
        placement = _placement(client, futures)
    rows = sum(v["rows"] for v in placement.workers.values())
    nbytes = sum(v["bytes"] for v in placement.workers.values()) or need
    return Persisted(frame, placement, rows, nbytes)


def _size_and_levels(block: tuple[Any, ...]) -> tuple[int, dict[str, list[Any]], Any]:
    """The rows, the levels found and the target's classes of an :func:`encode_frame` result."""
    return block[2], block[3], block[5]


def _fill_pending_of(block: tuple[Any, ...], levels: dict[str, list[Any]], gpu: bool) -> Any:
    """:func:`fill_pending` of one :func:`encode_frame` result."""
    return fill_pending(block[0], block[4], levels, gpu)


class WorkerGPU(NamedTuple):
    """What one worker process says of its GPU (:func:`_gpu_facts`, run on each worker).

    Attributes
    ----------
    visible
        Its ``CUDA_VISIBLE_DEVICES``, or ``None`` where it is not set.
    resource
        Whether it declares a ``GPU`` resource (``resources={"GPU": 1}``, ``--resources GPU=1``).
    cupy
        Whether CuPy is installed there.
    """

    visible: str | None
    resource: bool
    cupy: bool


def _gpu_facts(dask_worker: Any) -> WorkerGPU:
    """The :class:`WorkerGPU` of the worker it runs on (with ``Client.run``)."""
    resources = dict(getattr(dask_worker.state, "total_resources", {}) or {})
    return WorkerGPU(
        visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
        resource=any(str(k).lower() == "gpu" and v > 0 for k, v in resources.items()),
        cupy=importlib.util.find_spec("cupy") is not None,
    )


def gpu_workers(cluster: ClusterSnapshot, facts: Mapping[str, WorkerGPU]) -> str | None:
    """Why the workers are not GPU workers, or ``None`` when every one is.

    A GPU worker has a GPU of its own and CuPy: NVML reports a GPU on it (Dask's worker
    metrics), the device was given to it explicitly (``CUDA_VISIBLE_DEVICES`` set in its
    process, as dask-cuda's ``LocalCUDACluster`` and ``dask cuda worker`` do for each worker
    and job schedulers do for each job, or a declared ``GPU`` resource), no other worker on its
    host uses the same device (the first in its ``CUDA_VISIBLE_DEVICES``, else device 0), and
    CuPy is installed there. A plain ``LocalCluster`` on a GPU machine has none: its workers
    see every GPU and would all work on the first one.

    Parameters
    ----------
    cluster
        The operation's :func:`~workbench._client.snapshot` (which workers report a GPU).
    facts
        Each worker's :class:`WorkerGPU` (worker address -> facts).
    """
    if not cluster.workers:
        return "the cluster has no workers"
    no_gpu = [w.address for w in cluster.workers if not w.has_gpu]
    if len(no_gpu) == cluster.n_workers:
        return "no worker reports a GPU"
    if no_gpu:
        return f"worker(s) {', '.join(no_gpu)} report no GPU"
    unknown = [w.address for w in cluster.workers if w.address not in facts]
    if unknown:  # a worker that joined after the snapshot was not asked
        return f"worker(s) {', '.join(unknown)} could not be asked about their GPU"
    unpinned = [a for a, f in facts.items() if f.visible is None and not f.resource]
    if unpinned:
        return (
            f"worker(s) {', '.join(sorted(unpinned))} see the machine's GPUs but were not given "
            "one of their own (CUDA_VISIBLE_DEVICES is not set for them and they declare no GPU "
            "resource), as in a plain LocalCluster; several of them would share the first GPU"
        )
    owners: dict[tuple[str, str], list[str]] = {}
    for addr, f in sorted(facts.items()):
        first = (f.visible or "0").split(",")[0].strip() or "none"
        owners.setdefault((get_address_host(addr), first), []).append(addr)
    shared = {key: addrs for key, addrs in owners.items() if len(addrs) > 1}
    if shared:
        (host, device), addrs = next(iter(shared.items()))
        return (
            f"workers {', '.join(addrs)} on {host} all use GPU {device} "
            f"(CUDA_VISIBLE_DEVICES={facts[addrs[0]].visible!r}); each GPU worker needs a device "
            "of its own"
        )
    no_cupy = sorted(a for a, f in facts.items() if not f.cupy)
    if no_cupy:
        return f"CuPy is not installed on worker(s) {', '.join(no_cupy)}"
    return None


def table_arrays(
    ds: Table, *, device: str = "auto", dtype: Any = "float32", client: Any = None
) -> tuple[da.Array, da.Array | None]:
    """Return ``(X, y)``: Dask arrays with known chunks, persisted on the workers.

    Parameters
    ----------
    ds
        The dataset (persisted first if it is not).
    device
        ``cpu`` for NumPy chunks, ``gpu`` for CuPy chunks on the workers' GPUs, ``auto`` for
        ``gpu`` where every worker is a GPU worker (:func:`gpu_workers`: a GPU of its own, as
        dask-cuda gives each worker, and CuPy), else ``cpu``: a plain ``LocalCluster`` on a
        machine with GPUs stays on NumPy.
    dtype
        The dtype of ``X`` (categorical columns become their integer codes, missing as NaN).
    client
        The Dask client; the current one by default.

    Raises
    ------
    GPUUnavailableError
        ``device="gpu"`` where the workers are not GPU workers (the reason and the fix said).
    """
    check_device(device)
    np_dtype = check_dtype(dtype)
    client = ensure_client(client)
    device = resolve_device(client, device)
    X, y, _ = arrays_and_levels(ds, device=device, dtype=np_dtype, client=client)
    return X, y


def check_device(device: Any) -> None:
    """Refuse a ``device`` other than ``auto``, ``cpu`` or ``gpu``."""
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"device={device!r}: use 'auto', 'cpu' or 'gpu'")


def check_dtype(dtype: Any) -> np.dtype[Any]:
    """``dtype`` as a floating NumPy dtype, or a clear error."""
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"dtype={dtype!r} is not a NumPy dtype; use 'float32' or 'float64'"
        ) from None
    if np_dtype.kind != "f":
        raise ValueError(f"dtype={dtype!r}: X needs a floating dtype (float32 or float64) for NaN")
    return np_dtype


def resolve_device(client: Client, device: str, cluster: ClusterSnapshot | None = None) -> str:
    """``cpu`` or ``gpu`` for ``device`` (``auto``, ``cpu``, ``gpu``) on this cluster.

    ``auto`` is ``gpu`` where every worker is a GPU worker (:func:`gpu_workers`: a GPU of its
    own, given to it by dask-cuda, a job scheduler or a ``GPU`` resource, and CuPy), else
    ``cpu``: a plain ``LocalCluster`` stays on NumPy even on a machine with GPUs. ``gpu``
    where they are not raises :class:`GPUUnavailableError`, with the reason and the fix.
    ``cluster``: the operation's :func:`~workbench._client.snapshot`, else the scheduler is
    asked. The workers are asked once (``Client.run``), and only for ``auto`` and ``gpu`` on
    a cluster whose workers all report a GPU.
    """
    check_device(device)
    if device == "cpu":
        return device
    known = cluster if cluster is not None else snapshot(client)
    facts: dict[str, WorkerGPU] = {}
    if known.all_gpu:  # only then is there something to ask the workers
        facts = {
            addr: WorkerGPU(*f)
            for addr, f in client.run(_gpu_facts, workers=known.addresses).items()
        }
    why = gpu_workers(known, facts)
    if device == "gpu" and why is not None:
        raise GPUUnavailableError(
            f"device='gpu' but {why}. Start GPU workers, one per GPU (wb.start_cluster("
            "'local-gpu'), dask-cuda, pip install 'workbench[gpu]'), or give each worker its "
            "GPU (CUDA_VISIBLE_DEVICES, resources={'GPU': 1}); or use device='cpu'."
        )
    return "cpu" if why is not None else "gpu"


def arrays_and_levels(
    ds: Table,
    *,
    device: str,
    dtype: np.dtype[Any],
    client: Client,
    cluster: ClusterSnapshot | None = None,
) -> tuple[Any, Any, dict[str, list[Any]]]:
    """:func:`table_arrays` for a checked ``device`` and ``dtype``, with the categorical levels.

    The levels are those ``X`` is encoded with: ``ds.categories``, and for categorical columns
    without known levels (loaded with ``check=False``), the levels found while encoding.
    ``cluster`` is the operation's :func:`~workbench._client.snapshot` (its workers and their
    memory); without it the scheduler is asked.
    """
    X, y, levels, _ = encoded_arrays(ds, device=device, dtype=dtype, client=client, cluster=cluster)
    return X, y, levels


def encoded_arrays(
    ds: Table,
    *,
    device: str,
    dtype: np.dtype[Any],
    client: Client,
    cluster: ClusterSnapshot | None = None,
) -> tuple[Any, Any, dict[str, list[Any]], np.ndarray | None]:
    """:func:`arrays_and_levels` with the classes (sorted distinct values) of ``y``'s rows.

    Found by the tasks that encode the blocks (no pass of its own); ``None`` for regression.
    """
    with client.as_current():
        return _to_arrays(ds, client, device, dtype, cluster)


def _to_arrays(
    ds: Table,
    client: Client,
    device: str,
    np_dtype: np.dtype[Any],
    cluster: ClusterSnapshot | None = None,
) -> tuple[Any, Any, dict[str, list[Any]], np.ndarray | None]:
    """Read, encode and keep each partition in one task, spread over the workers.

    One pass: the frame is not persisted first (that would hold the data twice), each task
    reads its partition and returns the X and y blocks, placed round-robin on the workers.
    Categorical features without common levels (loaded with check=False) get them from the
    values the tasks found; a second task recodes them in the partitions that lack some of
    them. Without that, each partition would encode its own set of values: the same value
    could get different codes in different files, a silent wrong answer.
    """
    features = list(ds.features)
    pending = [c for c, k in ds.features.items() if k == "categorical" and c not in ds.categories]
    rows = ds.rows
    # round-robin over the workers, a call for each; persisted partitions stay where they are
    workers: list[str | None] = [None]
    if not ds.persisted:
        need = estimate_nbytes(ds)
        if rows:  # X and y as they will be held, not the frame they come from
            need = rows * (len(features) * np_dtype.itemsize + 8)
        known = cluster if cluster is not None else snapshot(client)
        _check_free(need, ds.source, client, device, known)
        workers = list(known.addresses)
    gpu = device == "gpu"
    distinct = ds.target is not None and ds.task != "regression"
    plan = ds.plan
    blocks: list[Any]
    if plan is not None and plan.describes(ds.frame) and not ds.persisted:
        # straight from Arrow, no pandas frame; the tasks get the reader and the splits, not
        # the whole plan (its pieces would travel with every task)
        blocks = _spread(
            len(plan.pieces),
            workers,
            lambda mine, where: client.map(
                encode_piece,
                [plan.pieces[i] for i in mine],
                mine,
                reader=plan.reader,
                splits=plan.splits,
                features=features,
                categories=ds.categories,
                pending=pending,
                target=ds.target,
                dtype=np_dtype,
                gpu=gpu,
                distinct=distinct,
                workers=where,
                allow_other_workers=True,
                pure=False,
            ),
        )
    else:
        encoded = ds.frame.map_partitions(  # fused with the read: one task per partition
            encode_frame,
            features,
            ds.categories,
            pending,
            ds.target,
            np_dtype,
            gpu,
            distinct,
            meta=("encoded", object),  # a tuple (X, y, rows, found, codes, classes) each
            enforce_metadata=False,
            align_dataframes=False,
        )
        parts = encoded.to_delayed()
        blocks = _spread(
            len(parts),
            workers,
            lambda mine, where: client.compute(
                [parts[i] for i in mine], workers=where, allow_other_workers=True
            ),
        )
    # X, y and the small parts taken out where each tuple is (no copy): 3 tasks, not 5
    x_parts = client.map(operator.getitem, blocks, [0] * len(blocks), pure=False)
    y_parts = client.map(operator.getitem, blocks, [1] * len(blocks), pure=False)
    sizes = client.gather(client.map(_size_and_levels, blocks, pure=False))
    lengths, found, distinct_y = zip(*sizes, strict=True)
    classes = np.unique(np.concatenate(distinct_y)) if distinct else None
    levels: dict[str, list[Any]] = {}
    if pending:
        levels = {
            c: sorted(
                pd.unique(np.asarray([v for f in found for v in f[c]], object)).tolist(), key=str
            )
            for c in pending
        }
        x_parts = [
            client.submit(_fill_pending_of, b, levels, gpu, pure=False)
            if gpu or any(f[c] != levels[c] for c in pending)
            else x
            for b, x, f in zip(blocks, x_parts, found, strict=True)
        ]
    wait(x_parts + y_parts)
    del blocks  # the X and y blocks stay; the rest goes
    meta_x = meta_y = None
    if gpu:
        import cupy

        meta_x, meta_y = cupy.empty((0, 0), dtype=np_dtype), cupy.empty((0,))
    X = da.concatenate(
        [
            da.from_delayed(f, shape=(n, len(features)), dtype=np_dtype, meta=meta_x)
            for f, n in zip(x_parts, lengths, strict=True)
        ],
        axis=0,
    )
    y = None
    if ds.target is not None:
        y_dtype = ds.frame.dtypes[ds.target]
        y = da.concatenate(
            [
                da.from_delayed(f, shape=(n,), dtype=y_dtype, meta=meta_y)
                for f, n in zip(y_parts, lengths, strict=True)
            ],
            axis=0,
        )
    return X, y, {**ds.categories, **levels}, classes
