"""The :class:`Cluster` that :func:`workbench.start_cluster` returns.

It wraps the engine's own deployment object (``LocalCluster``, ``LocalCUDACluster``,
``SSHCluster``, ``KubeCluster``, ``SLURMCluster``, ``GatewayCluster``) and keeps its manners:
``get_client()``, ``scale()``, ``adapt()``, ``close()`` and ``with`` blocks. What it adds is the
profile it came from, one connected client, and reprs that show workers, GPUs and TLS.
"""

from __future__ import annotations

import logging
from typing import Any

import dask
from dask.utils import format_bytes
from distributed import Client, Security

from workbench._client import WorkerInfo, scheduler_workers, workers_from_info
from workbench.clusters.profiles import Profile
from workbench.clusters.remote import retire_gateway
from workbench.display import render

logger = logging.getLogger(__name__)


def workers_of(client: Client) -> list[WorkerInfo]:
    """Return the workers of ``client``'s scheduler, sorted by host and name."""
    return workers_from_info(scheduler_workers(client))


class Cluster:
    """A running Dask cluster started from a profile, with a connected client.

    Use it like distributed's clusters: ``with wb.start_cluster() as cluster: ...``, or call
    :meth:`close` when done. ``cluster.deployment`` is the engine's own object for anything
    this class does not forward.

    Parameters
    ----------
    deployment
        The distributed / dask-cuda / dask-jobqueue / ... cluster object.
    profile
        The profile it was started from (options after overrides).
    security
        The TLS settings, or ``None`` for plain TCP.
    plugins
        Worker plugins to register on every worker once connected.
    dashboard_host
        The host the dashboard listens on, when known (local clusters); the link then names it
        rather than the scheduler's host, which differs for in-process clusters.
    """

    def __init__(
        self,
        deployment: Any,
        profile: Profile,
        security: Security | None = None,
        plugins: list[Any] | None = None,
        dashboard_host: str | None = None,
    ):
        self.deployment = deployment
        self._dashboard_host = dashboard_host
        self.profile = profile
        self.security = security
        self._client: Client | None = None
        self._closed = False
        self._plugins = list(plugins or [])

    # --- distributed's Cluster manners -------------------------------------------------
    @property
    def scheduler_address(self) -> str:
        """The scheduler's address (``tcp://`` or ``tls://``)."""
        return str(self.deployment.scheduler_address)

    @property
    def dashboard_link(self) -> str:
        """The URL of the Dask dashboard, or ``""`` when there is none."""
        try:
            if self._dashboard_host:
                from distributed.utils import format_dashboard_link

                port = self.deployment.scheduler_info["services"].get("dashboard")
                host = self._dashboard_host
                host = f"[{host}]" if ":" in host else host  # IPv6
                return format_dashboard_link(host, port) if port else ""
            return str(self.deployment.dashboard_link or "")
        except Exception:  # a closed deployment has no scheduler info
            return ""

    @property
    def tls(self) -> bool:
        """Whether scheduler, worker and client traffic is encrypted with TLS."""
        return self.scheduler_address.startswith(("tls://", "gateway://"))

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

    @property
    def status(self) -> str:
        """``running``, ``lost`` or ``closed``.

        ``lost`` means the scheduler went away (idle timeout, shut down elsewhere);
        ``closed`` follows :meth:`close`.
        """
        if self._closed:
            return "closed"
        if self._client is not None and self._client.status != "running":
            return "lost"
        scheduler = getattr(self.deployment, "scheduler", None)  # in-process schedulers
        if getattr(getattr(scheduler, "status", None), "name", "running") in ("closing", "closed"):
            return "lost"
        return "running"

    def get_client(self) -> Client:
        """Return the cluster's client, connecting it (and making it current) on first use."""
        if self._closed:
            raise RuntimeError(f"cluster {self.name!r} is closed; start a new one")
        if self._client is None or self._client.status in ("closed", "closing"):
            kwargs: dict[str, Any] = {}
            if self.security is not None:
                kwargs["security"] = self.security
            client = self.deployment.get_client() if self.profile.kind == "gateway" else None
            if client is None:
                client = Client(self.deployment, set_as_default=True, **kwargs)
            for plugin in self._plugins:
                client.register_plugin(plugin)
            self._client = client
        return self._client

    def scale(self, n: int | None = None, **kwargs: Any) -> None:
        """Ask the deployment for ``n`` workers (see the deployment's ``scale``)."""
        if n is not None:
            kwargs["n"] = n
        self.deployment.scale(**kwargs)

    def adapt(self, minimum: int | None = None, maximum: int | None = None, **kwargs: Any) -> Any:
        """Scale between ``minimum`` and ``maximum`` workers with the load."""
        if minimum is not None:
            kwargs["minimum"] = minimum
        if maximum is not None:
            kwargs["maximum"] = maximum
        if "minimum" in kwargs and "maximum" in kwargs and kwargs["minimum"] > kwargs["maximum"]:
            raise ValueError(
                f"adapt(minimum={kwargs['minimum']}, maximum={kwargs['maximum']}): "
                "minimum must not exceed maximum"
            )
        return self.deployment.adapt(**kwargs)

    def wait_for_workers(self, n: int = 1, timeout: float | None = None) -> None:
        """Block until at least ``n`` workers are connected."""
        self.get_client().wait_for_workers(n, timeout=timeout)

    def workers(self) -> list[WorkerInfo]:
        """The connected workers, with threads, memory and GPUs (asks the scheduler)."""
        return workers_of(self.get_client())

    def close(self, timeout: float | None = None) -> None:
        """Close the client, then the deployment; calling it twice is harmless."""
        if self._closed:
            return
        # Where the scheduler is already gone (idle timeout, shut down elsewhere), the client and
        # the deployment would each try to reach it for distributed's connect timeout (30 s);
        # a short one is enough to find out it is gone.
        lost = self.status == "lost"
        self._closed = True
        client, self._client = self._client, None
        with dask.config.set({"distributed.comm.timeouts.connect": "2s"} if lost else {}):
            try:
                if client is not None:
                    client.close(**({"timeout": 2} if lost else {}))
            finally:
                if self.profile.kind == "gateway":  # GatewayCluster.close takes no timeout
                    self.deployment.close(shutdown=True)
                    retire_gateway(self.deployment.gateway)
                else:
                    self.deployment.close(**({"timeout": timeout} if timeout else {}))
        logger.debug("closed cluster %r", self.name)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reprs -------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        """Workers for the reprs, from the deployment's own copy of the scheduler's info.

        Distributed's and dask-gateway's cluster objects keep ``scheduler_info`` up to date
        from a stream of scheduler messages, so a repr never connects or waits.
        """
        if self._closed:
            return {"workers": [], "closed": True}
        if self.status == "lost":
            return {"workers": [], "error": "the scheduler is gone (idle timeout or shut down)"}
        info = getattr(self.deployment, "scheduler_info", None)
        if not isinstance(info, dict) or "workers" not in info:
            if self._client is None:
                return {"workers": []}
            info = {"workers": scheduler_workers(self._client)}
        return {"workers": workers_from_info(info["workers"])}

    def __repr__(self) -> str:
        if self._closed:
            return f"<workbench.Cluster {self.name!r} ({self.profile.kind}): closed>"
        if self.status == "lost":
            head = f"<workbench.Cluster {self.name!r} ({self.profile.kind})"
            return f"{head}: {self.scheduler_address}, scheduler gone; close() it>"
        ws = self._summary()["workers"]
        gpus = sum(1 for w in ws if w.has_gpu)
        return (
            f"<workbench.Cluster {self.name!r} ({self.profile.kind}): {self.scheduler_address}, "
            f"workers={len(ws)}, threads={sum(w.threads for w in ws)}, "
            f"memory={format_bytes(sum(w.memory_limit for w in ws))}, gpus={gpus}, "
            f"tls={'on' if self.tls else 'off'}, dashboard={self.dashboard_link or 'none'}>"
        )

    def _repr_html_(self) -> str:
        summary = self._summary()
        ws = summary["workers"]
        return render(
            "cluster.html.j2",
            cluster=self,
            workers=ws,
            closed=summary.get("closed", False),
            error=summary.get("error"),
            threads=sum(w.threads for w in ws),
            memory=sum(w.memory_limit for w in ws),
            gpus=[w for w in ws if w.has_gpu],
            format_bytes=format_bytes,
        )
