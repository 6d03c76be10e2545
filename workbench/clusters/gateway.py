"""The ``gateway`` deployment: a :class:`dask_gateway.GatewayCluster` from a profile.

Dask Gateway makes its own per-cluster certificates (always TLS between client and scheduler);
the profile names the server, the credentials and the cluster options. dask-gateway is imported
on use (the ``remote`` extra).
"""

from __future__ import annotations

import logging
import os
from difflib import get_close_matches
from typing import Any

from distributed import Security

from workbench._redact import redact, shown
from workbench.clusters.engine import Started, _require
from workbench.clusters.profiles import Profile
from workbench.clusters.security import is_loopback
from workbench.errors import ClusterConnectionError, ProfileError

__all__ = ["gateway_arguments", "retire_gateway", "start_gateway"]

logger = logging.getLogger(__name__)

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
