"""``workbench demo``: fraud data, a model trained on a local cluster, its metrics."""

from __future__ import annotations

import logging

import click

from workbench import api
from workbench.cli.options import fail
from workbench.errors import WorkbenchError

logger = logging.getLogger(__name__)


@click.command("demo")
@click.option("--rows", type=int, default=1_000_000, show_default=True, help="Rows of fraud data.")
@click.option(
    "--out",
    default="workbench-demo",
    show_default=True,
    help="Folder for data and model; an OUT/data holding your own files is refused.",
)
@click.option("--rounds", type=int, default=300, show_default=True, help="Most boosting rounds.")
@click.option("--model", default="xgboost", show_default=True, help="xgboost, lightgbm or linear.")
@click.option("--profile", "-p", default=None, help="Cluster profile (default: local).")
def demo_cmd(rows: int, out: str, rounds: int, model: str, profile: str | None) -> None:
    """Generate card transactions, train XGBoost on a local cluster, evaluate and save it."""
    try:
        api.run_demo(rows=rows, out=out, rounds=rounds, profile=profile, model=model)
    except (WorkbenchError, ValueError, TypeError, FileExistsError) as err:
        fail(err)
