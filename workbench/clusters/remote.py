"""Remote deployments, each the engine's own class configured from a profile.

- ``ssh``: :class:`distributed.SSHCluster` (needs ``asyncssh``, the ``remote`` extra);
- ``slurm``: :class:`dask_jobqueue.SLURMCluster`;
- ``kubernetes``: the Dask operator's ``DaskCluster`` resource (``dask_kubernetes.operator``);
- ``gateway``: :class:`dask_gateway.GatewayCluster`.

Every remote profile wants TLS by default. Certificate files are named in the profile and must
exist at the same paths on the remote hosts (SSH, Slurm) or are shipped in a Kubernetes Secret;
Dask Gateway makes its own per-cluster certificates.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

from distributed import Security
from distributed.diagnostics.plugin import WorkerPlugin

from workbench import config
from workbench._redact import redact, shown
from workbench.clusters.local import _params, check_options
from workbench.clusters.profiles import Profile
from workbench.clusters.security import is_loopback
from workbench.errors import ClusterConnectionError, MissingDependencyError, ProfileError

logger = logging.getLogger(__name__)

Started = tuple[Any, list[WorkerPlugin]]


def _require(module: str, kind: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"the {kind} profile needs {package}, which is not installed ({err}). "
            "Install the remote extra: pip install 'workbench[remote]'"
        ) from None


def _tls_files(security: Security | None) -> dict[str, str] | None:
    if security is None:
        return None
    sec: Any = security  # Security sets its tls_* attributes dynamically
    return {
        "ca": str(sec.tls_ca_file),
        "cert": str(sec.tls_scheduler_cert),
        "key": str(sec.tls_scheduler_key),
    }


# --- SSH -------------------------------------------------------------------------------------
@cache
def ssh_options() -> frozenset[str]:
    """Options an ``ssh`` profile may set: those of :class:`distributed.SSHCluster`."""
    from distributed.deploy.ssh import SSHCluster

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
    from distributed.deploy.ssh import Scheduler as SSHScheduler
    from distributed.deploy.ssh import Worker as SSHWorker

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
    from distributed import SpecCluster

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


# --- Slurm -----------------------------------------------------------------------------------
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


# --- Kubernetes ------------------------------------------------------------------------------
_K8S_EXTRA = {"namespace", "tls_secret", "tls_mount_path"}


@cache
def kubernetes_options() -> frozenset[str]:
    """Options a ``kubernetes`` profile may set: ``make_cluster_spec``'s and a few of ours."""
    from dask_kubernetes.operator import make_cluster_spec

    return frozenset(_params(make_cluster_spec) | _K8S_EXTRA)


