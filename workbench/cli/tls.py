"""``workbench tls make``: certificates for a cluster."""

from __future__ import annotations

import logging

import click

import workbench as wb
from workbench.cli.options import fail

logger = logging.getLogger(__name__)


@click.group()
def tls() -> None:
    """TLS certificates for clusters."""


@tls.command("make")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Host name or IP address clients use to reach the scheduler or a worker (repeat).",
)
@click.option("--days", default=365, show_default=True, help="Validity in days.")
@click.option("--overwrite", is_flag=True, help="Replace certificates already in FOLDER.")
def tls_make(folder: str, hosts: tuple[str, ...], days: int, overwrite: bool) -> None:
    """Write a new CA, a server and a client certificate into FOLDER (one folder per cluster).

    cert.pem/key.pem (the server certificate, for every --host) go to the scheduler and the
    workers; client-cert.pem/client-key.pem to users, notebooks and Lab kernels; ca.pem to all.
    """
    try:
        paths = wb.make_certificates(
            folder, hosts or ("127.0.0.1", "localhost"), days=days, overwrite=overwrite
        )
    except (ValueError, OSError) as err:
        fail(err)
    for role, p in paths.items():
        click.echo(f"{role}: {p}")
    click.echo(
        "scheduler and workers: ca_file, cert_file, key_file; clients (users, notebooks): "
        "ca_file and the client certificate, e.g. wb.connect(address, security={'ca_file': "
        "..., 'cert_file': <client_cert_file>, 'key_file': <client_key_file>})"
    )
