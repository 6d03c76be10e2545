"""Local deployments: distributed's ``LocalCluster`` and dask-cuda's ``LocalCUDACluster``.

Both are the engine's own classes, configured: the workbench picks a layout for the machine,
binds to localhost (with TLS by default where told to bind elsewhere), adds the idle timeout
and the workbench's training page to the dashboard (:mod:`workbench.dashboard`), and falls
back from an RMM pool to CuPy's asynchronous allocator where RMM is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import dask
from distributed import LocalCluster, Nanny, Security, Worker
from distributed.diagnostics.plugin import WorkerPlugin

from workbench import config
from workbench.clusters.guard import check_main_guard
from workbench.clusters.profiles import Profile
from workbench.dashboard import scheduler_options
from workbench.errors import GPUUnavailableError, MissingDependencyError, ProfileError
from workbench.hardware import detect_gpus, hardware

logger = logging.getLogger(__name__)

#: Cores per worker process on CPU machines. XGBoost's histogram method scales with threads
#: inside one process; more processes add allreduce traffic and copies. Measured on 2 cores only
#: (1 x 2 threads against 2 x 1: the same speed, see clusters/local-cpu.yaml and
#: benchmarks/cluster_layout.py); the 8 is a choice that no bigger machine has checked yet.
CORES_PER_WORKER = 8


def _params(*callables: Any) -> set[str]:
    """Names of the keyword parameters of classes (their ``__init__``) or functions."""
    names: set[str] = set()
    for obj in callables:
        target = obj.__init__ if inspect.isclass(obj) else obj
        for p in inspect.signature(target).parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                names.add(p.name)
    return names


#: Parameters that profiles set elsewhere (top-level keys) or that make no sense in YAML.
_NOT_OPTIONS = frozenset(
    {"loop", "start", "ip", "asynchronous", "security", "protocol", "dashboard_address"}
)
_MOVED = {
    "security": "the top-level 'security:' key (or start_cluster(tls=True))",
    "protocol": "the top-level 'security:' key (tls: true gives tls://)",
    "dashboard_address": "the top-level 'dashboard: {address: ...}' key",
}


@cache
def local_options() -> frozenset[str]:
    """Options a ``local`` profile may set: LocalCluster's, the Nanny's and the Worker's."""
    return frozenset(_params(LocalCluster, Nanny, Worker) - _NOT_OPTIONS)


@cache
def cuda_options() -> frozenset[str]:
    """Options a ``local-cuda`` profile may set: LocalCUDACluster's plus the local ones."""
    from dask_cuda import LocalCUDACluster

    return frozenset(_params(LocalCUDACluster) | local_options())