def kubernetes_manifests(
    profile: Profile, security: Security | None, *, include_secret: bool = True
) -> list[dict[str, Any]]:
    """Render the Kubernetes resources of a ``kubernetes`` profile, without a cluster.

    Returns a ``DaskCluster`` resource for the Dask operator and, with TLS on, a ``Secret``
    holding the certificate files, mounted read-only into the scheduler and worker pods; the
    scheduler then listens on ``tls://`` and refuses plain connections; adaptive bounds add a
    ``DaskAutoscaler``. Apply them with ``kubectl apply -f`` (see ``workbench cluster render``).
    """
    _require("dask_kubernetes.operator", "kubernetes", "dask-kubernetes")
    from dask_kubernetes.operator import make_cluster_spec

    check_options(profile, kubernetes_options())
    opts = copy.deepcopy(profile.options)
    namespace = opts.pop("namespace", None)
    secret = opts.pop("tls_secret", None) or f"{opts.get('name', 'workbench')}-tls"
    mount = opts.pop("tls_mount_path", None) or "/etc/dask/tls"
    opts.setdefault("name", "workbench")
    opts.setdefault("worker_command", ["dask", "worker"])
    if profile.idle_timeout is not None:
        from dask.utils import parse_timedelta

        opts["idle_timeout"] = int(parse_timedelta(profile.idle_timeout, default="seconds") or 0)
    # json round trip: make_cluster_spec shares one resources dict between scheduler and workers
    spec: dict[str, Any] = json.loads(json.dumps(make_cluster_spec(**opts)))
    if namespace:
        spec["metadata"]["namespace"] = namespace
    sched = spec["spec"]["scheduler"]["spec"]
    sched_args = list(sched["containers"][0]["args"])
    if sched_args[:1] == ["dask-scheduler"]:  # the console script is gone from distributed 2026
        sched_args = ["dask", "scheduler", *sched_args[1:]]
    sched["containers"][0]["args"] = sched_args
    worker = spec["spec"]["worker"]["spec"]
    manifests: list[dict[str, Any]] = []
    if security is not None:
        name = spec["metadata"]["name"]
        host = (
            f"{name}-scheduler.{namespace}.svc.cluster.local" if namespace else f"{name}-scheduler"
        )
        env = {
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": f"{mount}/ca.pem",
            "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__CERT": f"{mount}/cert.pem",
            "DASK_DISTRIBUTED__COMM__TLS__SCHEDULER__KEY": f"{mount}/key.pem",
            "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT": f"{mount}/cert.pem",
            "DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY": f"{mount}/key.pem",
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": f"{mount}/cert.pem",
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": f"{mount}/key.pem",
            "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
            "DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME": "tls",
        }
        volume = {"name": "dask-tls", "secret": {"secretName": secret, "defaultMode": 0o440}}
        mount_spec = {"name": "dask-tls", "mountPath": mount, "readOnly": True}
        # The operator's controller asks the scheduler's HTTP API before trying plain tcp://
        # (which a TLS scheduler refuses) for scaling decisions, so serve that API.
        import dask

        routes = list(dask.config.get("distributed.scheduler.http.routes"))
        routes += (
            [] if "distributed.http.scheduler.api" in routes else ["distributed.http.scheduler.api"]
        )
        sched_env = {"DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES": json.dumps(routes)}
        worker_env = {"DASK_SCHEDULER_ADDRESS": f"tls://{host}:8786"}
        for pod, extra in ((sched, sched_env), (worker, worker_env)):
            pod.setdefault("volumes", []).append(volume)
            for c in pod["containers"]:
                c.setdefault("volumeMounts", []).append(mount_spec)
                wanted = {**env, **extra}
                c["env"] = [e for e in c.get("env") or [] if e["name"] not in wanted] + [
                    {"name": k, "value": v} for k, v in wanted.items()
                ]
        sched["containers"][0]["args"] = [*sched_args, "--protocol", "tls"]
        tls = _tls_files(security) or {}
        files = {"ca.pem": tls["ca"], "cert.pem": tls["cert"], "key.pem": tls["key"]}
        meta: dict[str, Any] = {"name": secret, **({"namespace": namespace} if namespace else {})}
        if include_secret:
            manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": meta,
                    "data": {
                        k: base64.b64encode(Path(str(v)).read_bytes()).decode()
                        for k, v in files.items()
                    },
                }
            )
    manifests.append(spec)
    if profile.adapt:
        meta = {"name": spec["metadata"]["name"], **({"namespace": namespace} if namespace else {})}
        manifests.append(
            {
                "apiVersion": "kubernetes.dask.org/v1",
                "kind": "DaskAutoscaler",
                "metadata": meta,
                "spec": {
                    "cluster": spec["metadata"]["name"],
                    "minimum": profile.adapt.get("minimum", 0),
                    "maximum": profile.adapt.get("maximum", profile.adapt.get("minimum", 1)),
                },
            }
        )
    return manifests


def start_kubernetes(
    profile: Profile, *, security: Security | None, dashboard_address: str
) -> Started:
    """Start a cluster through the Dask operator's ``KubeCluster`` (TLS off only; see below).

    dask-kubernetes' ``KubeCluster`` hard-codes ``tcp://`` for the scheduler it waits for, so it
    cannot start a TLS cluster. With TLS on, render the manifests instead
    (``workbench cluster render kubernetes``), apply them, and :func:`workbench.connect`.
    """
    manifests = kubernetes_manifests(profile, security)  # checks options and certificates
    if security is not None:
        raise ProfileError(
            f"profile {profile.name!r} asks for TLS, but dask-kubernetes' KubeCluster only talks "
            "tcp:// to the scheduler it starts. Render TLS manifests with "
            f"`workbench cluster render {profile.name} > cluster.yaml`, `kubectl apply -f "
            "cluster.yaml`, then wb.connect('tls://<name>-scheduler:8786', security=...); "
            "or set security.tls: false for a cluster on a trusted network."
        )
    from dask_kubernetes.operator import KubeCluster

    spec = manifests[0]  # without TLS: the DaskCluster first, no Secret
    namespace = profile.options.get("namespace")
    return KubeCluster(
        custom_cluster_spec=spec, **({"namespace": namespace} if namespace else {})
    ), []


# --- Dask Gateway ----------------------------------------------------------------------------
_GATEWAY_KEYS = {
    "address",
    "proxy_address",
    "public_address",
    "auth",
    "username",
    "password",
    "password_env",
    "cluster_options",
    "n_workers",
}


