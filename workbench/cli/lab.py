"""``workbench lab``: JupyterLab with the Dask dashboard inside, on a new or a running cluster."""

from __future__ import annotations

import logging
import signal
import sys

import click

from workbench import api
from workbench import lab as jupyter
from workbench.cli.options import deployment_option, fail, parse_options
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.command("lab", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--profile", "-p", default=None, help="Cluster profile to start (default: local).")
@click.option("--tls/--no-tls", default=None, help="Encrypt cluster traffic (default: profile's).")
@deployment_option
@click.option(
    "--scheduler", default=None, help="Use a running scheduler instead, e.g. tls://h:8786."
)
@click.option("--ca-file", type=click.Path(dir_okay=False), help="TLS: the CA certificate.")
@click.option("--cert-file", type=click.Path(dir_okay=False), help="TLS: the client certificate.")
@click.option("--key-file", type=click.Path(dir_okay=False), help="TLS: the client key.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="JupyterLab's address.")
@click.option("--port", type=int, default=None, help="JupyterLab's port (default: Jupyter's).")
@click.option("--browser/--no-browser", default=True, help="Open a browser tab.")
@click.option("--root-dir", default=None, help="The folder JupyterLab shows (default: here).")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab_cmd(
    profile: str | None,
    tls: bool | None,
    options: tuple[str, ...],
    scheduler: str | None,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    ip: str,
    port: int | None,
    browser: bool,
    root_dir: str | None,
    jupyter_args: tuple[str, ...],
) -> None:
    """Start JupyterLab with the Dask dashboard inside, on a new or a running cluster.

    Without --scheduler, starts the profile's cluster here and keeps it until JupyterLab exits.
    dask-labextension's dashboard URL is set to the cluster's, and notebooks' kernels connect
    to it: distributed.Client() and workbench calls with client=None use it. Arguments after
    the options (or after --) go to JupyterLab.
    """
    if scheduler is not None and (profile or options or tls is not None):
        fail(ValueError("--scheduler uses a running cluster: --profile, --tls and -o do not apply"))
    if scheduler is None and (ca_file or cert_file or key_file):
        fail(ValueError("--ca-file, --cert-file and --key-file go with --scheduler ADDRESS"))
    try:  # before a cluster starts: Jupyter would refuse only once it had
        jupyter.check_user(jupyter_args)
    except PermissionError as err:
        fail(err)
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers inherit it: Ctrl-C
    try:  # is JupyterLab's to confirm, and must not kill the workers of a cluster started here
        jupyter.check_installed()
        target = api.lab_cluster(
            scheduler,
            profile=profile,
            tls=tls,
            overrides=parse_options(options) if scheduler is None else None,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
    except (WorkbenchError, ValueError, TypeError, ImportError) as err:
        fail(err)
    finally:
        signal.signal(signal.SIGINT, interrupt)
    try:
        click.echo(f"scheduler: {target.address}")
        click.echo(f"dashboard: {target.dashboard or 'none'}")
        click.echo(
            "kernels connect to it: distributed.Client(), or workbench calls with client=None"
        )
        sys.stdout.flush()
        status = jupyter.run(
            target.address,
            target.dashboard,
            target.security,
            echo=lambda m: click.echo(m, err=True),
            ip=ip,
            port=port,
            browser=browser,
            root_dir=root_dir,
            extra=jupyter_args,
        )
    finally:
        target.close()
        click.echo(
            "JupyterLab stopped; " + ("cluster closed" if target.started else "disconnected"),
            err=True,
        )
    if status:
        sys.exit(status)
