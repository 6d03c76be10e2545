"""The ``workbench`` command line: a thin layer over the public API.

One module per command group (:mod:`~workbench.cli.cluster`, :mod:`~workbench.cli.data`,
:mod:`~workbench.cli.tls`, :mod:`~workbench.cli.train`, :mod:`~workbench.cli.lab`,
:mod:`~workbench.cli.demo`, :mod:`~workbench.cli.tune`, :mod:`~workbench.cli.runs`); each
imports only the public namespace
(``workbench``), :mod:`workbench.api`, the base (errors, config), click and the standard
library, and leaves the work to the API. The data and training stack loads when a command needs
it (the API's operations that import it load on first use), so ``workbench --help`` stays quick.
"""

from __future__ import annotations

import logging

import click

from workbench.cli.cluster import cluster, hardware_cmd, profiles_cmd
from workbench.cli.data import data
from workbench.cli.demo import demo_cmd
from workbench.cli.lab import lab_cmd
from workbench.cli.runs import runs_cmd
from workbench.cli.tls import tls
from workbench.cli.train import predict_cmd, train_cmd
from workbench.cli.tune import tune_cmd
from workbench.config import setup_logging

logger = logging.getLogger(__name__)

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="workbench")
def main() -> None:
    """Dask clusters, data and distributed training, on CPUs or GPUs."""
    setup_logging()


for _command in (
    cluster,
    profiles_cmd,
    hardware_cmd,
    data,
    demo_cmd,
    train_cmd,
    predict_cmd,
    tune_cmd,
    lab_cmd,
    runs_cmd,
    tls,
):
    main.add_command(_command)
del _command