def cpu_layout(cores: int) -> tuple[int, int]:
    """Return ``(n_workers, threads_per_worker)`` for a CPU machine with ``cores`` cores.

    One worker per :data:`CORES_PER_WORKER` cores (at least one), the cores shared evenly.
    """
    workers = max(1, cores // CORES_PER_WORKER)
    return workers, max(1, cores // workers)


def check_options(profile: Profile, valid: frozenset[str]) -> None:
    """Raise :class:`ProfileError` for an option the deployment class does not take."""
    unknown = sorted(set(profile.options) - valid)
    if unknown:
        from difflib import get_close_matches

        name = unknown[0]
        close = get_close_matches(name, sorted(valid), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        if name in _MOVED:
            hint = f" Set it with {_MOVED[name]}."
        raise ProfileError(
            f"unknown option {name!r} for profile {profile.name!r} (kind {profile.kind}, "
            f"{profile.where('options.' + name)}).{hint} Valid options: {', '.join(sorted(valid))}"
        )


def has_dask_cuda() -> bool:
    """Whether dask-cuda is importable (without importing it)."""
    try:
        return importlib.util.find_spec("dask_cuda") is not None
    except (ImportError, ValueError):
        return False


def gpu_readiness() -> tuple[bool, str]:
    """Return whether a GPU cluster can start here, and the reason when it cannot."""
    gpus, note = detect_gpus()
    problems = []
    if not gpus:
        problems.append(f"no GPU is visible ({note})")
    if not has_dask_cuda():
        problems.append("dask-cuda is not installed (pip install 'workbench[gpu]')")
    return (not problems), "; ".join(problems)


def _check_count(profile: Profile, key: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ProfileError(
            f"{key}={value!r} in profile {profile.name!r} must be a whole number >= {minimum} "
            f"or 'auto' ({profile.where('options.' + key)})"
        )


def bind_host(options: dict[str, Any]) -> tuple[str, bool]:
    """Where a local cluster with these options listens, and whether it listens at all.

    The host is the ``host`` option, else ``workbench.cluster.host`` (127.0.0.1). An
    in-process cluster (``processes: false``) without a ``host`` option talks over
    ``inproc://`` unless TLS is on, so it does not listen for cluster traffic.

    Parameters
    ----------
    options
        The profile's options (``host``, ``processes``...), after ``start_cluster``'s own.

    Returns
    -------
    host, listens
        The address to bind to, and ``False`` for an in-process cluster that uses
        ``inproc://`` (then ``host`` only serves the workers' HTTP servers).
    """
    host = options.get("host")
    if host is None:
        return str(config.get("cluster.host")), options.get("processes", True) is not False
    return str(host), True


def _common_kwargs(
    opts: dict[str, Any],
    *,
    security: Security | None,
    dashboard_address: str,
) -> dict[str, Any]:
    host, listens = bind_host(opts)
    if security is None and not listens:
        # in-process clusters talk over inproc://, which has no host; without an address the
        # workers' HTTP servers (health, metrics) would listen on every interface
        opts.setdefault("worker_dashboard_address", f"{host}:0")
    else:
        opts["host"] = host
        if security is None and opts.get("processes") is False:
            opts["protocol"] = "tcp://"  # an in-process cluster given a host listens on it
    opts["dashboard_address"] = dashboard_address
    # the workbench's training page in the dashboard, and the plugin that feeds it
    opts["scheduler_kwargs"] = scheduler_options(opts.get("scheduler_kwargs"))
    if security is not None:
        opts["security"] = security
        opts["protocol"] = "tls://"
    opts.setdefault("silence_logs", logging.ERROR)
    return opts


_TRIM = "MALLOC_TRIM_THRESHOLD_"


def worker_environ() -> dict[str, Any]:
    """The environment the nannies give worker processes before they start.

    Dask's ``distributed.nanny.pre-spawn-environ`` (one thread for OpenMP, MKL and OpenBLAS),
    with ``MALLOC_TRIM_THRESHOLD_`` as ``workbench.cluster.malloc-trim-threshold`` says:
    ``None`` (the default) leaves it out, so glibc's malloc keeps its adaptive thresholds;
    a number sets it (Dask's own 65536 gives freed memory back to the OS at once). A fixed
    threshold makes every allocation above it a fresh ``mmap``, so the buffers XGBoost
    allocates every round are faulted in anew each round: 4-19x the page faults and 3-4% more
    time for the same rounds, with no difference in building the matrices
    (``benchmarks/malloc_trim.py``, 2-core machine, 2026-12-01). glibc's adaptive threshold
    keeps at most a few tens of MiB of freed memory per arena instead.

    Raises
    ------
    ValueError
        The setting is not ``None`` or a whole number of bytes >= 0.
    """
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default=None) or {})
    trim = config.get("cluster.malloc-trim-threshold")
    if trim is None:
        env.pop(_TRIM, None)
    elif isinstance(trim, bool) or not isinstance(trim, int) or trim < 0:
        raise ValueError(
            f"workbench.cluster.malloc-trim-threshold={trim!r}: use null (glibc's adaptive "
            "default) or a whole number of bytes, e.g. 65536 (Dask's setting)"
        )
    else:
        env[_TRIM] = trim
    return env


@contextlib.contextmanager
def spawning_workers() -> Iterator[None]:
    """Start worker processes with :func:`worker_environ`; leave this process's own as it was.

    A nanny writes its pre-spawn variables into this process's ``os.environ`` for the worker to
    inherit (Dask's way), and they stayed there: a notebook that imported XGBoost or NumPy
    after starting a cluster got ``OMP_NUM_THREADS=1``, one thread. They are put back when the
    cluster is up; each nanny keeps its own copy for the workers it restarts later (a restart
    writes them here again, Dask's way; by then ``wb.train`` has loaded XGBoost's OpenMP here,
    which reads them only when it loads).
    """
    env = worker_environ()
    saved = {k: os.environ.get(k) for k in {*env, _TRIM}}  # what the nannies will write
    if _TRIM not in env:
        os.environ.pop(_TRIM, None)  # inherited otherwise (from an earlier cluster, or the user)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_local(
    profile: Profile, *, security: Security | None, dashboard_address: str
) -> tuple[LocalCluster, list[WorkerPlugin]]:
    """Start a ``LocalCluster`` for a ``local`` profile.

    ``n_workers``/``threads_per_worker`` may be ``auto`` (or missing): the layout then comes
    from :func:`cpu_layout` for the cores this process may use.

    Returns
    -------
    cluster, plugins
        The deployment, and the worker plugins to register once a client is connected.
    """
    check_options(profile, local_options())
    opts = dict(profile.options)
    cores = hardware().cpu_count
    if opts.get("n_workers", "auto") == "auto":
        opts["n_workers"] = cpu_layout(cores)[0]
    _check_count(profile, "n_workers", opts["n_workers"], minimum=0)
    if opts.get("threads_per_worker", "auto") == "auto":
        opts["threads_per_worker"] = max(1, cores // max(1, opts["n_workers"]))
    _check_count(profile, "threads_per_worker", opts["threads_per_worker"], minimum=1)
    if opts.get("processes", True):
        check_main_guard("a LocalCluster with worker processes")
    kwargs = _common_kwargs(opts, security=security, dashboard_address=dashboard_address)
    with spawning_workers():
        return LocalCluster(**kwargs), []


class CuPyAsyncAllocator(WorkerPlugin):
    """Make CuPy allocate through CUDA's stream-ordered allocator (``cudaMallocAsync``).

    The fallback where an RMM pool was asked for and RMM is not installed: it still avoids a
    ``cudaMalloc`` per array, without the pool.
    """

    name = "workbench-cupy-async-allocator"

    def setup(self, worker: Worker) -> None:
        """Set CuPy's allocator on the worker's GPU."""
        import cupy

        cupy.cuda.set_allocator(cupy.cuda.MemoryAsyncPool().malloc)


def start_local_cuda(
    profile: Profile, *, security: Security | None, dashboard_address: str
) -> tuple[Any, list[WorkerPlugin]]:
    """Start a dask-cuda ``LocalCUDACluster`` for a ``local-cuda`` profile.

    Raises
    ------
    MissingDependencyError
        When dask-cuda is not installed (with the extra that installs it).
    GPUUnavailableError
        When no GPU is visible (with the reason NVML gave).
    """
    if not has_dask_cuda():
        gpus, note = detect_gpus()
        seen = f"{len(gpus)} GPU(s) visible" if gpus else f"also, no GPU is visible: {note}"
        raise MissingDependencyError(
            f"profile {profile.name!r} needs dask-cuda, which is not installed ({seen}). "
            "Install the GPU extra: pip install 'workbench[gpu]'; "
            "or use start_cluster('local-cpu')."
        )
    gpus, note = detect_gpus()
    if not gpus:
        raise GPUUnavailableError(
            f"profile {profile.name!r} needs an NVIDIA GPU, but none is visible: {note}. "
            "Use start_cluster() (it falls back to CPU) or start_cluster('local-cpu')."
        )
    check_options(profile, cuda_options())
    check_main_guard("a LocalCUDACluster")
    from dask_cuda import LocalCUDACluster

    opts = dict(profile.options)
    plugin = None
    wants_rmm = any(opts.get(k) for k in ("rmm_pool_size", "rmm_async", "rmm_managed_memory"))
    if wants_rmm and importlib.util.find_spec("rmm") is None:
        for key in [k for k in opts if k.startswith("rmm_")]:
            opts.pop(key)
        plugin = CuPyAsyncAllocator()
        logger.info(
            "RMM is not installed, so there is no RMM pool: each GPU worker uses CuPy's "
            "asynchronous allocator (cudaMallocAsync) instead. pip install rmm-cu12 for the pool."
        )
    kwargs = _common_kwargs(opts, security=security, dashboard_address=dashboard_address)
    with spawning_workers():
        cluster = LocalCUDACluster(**kwargs)
    return cluster, ([plugin] if plugin is not None else [])