def gateway_arguments(profile: Profile, tls: bool) -> dict[str, Any]:
    """Return the keyword arguments of :class:`dask_gateway.GatewayCluster` from a profile."""
    from difflib import get_close_matches

    unknown = sorted(set(profile.options) - _GATEWAY_KEYS)
    if unknown:
        close = get_close_matches(unknown[0], sorted(_GATEWAY_KEYS), n=2)
        raise ProfileError(
            f"unknown option {unknown[0]!r} for profile {profile.name!r} (kind gateway"
            f"{', did you mean ' + ', '.join(close) + '?' if close else ''}). "
            f"Valid options: {', '.join(sorted(_GATEWAY_KEYS))}"
        )
    opts = dict(profile.options)
    address = opts.get("address")
    if not address or not str(address).startswith(("http://", "https://")):
        raise ProfileError(
            f"profile {profile.name!r} needs options.address, the gateway's http(s):// URL "
            f"({profile.where('options.address')}); got {redact(address)!r}"
        )
    if tls and str(address).startswith("http://") and not is_loopback(str(address)):
        raise ProfileError(
            f"{shown(address)} is plain http, which would send the gateway password in clear. "
            "Use the gateway's https:// address, or set security.tls: false if the network is "
            "trusted."
        )
    from dask_gateway import BasicAuth

    auth: Any = opts.get("auth", "basic")
    if auth == "basic":
        password = opts.get("password")
        if password is None and opts.get("password_env"):
            password = os.environ.get(str(opts["password_env"]))
            if password is None:
                raise ProfileError(
                    f"profile {profile.name!r} reads the gateway password from the environment "
                    f"variable {opts['password_env']}, which is not set"
                )
        auth = BasicAuth(username=opts.get("username"), password=password)
    kwargs = {"address": address, "auth": auth, "shutdown_on_close": True}
    for key in ("proxy_address", "public_address"):
        if opts.get(key):
            kwargs[key] = opts[key]
    kwargs.update(opts.get("cluster_options") or {})
    return kwargs


def retire_gateway(gateway: Any) -> None:
    """Make a closed ``dask_gateway.Gateway``'s finaliser do nothing.

    dask-gateway 2026.3's ``Gateway.__del__`` closes again, which stops its loop runner under
    distributed's class-wide ``LoopRunner`` lock. When the garbage collector runs that finaliser
    in a thread that is starting while another thread holds the lock (starting any Dask
    cluster or client does), both wait forever (seen here: a LocalCluster start hung after a
    gateway test). Dropping the stopped loop runner makes the finaliser a no-op.
    """
    if hasattr(gateway, "_loop_runner"):
        del gateway._loop_runner


def _gateway_error(err: Exception, address: str, username: Any) -> Exception | None:
    status = getattr(err, "status", None)
    if status in (401, 403):
        return ClusterConnectionError(
            f"the gateway at {address} refused the credentials of user {username!r} "
            f"({status} {getattr(err, 'message', '')}). Check the username and password "
            "(options.password_env names the variable that holds it)."
        )
    if isinstance(err, (OSError, TimeoutError)) or status is not None:
        return ClusterConnectionError(
            f"could not reach the gateway at {address}: {type(err).__name__}: {err}"
        )
    return None


def start_gateway(
    profile: Profile, *, security: Security | None, dashboard_address: str
) -> Started:
    """Create a cluster on a Dask Gateway server (always TLS between client and scheduler).

    The credentials are checked with a short request first, so a refusal leaves nothing
    behind. The idle timeout of gateway clusters is the server's (``ClusterConfig.idle_timeout``).
    """
    _require("dask_gateway", "gateway", "dask-gateway")
    from dask_gateway import Gateway, GatewayCluster

    kwargs = gateway_arguments(profile, tls=profile.tls)
    n = profile.options.get("n_workers")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ProfileError(
            f"n_workers={n!r} in profile {profile.name!r} must be a whole number >= 0 "
            f"({profile.where('options.n_workers')})"
        )
    if profile.idle_timeout is not None:
        logger.warning(
            "idle_timeout in profile %r is ignored: a Dask Gateway sets it on the server "
            "(c.ClusterConfig.idle_timeout).",
            profile.name,
        )
    probe_args = {k: kwargs[k] for k in ("address", "proxy_address", "auth") if k in kwargs}
    gateway = Gateway(**probe_args)
    try:
        gateway.list_clusters()
    except Exception as err:
        mapped = _gateway_error(err, kwargs["address"], profile.options.get("username"))
        if mapped is not None:
            raise mapped from None
        raise
    finally:
        gateway.close()
        retire_gateway(gateway)
    try:
        cluster = GatewayCluster(**kwargs)
    except Exception as err:
        mapped = _gateway_error(err, kwargs["address"], profile.options.get("username"))
        if mapped is not None:
            raise mapped from err
        raise
    if n:
        try:
            cluster.scale(n)
        except BaseException:
            cluster.close(shutdown=True)
            retire_gateway(cluster.gateway)
            raise
    return cluster, []
