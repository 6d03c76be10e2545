"""``workbench cluster up|info|render``, ``workbench profiles`` and ``workbench hardware``."""

from __future__ import annotations

import logging
import signal
import sys
import time
from types import FrameType

import click
from dask.utils import format_bytes

import workbench as wb
from workbench import api
from workbench.cli.options import deployment_option, fail, parse_options
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.group()
def cluster() -> None:
    """Start a cluster, or inspect a running one."""


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


@cluster.command("up")
@click.option("--profile", "-p", default=None, help="Profile name or YAML file (default: local).")
@click.option(
    "--tls/--no-tls", default=None, help="Encrypt cluster traffic (default: the profile's)."
)
@deployment_option
@click.option("--minimum", type=int, default=None, help="Adaptive scaling: fewest workers.")
@click.option("--maximum", type=int, default=None, help="Adaptive scaling: most workers.")
@click.option("--idle-timeout", default=None, help="Close after this long idle, e.g. 1h.")
@click.option("--dashboard-address", default=None, help="e.g. 127.0.0.1:8787.")
def cluster_up(
    profile: str | None,
    tls: bool | None,
    options: tuple[str, ...],
    minimum: int | None,
    maximum: int | None,
    idle_timeout: str | None,
    dashboard_address: str | None,
) -> None:
    """Run a cluster in the foreground until Ctrl-C, printing its address and dashboard."""
    try:
        c = wb.start_cluster(
            profile,
            tls=tls,
            minimum=minimum,
            maximum=maximum,
            idle_timeout=idle_timeout,
            dashboard_address=dashboard_address,
            **parse_options(options),
        )
    except (WorkbenchError, ValueError, TypeError) as err:
        fail(err)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        click.echo(f"scheduler: {c.scheduler_address}")
        click.echo(f"dashboard: {c.dashboard_link or 'none'}")
        click.echo(repr(c))
        click.echo("Press Ctrl-C to stop.", err=True)
        sys.stdout.flush()
        while c.status == "running":
            time.sleep(0.5)
        click.echo("the scheduler closed (idle timeout or shut down)", err=True)
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping...", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        c.close()
        click.echo("cluster closed", err=True)


@cluster.command("info")
@click.argument("address")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="TLS: the CA certificate.")
@click.option("--cert-file", type=click.Path(dir_okay=False), help="TLS: the client certificate.")
@click.option("--key-file", type=click.Path(dir_okay=False), help="TLS: the client key.")
@click.option("--timeout", default=None, help="Give up after this long (default 10s).")
def cluster_info(
    address: str,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    timeout: str | None,
) -> None:
    """Show the workers, threads, memory and GPUs of the scheduler at ADDRESS."""
    try:
        view = api.describe_scheduler(
            address, ca_file=ca_file, cert_file=cert_file, key_file=key_file, timeout=timeout
        )
    except (WorkbenchError, ValueError, TypeError) as err:
        fail(err)
    ws = view.cluster.workers
    click.echo(f"scheduler: {view.address}")
    click.echo(f"tls:       {'on' if view.tls else 'off'}")
    click.echo(f"dashboard port: {view.dashboard_port if view.dashboard_port else 'none'}")
    click.echo(
        f"workers:   {len(ws)}, threads: {view.cluster.threads}, "
        f"memory: {format_bytes(view.cluster.memory)}, gpus: {view.cluster.gpus}"
    )
    for w in ws:
        gpu = f", GPU {w.gpu_name} ({format_bytes(w.gpu_memory or 0)})" if w.gpu_name else ""
        click.echo(
            f"  {w.name}  {w.address}  threads={w.threads}  "
            f"memory={format_bytes(w.memory_limit)}{gpu}"
        )


@cluster.command("render")
@click.argument("profile")
@deployment_option
@click.option("--tls/--no-tls", default=None, help="Override the profile's TLS setting.")
@click.option(
    "--with-secret",
    is_flag=True,
    help="Kubernetes: include the Secret with the private key (keep the output private).",
)
def cluster_render(
    profile: str, options: tuple[str, ...], tls: bool | None, with_secret: bool
) -> None:
    """Print what PROFILE deploys, without deploying it.

    Kubernetes: the manifests for `kubectl apply -f -` (the TLS Secret is made with the
    `kubectl create secret` line printed first, so the private key never lands in a
    manifest file); Slurm: one job's batch script; SSH: the scheduler and each worker, with
    the SSH host it runs on and the options it starts with (its own `host` among them).
    """
    try:
        blocks = api.render_profile(
            profile, parse_options(options), tls=tls, with_secret=with_secret
        )
    except (WorkbenchError, ValueError, TypeError) as err:
        fail(err)
    for block in blocks:
        click.echo(block)


@click.command("profiles")
def profiles_cmd() -> None:
    """List the cluster profiles."""
    builtin, yours = api.profile_folders()
    click.echo(repr(wb.profiles()))
    click.echo(f"\nbuilt-in: {builtin}\nyours:    {yours}")


@click.command("hardware")
def hardware_cmd() -> None:
    """Show this machine's cores, memory and GPUs."""
    hw = wb.hardware()
    click.echo(f"host:   {hw.hostname}")
    click.echo(f"cores:  {hw.cpu_count}")
    click.echo(f"memory: {format_bytes(hw.memory_total)}")
    if hw.gpus:
        for g in hw.gpus:
            click.echo(f"gpu {g.index}:  {g.name}, {format_bytes(g.memory_total)}, {g.uuid}")
    else:
        click.echo(f"gpus:   none ({hw.gpu_note})")
