"""The ``kubernetes`` deployment: the Dask operator's resources rendered from a profile.

:func:`kubernetes_manifests` renders a ``DaskCluster`` (with TLS on, a ``Secret`` holding the
certificate files, mounted into the pods; with adaptive bounds, a ``DaskAutoscaler``) for
``kubectl apply``; :func:`start_kubernetes` starts one through ``KubeCluster`` (TLS off only).
dask-kubernetes is imported on use (the ``remote`` extra).
"""

from __future__ import annotations

import base64
import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import dask
from dask.utils import parse_timedelta
from distributed import Security

from workbench.clusters.engine import Started, _require, _tls_files
from workbench.clusters.local import _params, check_options
from workbench.clusters.profiles import Profile
from workbench.errors import ProfileError

__all__ = ["kubernetes_manifests", "kubernetes_options", "start_kubernetes"]

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
